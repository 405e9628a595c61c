"""Text rules: mask secrets in free text (a log line, a command line, a health check output).

Rules, in the order ``Redactor.text`` applies them (each counted under its name, never
with the value):

``known-value``
    Every secret value given to the ``Redactor`` (found before in a container's config),
    wherever it appears.
``pem-private-key``
    The body of PEM private key blocks (``-----BEGIN … PRIVATE KEY-----``), whether on
    one line with ``\\n`` escapes (JSON) or over several lines (``LineRedactor``); the
    markers stay.
token formats (``formats.TOKEN_FORMATS``: ``aws-access-key-id``, ``github-token``, ``jwt`` …)
    Secrets recognised by their own shape, under any key or none.
``command-line``
    Passwords given to commands: ``curl -u user:PASS``, ``mysql -pPASS``,
    ``docker login -p PASS``, ``sshpass -p PASS``, ``redis-cli -a PASS``,
    ``openssl … -passin pass:PASS``.
``bearer``
    ``Bearer TOKEN`` and the credentials of ``Authorization:`` headers.
``url-userinfo``
    The password in ``scheme://user:PASSWORD@host`` (``redis://:PASSWORD@host`` too), and
    a token-like user part (20+ characters, as in ``https://TOKEN@host``).
``secret-key``
    The value of a *secret-looking key* (see ``keys``) in ``key=value``, ``key = value``,
    ``key => value``, ``"key": "value"``, ``'key': 'value'``, ``key: value``,
    ``key: "quoted value"``, ``?key=value`` and ``--flag value`` forms (quoted values
    whole, spaces and all).
``high-entropy``
    A random-looking value (``keys.high_entropy``) under a semi-secret key
    (``session_id=…``, ``X-Amz-Signature=…``), or right after a word that names a secret
    in prose (``with password Xk9vQ2…``, ``token is 9f8e…``).

A value that is already masked (``[REDACTED]``, or a run of ``*``) is left as it is.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from typing import NamedTuple

from rollback_pm.redact.finder import Finder
from rollback_pm.redact.formats import COMMAND_TRIGGERS, FORMAT_TRIGGERS, TOKEN_FORMATS, command_values
from rollback_pm.redact.keys import (
    MASK,
    has_strong_word,
    high_entropy,
    is_masked,
    is_secret_key,
    is_semi_secret_key,
    searchable,
)

# --- patterns ------------------------------------------------------------------------------

_PEM_BLOCK = re.compile(
    r"(-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY((?: BLOCK)?)-----)(.*?)(-----END \2PRIVATE KEY\3-----)", re.S
)
PEM_BEGIN = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")
PEM_END = re.compile(r"-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")
PEM_BODY = re.compile(r"^[A-Za-z0-9+/=\s]*$|^(Proc-Type|DEK-Info|Comment|Version):")
_AUTH_HEADER = re.compile(
    r"(?i)\b((?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?)"
    r"(?:(basic|bearer|token|digest|negotiate|apikey|api-key|key)\s+)?([^\s\"',;]+)"
)
_BEARER = re.compile(r"(?i)\b(bearer\s+)([A-Za-z0-9\-._~+/]+=*)")
_URL_PASSWORD = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://)([^\s:/?#@\"'<>]*):([^\s/?#\"'<>]*)@")
_URL_TOKEN_USER = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://)([A-Za-z0-9_\-.~%]{20,})@")
# key=value, key = value, key => value (not ==); the value quoted (spaces and all) or a run of non-blanks
_ASSIGN = re.compile(
    r"(?<![\w.?&/-])(-{0,2}[A-Za-z_][\w.-]*)[ \t]*=(?!=)>?[ \t]*(\"(?:[^\"\\\n]|\\.)*\"|'[^'\n]*'|[^\s\"'`]+)"
)
_QUERY = re.compile(r"([?&;])([A-Za-z_][\w.\-\[\]]*)=([^&\s#\"']+)")
_JSON_KV = re.compile(r'"([A-Za-z_][\w.-]*)"\s*:\s*"((?:[^"\\]|\\.)*)"')
_JSON_KV_ESC = re.compile(r'\\"([A-Za-z_][\w.-]*)\\"\s*:\s*\\"((?:(?!\\").)*)\\"')
_JSON_KV_BARE = re.compile(r'"([A-Za-z_][\w.-]*)"\s*:\s*(-?[\w.+-]+)')
_SINGLE_KV = re.compile(r"'([A-Za-z_][\w.-]*)'\s*:\s*'([^'\n]*)'")
# key: value (YAML, headers, prose), also inside a quoted string ('password: "a b c"'); a
# quoted value may hold spaces
_COLON_KV = re.compile(
    r"(?<![\w.-])([A-Za-z_][\w.-]*)[ \t]*:(?:[ \t]+|(?=[\"']))(\"(?:[^\"\\\n]|\\.)*\"|'[^'\n]*'|[^\s\"',;]+)"
)
_FLAG_SPACE = re.compile(r"(?<![\w-])(--?[A-Za-z][\w.-]*)[ \t]+('[^'\n]*'|\"[^\"\n]*\"|[^\s\"';&|-][^\s\"';&|]*)")


def unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


# --- where a keyed rule could fire ----------------------------------------------------
# The keyed rules (_ASSIGN … _FLAG_SPACE) scan a whole line at sre's pace, about 10 us
# each on a 200-character line, and mask only the value of a secret-looking key. Such a
# key holds a secret word, so it contains one of these stems (in any case):
KEY_STEMS = ("pass", "secret", "token", "key", "auth", "credential", "dsn", "pwd", "cookie", "jwt", "pat")
# ... or, for a high-entropy value, one of these (session ids, signatures: see keys.is_semi_secret_key)
SEMI_STEMS = ("sess", "sig", "hmac", "csrf", "xsrf")
ALL_STEMS = KEY_STEMS + SEMI_STEMS
_TOKEN_CHARS = re.compile(r"[\w.\-\[\]]*")  # a superset of every keyed rule's key characters
_TOKEN_CHARS_B = re.compile(rb"[\w.\-\[\]\x80-\xff]*")
# The rest of the token after a stem, an optional closing quote, then "=" or ":".
_SEPARATED = re.compile(r"""([\w.\-\[\]]*)(?:\\?["'])?\s*([=:])""")  # \s: the JSON rules allow newlines
# _FLAG_SPACE's key, found from its dash (a literal first: sre then skips to each dash).
_FLAG_KEY = re.compile(r"-(?<![\w-]-)(-?[A-Za-z][\w.-]*)")
FLAG_KEY_B = re.compile(rb"-(?<![\w-]-)(-?[A-Za-z][\w.\-\x80-\xff]*)")
_LOOK_LEFT = 64
_LEFT_TO_BEARER = ("authorization", "proxy-authorization")  # keys the ":" rules skip
_SUFFIX_START = re.compile(r"[.\-\[\]]")  # a rule's key may start after one of these
KEY_STEMS_B = tuple(stem.encode() for stem in ALL_STEMS)
_STEMS_ANY_CASE = re.compile("|".join(ALL_STEMS), re.IGNORECASE)
# A secret named in prose: "with password Xy7...", "token is 9f8e...": a secret-looking word,
# blanks (and perhaps is/was/of/for), then a value that ends at a blank or a delimiter.
_PROSE = re.compile(
    r"([\w.\-]*)[ \t]+(?:(?:is|was|of|for)[ \t]+)?([^\s\"'`,;()<>\[\]{}=:\\]{12,}=*)(?![^\s\"'`,;()<>\[\]{}\\])"
)
_PROSE_AT = re.compile(  # the same, from the start of the key's token
    r"([\w.\-\[\]]+)[ \t]+(?:(?:is|was|of|for)[ \t]+)?([^\s\"'`,;()<>\[\]{}=:\\]{12,}=*)(?![^\s\"'`,;()<>\[\]{}\\])"
)
# The log gate's look after a stem and the rest of its token (letters, digits, _ . - [ ],
# and on raw bytes UTF-8 too: the str rules' \\w is Unicode):
#   "=" or ":" after an optional closing quote (group 1): a keyed rule may fire;
#   blanks, perhaps is/was/of/for, and a long value as _PROSE wants (group 3): the prose rule may;
#   blanks and the start of a value (group 2 only): a --flag's value may follow (_FLAG_SPACE).
# Every alternative starts with a quote, a backslash, a blank, "=" or ":" (AFTER_TOKEN_FIRST).
AFTER_TOKEN_B = re.compile(
    rb"""(?:\\?["'])?\s*([=:])"""
    rb"""|([ \t]+)(?:(?:(?:is|was|of|for)[ \t]+)?([^\s"'`,;()<>\[\]{}=:\\]{12,})|(?=["']|[^\s"';&|-]))"""
)
AFTER_TOKEN_FIRST = frozenset(b"\"'\\=: \t\r\n\f\v")
# Bytes to 1 where a key's token may hold them, to 0 elsewhere: where a token ends is then
# one bytes.find of a 0 in the translated batch.
TOKEN_TABLE = bytes(1 if (c < 0x80 and (chr(c).isalnum() or chr(c) in "_.-[]")) or c >= 0x80 else 0 for c in range(256))
# What a keyed rule can take as a value that may pass keys.high_entropy: 16+ characters, no blank or quote.
LONG_VALUE_B = re.compile(rb"""\s*(?:\\?["'])?[^\s"'`\\]{16,}""")


_STEM_FINDER = Finder(ALL_STEMS)  # one pass for all stems instead of a find per stem


class _Candidate(NamedTuple):
    start: int  # where the token (or the flag's dash) starts
    kind: str  # "=", ":" or "-"
    keys: tuple[int, ...]  # where a rule's key may start: the token and its suffixes


def _stem_positions(text: str) -> Iterator[tuple[int, int]]:
    lowered = text.lower()
    if len(lowered) != len(text):  # lower() changed lengths (rare scripts): search case-insensitively
        for match in _STEMS_ANY_CASE.finditer(text):
            yield match.span()
        return
    for _, start, end in _STEM_FINDER.find(lowered):
        yield start, end


def _candidates(text: str) -> list[_Candidate]:
    """Where a keyed rule could mask something in ``text``, left to right.

    For every stem found, look past the rest of its token (letters, digits, ``_.-[]``):
    ``=`` (after an optional quote) can feed the assignment and query rules, ``:`` the
    JSON, quoted and colon rules. The whole token is then kept only when it or a suffix
    a rule could take as its key (one starting after ``.``, ``-``, ``[`` or ``]``) is
    secret-looking. A stem followed by blanks and a long value is a prose candidate
    (``with password Xk9…``) when its token names a secret outright. Flag keys
    (``--password``) are found from their dash, as the flag rule finds them. Erring here in the safe direction (trying a rule for nothing)
    costs time only.
    """
    found: dict[tuple[int, str], _Candidate] = {}
    for pos, end in _stem_positions(text):
        separated = _SEPARATED.match(text, end)
        if separated is None:
            prose = _PROSE.match(text, end)
            if prose is not None:  # "with password Xk9…": a key named in prose, a blank, a value
                first = token_start(text, pos)
                token = text[first : prose.end(1)]
                if has_strong_word(token) and is_secret_key(token):
                    found[first, " "] = _Candidate(first, " ", (first,))
            continue
        first = token_start(text, pos)
        kind = separated.group(2)
        if (first, kind) in found:
            continue
        token_end = separated.end(1)
        offsets = secret_key_offsets(text[first:token_end])
        if kind == ":" and text[first:token_end].lower() in _LEFT_TO_BEARER:
            continue  # every ":" rule leaves Authorization to the bearer rule
        if offsets is not None:
            found[first, kind] = _Candidate(first, kind, tuple(first + o for o in offsets))
    if "-" in text:
        for flag in _FLAG_KEY.finditer(text):
            if _could_be_secret_key(flag.group(1)):
                found[flag.start(), "-"] = _Candidate(flag.start(), "-", (flag.start(),))
    return [found[k] for k in sorted(found)]


def token_start(text: str | bytes, pos: int) -> int:
    """Where the token holding ``pos`` starts."""
    left = max(0, pos - _LOOK_LEFT)
    space = text.rfind(" " if isinstance(text, str) else b" ", left, pos)  # type: ignore[arg-type]
    chars = _TOKEN_CHARS if isinstance(text, str) else _TOKEN_CHARS_B
    if space >= 0 and chars.fullmatch(text, space + 1, pos):  # type: ignore[arg-type]
        return space + 1  # the usual case: the token follows a space
    reach = chars.match(text[left:pos][::-1]).end()  # type: ignore[union-attr, arg-type]
    if reach == pos - left and left > 0:  # longer than we looked: look at all of it (rare)
        reach = chars.match(text[:pos][::-1]).end()  # type: ignore[union-attr, arg-type]
    return pos - reach


VERDICTS: dict[str | bytes, tuple[int, ...] | None] = {}


def secret_key_offsets(token: str | bytes) -> tuple[int, ...] | None:
    """Where in ``token`` a rule's key may start, if any such key is secret-looking; else None.

    Keys start at the token or after ``.``, ``-``, ``[`` or ``]``. Logs repeat their keys,
    so the verdict is remembered per token.
    """
    verdict = VERDICTS.get(token, False)
    if verdict is not False:
        return verdict  # type: ignore[return-value]
    text = token if isinstance(token, str) else token.decode("utf-8", "surrogateescape")
    offsets = (0, *(m.end() for m in _SUFFIX_START.finditer(text, 0, len(text) - 1)))
    verdict = offsets if any(_could_be_secret_key(text[o:]) for o in offsets) else None
    if len(VERDICTS) > 20000:
        VERDICTS.clear()
    VERDICTS[token] = verdict
    return verdict


def _at(lowered: str, text: str, word: str, before: int) -> int:
    """Where to start looking for a rule that needs ``word``: just before its first place."""
    if len(lowered) != len(text):
        return 0
    return max(0, lowered.find(word) - before)


def _could_be_secret_key(key: str) -> bool:
    """Could a rule mask this key's value: a secret key, or a semi-secret one (for a high-entropy value)?"""
    key = key.lstrip("-")
    return bool(key) and (is_secret_key(key) or is_semi_secret_key(key))


_TRIGGERS = {trigger: [f for f in TOKEN_FORMATS if trigger in f.triggers] for trigger in FORMAT_TRIGGERS}
_VALUE_FINDER = Finder(FORMAT_TRIGGERS + COMMAND_TRIGGERS)  # one pass for every format and command trigger
_COMMANDS = frozenset(COMMAND_TRIGGERS)


def _sub_from(pattern: re.Pattern[str], replace: Callable[[re.Match[str]], str], text: str, start: int) -> str:
    """Like ``pattern.sub(replace, text)`` from ``start`` (lookbehinds still see before it).

    Unlike ``sub``, a match left unchanged (a key that is not secret) does not hide what
    it spans: the search goes on from its second character, so ``note="password=x"``
    masks ``x`` although ``note`` is no secret.
    """
    out: list[str] = []
    done = pos = start
    search = pattern.search
    while (match := search(text, pos)) is not None:
        new = replace(match)
        if new == match.group(0):
            pos = match.start() + 1
            continue
        out.append(text[done : match.start()])
        out.append(new)
        done = pos = match.end()
    if not out:
        return text
    return text[:start] + "".join(out) + text[done:]


class _KeyedRule(NamedTuple):
    """A keyed rule: its groups, and where it can match relative to a candidate key."""

    pattern: re.Pattern[str]
    serves: tuple[str, ...]  # candidate kinds: "=" key=, ":" key:, "-" --flag, " " key value (prose)
    at: str  # "keys": each key start; "quote", "escaped", "single": the quote before; "query"
    key: int = 1
    value: int = 2
    keep_quotes: bool = False  # mask inside the quotes of a quoted value
    pair: bool = True  # "key: value" forms, where Authorization is left to the bearer rule
    prose: bool = False  # the value is masked only when it looks random (keys.high_entropy)

    def matches(self, text: str, candidate: _Candidate) -> Iterator[re.Match[str]]:
        first = candidate.start
        starts: tuple[int, ...]
        if self.at == "keys":
            starts = candidate.keys
        elif self.at == "query":
            starts = (first - 1,) if first and text[first - 1] in "?&;" else ()
        elif self.at == "escaped":
            starts = (first - 2,) if text[max(0, first - 2) : first] == '\\"' else ()
        else:
            quote = '"' if self.at == "quote" else "'"
            starts = (first - 1,) if first and text[first - 1] == quote else ()
        for start in starts:
            match = self.pattern.match(text, start)
            if match:
                yield match


_KEYED_RULES = (
    _KeyedRule(_ASSIGN, ("=",), "keys", keep_quotes=True, pair=False),
    _KeyedRule(_QUERY, ("=",), "query", key=2, value=3, pair=False),
    _KeyedRule(_JSON_KV, (":",), "quote"),
    _KeyedRule(_JSON_KV_ESC, (":",), "escaped"),
    _KeyedRule(_JSON_KV_BARE, (":",), "quote"),
    _KeyedRule(_SINGLE_KV, (":",), "single"),
    _KeyedRule(_COLON_KV, (":",), "keys", keep_quotes=True),
    _KeyedRule(_FLAG_SPACE, ("-",), "keys"),
    _KeyedRule(_PROSE_AT, (" ",), "keys", pair=False, prose=True),
)
_RULES_FOR = {kind: tuple(rule for rule in _KEYED_RULES if kind in rule.serves) for kind in ("=", ":", "-", " ")}


class Redactor:
    """Applies the rules, counts them, and remembers the secret values it found."""

    def __init__(self, known: Iterable[str] = ()) -> None:
        self.counts: Counter[str] = Counter()
        self.found: set[str] = set()
        self.known: list[str] = []
        self.set_known(known)

    def set_known(self, values: Iterable[str]) -> None:
        self.known = sorted({v for v in values if searchable(v)}, key=len, reverse=True)

    def _found(self, rule: str, value: str) -> None:
        self.counts[rule] += 1
        value = unquote(value)
        if value and value != MASK:
            self.found.add(value)
            if "\n" in value or "\\n" in value:  # multi-line values (PEM): their lines are secrets too
                for part in re.split(r"\\n|\n", value):
                    line = part.strip()
                    if len(line) >= 16 and not line.startswith("-----"):  # not the PEM markers
                        self.found.add(line)

    def _keyed(self, key: str, value: str) -> str | None:
        """The rule that masks ``value`` under ``key``, if one does."""
        bare = unquote(value)
        if not value or not bare or is_masked(value) or is_masked(bare):
            return None
        key = key.lstrip("-")
        if is_secret_key(key):
            return "secret-key"
        if is_semi_secret_key(key) and high_entropy(bare):
            return "high-entropy"
        return None

    # Each rule is a function of text; text() applies them all in a fixed order.

    def _pem(self, text: str) -> str:
        if "PRIVATE KEY" not in text:
            return text

        def block(m: re.Match[str]) -> str:
            if m.group(4) in ("", MASK):
                return m.group(0)
            self._found("pem-private-key", m.group(4))
            return m.group(1) + MASK + m.group(5)

        text = _PEM_BLOCK.sub(block, text)
        begin = None
        for begin in PEM_BEGIN.finditer(text):  # noqa: B007 - the last BEGIN is wanted
            pass
        if begin is not None and not PEM_END.search(text, begin.end()):
            rest = text[begin.end() :]
            tail = "\n" if rest.endswith("\n") else ""
            if rest.strip() and rest.strip() != MASK:
                self._found("pem-private-key", rest.strip())
                text = text[: begin.end()] + MASK + tail
        return text

    def _auth(self, text: str) -> str:
        lowered = text.lower()
        if "authorization" in lowered:

            def header(m: re.Match[str]) -> str:
                if is_masked(m.group(3)) or m.group(3).startswith(MASK):
                    return m.group(0)
                self._found("bearer", m.group(3))
                scheme = m.group(2) + " " if m.group(2) else ""
                return m.group(1) + scheme + MASK

            text = _sub_from(_AUTH_HEADER, header, text, _at(lowered, text, "authorization", 6))
        if "bearer" in lowered:

            def bearer(m: re.Match[str]) -> str:
                self._found("bearer", m.group(2))
                return m.group(1) + MASK

            lowered = text.lower()
            text = _sub_from(_BEARER, bearer, text, _at(lowered, text, "bearer", 0))
        return text

    def _urls(self, text: str) -> str:
        if "://" not in text or "@" not in text:
            return text

        def password(m: re.Match[str]) -> str:
            if not m.group(3) or is_masked(m.group(3)):
                return m.group(0)
            self._found("url-userinfo", m.group(3))
            return f"{m.group(1)}{m.group(2)}:{MASK}@"

        def token_user(m: re.Match[str]) -> str:
            self._found("url-userinfo", m.group(2))
            return f"{m.group(1)}{MASK}@"

        text = _URL_PASSWORD.sub(password, text)
        return _URL_TOKEN_USER.sub(token_user, text)

    def _assignments(self, text: str) -> str:
        """The keyed rules: mask the value of every secret-looking key.

        Each candidate key (``_candidates``) takes the first rule, in the rules' order,
        that matches at it with a secret-looking key and a value not masked yet. All
        value spans are found on the same text and masked together (overlaps merged), so
        no value can hide another key's value, whatever the order of keys and quotes.
        """
        for _ in range(3):
            text, masked, unmatched = self._mask_values(text)
            # Masking can close a quote that makes a key with no value found so far
            # matchable ('"k": "a b=x\\"': once x is masked, k's string ends): look again.
            if not (masked and unmatched):
                break
        return text

    def _mask_values(self, text: str) -> tuple[str, int, int]:
        """(new text, values masked, candidate keys left without a value)."""
        candidates = _candidates(text)
        if not candidates:
            return text, 0, 0
        spans: list[tuple[int, int]] = []
        for candidate in candidates:
            span = self._value_span(text, candidate)
            if span is not None:
                spans.append(span)
        # Prose candidates need no second look (masking closes no quote they wait for).
        waiting = sum(1 for c in candidates if c.kind != " ") - len(spans)
        if not spans:
            return text, 0, waiting
        spans.sort()
        out: list[str] = []
        done = 0
        merged_start, merged_end = spans[0]
        for span_start, span_end in spans[1:] + [(len(text) + 1, len(text) + 1)]:
            if span_start <= merged_end:
                merged_end = max(merged_end, span_end)
                continue
            out.append(text[done:merged_start])
            out.append(MASK)
            done = merged_end
            merged_start, merged_end = span_start, span_end
        out.append(text[done:])
        return "".join(out), len(spans), waiting

    def _value_span(self, text: str, candidate: _Candidate) -> tuple[int, int] | None:
        """Where the value to mask for this candidate key is, if a rule masks one."""
        for rule in _RULES_FOR[candidate.kind]:
            for match in rule.matches(text, candidate):
                key, value = match.group(rule.key), match.group(rule.value)
                if rule.pair and key.lower() in _LEFT_TO_BEARER:
                    continue  # the bearer rule's business
                if rule.prose:
                    rule_name = "high-entropy" if high_entropy(value, 12) else None
                else:
                    rule_name = self._keyed(key, value)
                if rule_name is None:
                    continue
                self._found(rule_name, value)
                start, end = match.span(rule.value)
                if rule.keep_quotes and unquote(value) != value:
                    start, end = start + 1, end - 1
                return start, end
        return None

    def mask_known(self, text: str) -> str:
        for value in self.known:
            if value in text:
                self.counts["known-value"] += text.count(value)
                text = text.replace(value, MASK)
        return text

    def text(self, text: str) -> str:
        """All rules on free text (a command line, a health check output, a log line)."""
        if not text:
            return text
        text = self.mask_known(text)
        text = self._pem(text)
        text = self._values(text)
        text = self._auth(text)
        text = self._urls(text)
        return self._assignments(text)

    def _values(self, text: str) -> str:
        """Token formats (``formats.TOKEN_FORMATS``) and passwords on command lines."""
        hits = _VALUE_FINDER.find(text)
        if not hits:
            return text
        patterns = _VALUE_FINDER.patterns
        formats: dict[str, None] = {}
        commands = False
        for index, _, _ in hits:
            trigger = patterns[index]
            if trigger in _COMMANDS:
                commands = True
            else:
                formats.update((f.rule, None) for f in _TRIGGERS[trigger])
        for fmt in TOKEN_FORMATS:
            if fmt.rule in formats:
                text = fmt.pattern.sub(partial(self._format_match, fmt.rule), text)
        if commands:
            text = self.command_lines(text)
        return text

    def _format_match(self, rule: str, match: re.Match[str]) -> str:
        group = "v" if "v" in match.re.groupindex else 0
        self._found(rule, match.group(group))
        start, end = match.span(group)
        offset = match.start()
        whole = match.group(0)
        return whole[: start - offset] + MASK + whole[end - offset :]

    def command_lines(self, text: str) -> str:
        """Mask passwords given on command lines (``curl -u user:PASS``, ``mysql -pPASS`` …)."""
        spans = [(s, e) for s, e in command_values(text) if not is_masked(text[s:e])]
        if not spans:
            return text
        out: list[str] = []
        done = 0
        for start, end in sorted(spans):
            if start < done:
                continue
            self._found("command-line", text[start:end])
            out += [text[done:start], MASK]
            done = end
        out.append(text[done:])
        return "".join(out)


class LineRedactor:
    """Redacts successive lines of one text stream (a CI step log, a log excerpt).

    A PEM block spread over several lines is masked from its BEGIN to its END marker.
    """

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor
        self.in_pem = False

    def line(self, text: str) -> str:
        if self.in_pem:
            end = PEM_END.search(text)
            if end:
                self.in_pem = False
                if text[: end.start()].strip():
                    self.redactor._found("pem-private-key", text[: end.start()])
                    text = MASK + text[end.start() :]
            elif PEM_BODY.match(text.rstrip("\n")):
                if text.strip():
                    self.redactor._found("pem-private-key", text.strip())
                    return MASK + ("\n" if text.endswith("\n") else "")
                return text
            else:
                self.in_pem = False
        text = self.redactor.text(text)
        begin = None
        for begin in PEM_BEGIN.finditer(text):  # noqa: B007 - the last BEGIN is wanted
            pass
        if begin is not None and not PEM_END.search(text, begin.end()):
            self.in_pem = True
        return text
