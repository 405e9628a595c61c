"""Redaction: which values are secrets, and masking them in documents and logs.

Everything the bundle writes passes through here; a secret is replaced by ``[REDACTED]``.

Rules (each counted in the manifest under its name, never with the value):

``secret-key``
    The value of a *secret-looking key*, wherever a key names a value: container env
    (``DB_PASSWORD=…``), labels, log-driver options (``splunk-token``), any inspect field,
    command-line flags in Cmd/Args/Entrypoint/Healthcheck (``--password=…``,
    ``--token …``), and ``KEY=VALUE``, ``"key": "value"``, ``key: value`` and
    ``?key=value`` inside any text, log lines included.
``url-userinfo``
    The password in ``scheme://user:PASSWORD@host`` (``redis://:PASSWORD@host`` too), and
    a token-like user part (20+ characters, as in ``https://TOKEN@host``).
``pem-private-key``
    The body of PEM private key blocks (``-----BEGIN … PRIVATE KEY-----``), whether on
    one line with ``\\n`` escapes (JSON) or over several log lines; the markers stay.
``bearer``
    ``Bearer TOKEN`` and the credentials of ``Authorization:`` headers.
``known-value``
    Every secret value found by the rules above in any selected container's config, masked
    wherever else it appears: in every log line and every inspect field. Values shorter
    than 4 characters and boolean-like values (true/false/yes/no/on/off/null/none) are not
    searched for elsewhere, since masking them everywhere would erase ordinary text.

What makes a key secret-looking
    1. Split the key into words on anything not a letter or digit and at camelCase
       humps, lower-cased: ``DB_PASSWORD`` -> db password, ``MyPassword`` -> my password,
       ``splunk-token`` -> splunk token, ``apiKey`` -> api key.
    2. A word is a *secret word* if it is, or ends with, one of password, passwd,
       passphrase, secret, token, apikey, credential, privatekey, accesskey, secretkey,
       authorization (``PGPASSWORD``, ``GITHUB_TOKEN``, ``APIKEY``); or if it is exactly
       one of auth, key, dsn, pwd, pass, cookie, jwt, pat (plurals too). ``key`` does
       not count after public, primary, partition, sort, cache, foreign, routing, hash,
       range, shard, lookup, idempotency, group (``PUBLIC_KEY``, ``PARTITION_KEY``).
    3. The key is secret when it has a secret word and every word after the last one
       is a *qualifier*: a word naming a property of the secret rather than the secret
       (count, ttl, seconds, length, min, max, size, timeout, expiry, enabled, file,
       path, url, host, port, id, name, type, user, … see ``QUALIFIERS``). A key that
       starts with max/min/num/count/total is a setting (``MAX_TOKENS``). ``PWD`` and
       ``OLDPWD`` are the shell's directories.

    So ``DB_PASSWORD``, ``MyPassword``, ``GITHUB_TOKEN``, ``AWS_SECRET_ACCESS_KEY``,
    ``api_key``, ``SECRET_KEY_BASE``, ``SENTRY_DSN`` are masked, while ``KEY_COUNT=3``,
    ``TOKEN_TTL_SECONDS=300``, ``PASSWORD_MIN_LENGTH=12``, ``PASSWORD_FILE=/run/…``,
    ``AUTH_ENABLED=true``, ``AWS_ACCESS_KEY_ID`` (an id, not the key) keep their values.

Fail closed: when redacting a document raises, the caller drops the document (and that
container's logs, whose secrets are then unknown) and records the error. A secret value
that Docker split across two 16 KiB partial records is only caught by the rules above,
not as a known value.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple

MASK = "[REDACTED]"
MASK_B = MASK.encode()

_STRONG = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "apikey",
    "credential",
    "privatekey",
    "accesskey",
    "secretkey",
    "authorization",
    "requirepass",  # redis
    "masterauth",  # redis
)
_WEAK = frozenset({"auth", "key", "dsn", "pwd", "pass", "cookie", "jwt", "pat"})
_NOT_SECRET_KEY_BEFORE = frozenset(
    {
        "public",
        "primary",
        "partition",
        "sort",
        "cache",
        "foreign",
        "routing",
        "hash",
        "range",
        "shard",
        "lookup",
        "idempotency",
        "group",
    }
)
QUALIFIERS = frozenset(
    [
        "count",
        "counts",
        "ttl",
        "seconds",
        "secs",
        "sec",
        "second",
        "ms",
        "millis",
        "milliseconds",
        "minutes",
        "mins",
        "minute",
        "hours",
        "hour",
        "days",
        "day",
        "timeout",
        "expiry",
        "expires",
        "expire",
        "expiration",
        "lifetime",
        "age",
        "duration",
        "interval",
        "period",
        "rotation",
        "refresh",
        "length",
        "len",
        "min",
        "max",
        "minimum",
        "maximum",
        "size",
        "limit",
        "bits",
        "rounds",
        "iterations",
        "cost",
        "strength",
        "complexity",
        "enabled",
        "enable",
        "disabled",
        "disable",
        "required",
        "optional",
        "allowed",
        "policy",
        "mode",
        "method",
        "format",
        "type",
        "kind",
        "algorithm",
        "algo",
        "alg",
        "file",
        "files",
        "path",
        "paths",
        "dir",
        "directory",
        "location",
        "mount",
        "url",
        "uri",
        "urls",
        "endpoint",
        "endpoints",
        "host",
        "hostname",
        "server",
        "service",
        "port",
        "address",
        "addr",
        "realm",
        "domain",
        "issuer",
        "audience",
        "scope",
        "scopes",
        "provider",
        "backend",
        "header",
        "param",
        "field",
        "id",
        "ids",
        "name",
        "names",
        "user",
        "username",
        "users",
        "login",
        "email",
        "owner",
        "version",
        "ver",
        "prefix",
        "suffix",
        "at",
        "on",
        "in",
    ]
)
_QUANTITY_FIRST = frozenset({"max", "min", "num", "number", "count", "total"})
_NEVER_SECRET = frozenset({"pwd", "oldpwd"})
_BORING_VALUES = frozenset({"true", "false", "yes", "no", "on", "off", "null", "none", "nil", "undefined"})

_SPLIT = re.compile(r"[^A-Za-z0-9]+")
_HUMPS = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")


def key_words(key: str) -> list[str]:
    words: list[str] = []
    for part in _SPLIT.split(key):
        words.extend(w.lower() for w in _HUMPS.findall(part))
    return words


def _is_secret_word(words: list[str], index: int) -> bool:
    word = words[index]
    if word in _WEAK or (word.endswith("s") and word[:-1] in _WEAK):
        return not (word.rstrip("s") == "key" and index > 0 and words[index - 1] in _NOT_SECRET_KEY_BEFORE)
    return any(word.endswith((stem, stem + "s")) for stem in _STRONG)


_key_cache: dict[str, bool] = {}


def is_secret_key(key: str) -> bool:
    """True when the value stored under ``key`` is a secret (rule in the module docstring)."""
    cached = _key_cache.get(key)
    if cached is not None:
        return cached
    words = key_words(key)
    result = False
    if words and key.lower() not in _NEVER_SECRET and words[0] not in _QUANTITY_FIRST:
        last = max((i for i in range(len(words)) if _is_secret_word(words, i)), default=-1)
        trailing = words[last + 1 :]
        # Secret unless every word after the last secret word only qualifies it (KEY_COUNT).
        result = last >= 0 and (not trailing or not all(w in QUALIFIERS for w in trailing))
    if len(_key_cache) < 10000:
        _key_cache[key] = result
    return result


def searchable(value: str) -> bool:
    """Is this secret value worth masking wherever it appears?"""
    return len(value) >= 4 and value.lower() not in _BORING_VALUES and value != MASK


# --- text rules ------------------------------------------------------------------------

_PEM_BLOCK = re.compile(
    r"(-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY((?: BLOCK)?)-----)(.*?)(-----END \2PRIVATE KEY\3-----)", re.S
)
_PEM_OPEN = re.compile(r"(-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----)(.+)", re.S)
_PEM_BEGIN = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")
_PEM_END = re.compile(r"-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")
_PEM_BODY = re.compile(r"^[A-Za-z0-9+/=\s]*$|^(Proc-Type|DEK-Info|Comment|Version):")
_AUTH_HEADER = re.compile(
    r"(?i)\b((?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?)"
    r"(?:(basic|bearer|token|digest|negotiate|apikey|api-key|key)\s+)?([^\s\"',;]+)"
)
_BEARER = re.compile(r"(?i)\b(bearer\s+)([A-Za-z0-9\-._~+/]+=*)")
_URL_PASSWORD = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://)([^\s:/?#@\"'<>]*):([^\s/?#\"'<>]*)@")
_URL_TOKEN_USER = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://)([A-Za-z0-9_\-.~%]{20,})@")
_ASSIGN = re.compile(r"(?<![\w.?&/-])(-{0,2}[A-Za-z_][\w.-]*)=(\"(?:[^\"\\\n]|\\.)*\"|'[^'\n]*'|[^\s\"'`]+)")
_QUERY = re.compile(r"([?&;])([A-Za-z_][\w.\-\[\]]*)=([^&\s#\"']+)")
_JSON_KV = re.compile(r'"([A-Za-z_][\w.-]*)"\s*:\s*"((?:[^"\\]|\\.)*)"')
_JSON_KV_ESC = re.compile(r'\\"([A-Za-z_][\w.-]*)\\"\s*:\s*\\"((?:(?!\\").)*)\\"')
_JSON_KV_BARE = re.compile(r'"([A-Za-z_][\w.-]*)"\s*:\s*(-?[\w.+-]+)')
_SINGLE_KV = re.compile(r"'([A-Za-z_][\w.-]*)'\s*:\s*'([^'\n]*)'")
_COLON_KV = re.compile(r"(?<![\w.\"'-])([A-Za-z_][\w.-]*)[ \t]*:[ \t]+([^\s\"',;]+)")
_FLAG_SPACE = re.compile(r"(?<![\w-])(--?[A-Za-z][\w.-]*)[ \t]+('[^'\n]*'|\"[^\"\n]*\"|[^\s\"';&|-][^\s\"';&|]*)")
_FLAG_ALONE = re.compile(r"^--?([A-Za-z][\w.-]*)$")


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


# --- where a keyed rule could fire ----------------------------------------------------
# The keyed rules (_ASSIGN … _FLAG_SPACE) scan a whole line at sre's pace, about 10 us
# each on a 200-character line, and mask only the value of a secret-looking key. Such a
# key holds a secret word, so it contains one of these stems (in any case):
_KEY_STEMS = ("pass", "secret", "token", "key", "auth", "credential", "dsn", "pwd", "cookie", "jwt", "pat")
_TOKEN_CHARS = re.compile(r"[\w.\-\[\]]*")  # a superset of every keyed rule's key characters
_TOKEN_CHARS_B = re.compile(rb"[\w.\-\[\]\x80-\xff]*")
# The rest of the token after a stem, an optional closing quote, then "=" or ":".
_SEPARATED = re.compile(r"""([\w.\-\[\]]*)(?:\\?["'])?\s*([=:])""")  # \s: the JSON rules allow newlines
# On raw bytes, UTF-8 letters count as token characters too (the str rules' \\w is Unicode).
_SEPARATED_B = re.compile(rb"""([\w.\-\[\]\x80-\xff]*)(?:\\?["'])?\s*([=:])""")
# _FLAG_SPACE's key, found from its dash (a literal first: sre then skips to each dash).
_FLAG_KEY = re.compile(r"-(?<![\w-]-)(-?[A-Za-z][\w.-]*)")
_FLAG_KEY_B = re.compile(rb"-(?<![\w-]-)(-?[A-Za-z][\w.\-\x80-\xff]*)")
_LOOK_LEFT = 64
_LEFT_TO_BEARER = ("authorization", "proxy-authorization")  # keys the ":" rules skip
_SUFFIX_START = re.compile(r"[.\-\[\]]")  # a rule's key may start after one of these
_KEY_STEMS_B = tuple(stem.encode() for stem in _KEY_STEMS)
_STEMS_ANY_CASE = re.compile("|".join(_KEY_STEMS), re.IGNORECASE)
try:  # a Rust Aho-Corasick scans a 1 MiB batch for every trigger at once in ~0.2 ms
    import ahocorasick_rs as _ac
except ImportError:  # pragma: no cover - the dependency is declared; keep working without it
    _ac = None


class _Finder:
    """Start and end of every occurrence of some strings (str or bytes), in one pass when possible."""

    def __init__(self, patterns: Iterable[Any]) -> None:
        self.patterns = sorted(set(patterns), key=len, reverse=True)
        self._matcher = None
        if _ac is not None and self.patterns:
            kind = _ac.BytesAhoCorasick if isinstance(self.patterns[0], bytes) else _ac.AhoCorasick
            self._matcher = kind(self.patterns, matchkind=_ac.MATCHKIND_LEFTMOST_FIRST)

    def find(self, data: Any) -> list[tuple[int, int, int]]:
        """(pattern index, start, end) of each occurrence, in order."""
        if self._matcher is not None:
            try:
                return self._matcher.find_matches_as_indexes(data)  # type: ignore[no-any-return]
            except UnicodeEncodeError:  # lone surrogates (bytes that were not UTF-8): find one by one
                pass
        found = []
        for index, pattern in enumerate(self.patterns):
            pos = data.find(pattern)
            while pos >= 0:
                found.append((index, pos, pos + len(pattern)))
                pos = data.find(pattern, pos + 1)
        return sorted(found, key=lambda hit: hit[1])


_STEM_FINDER = _Finder(_KEY_STEMS)  # one pass for all stems instead of a find per stem


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
    secret-looking. Flag keys (``--password``) are found from their dash, as the flag
    rule finds them. Erring here in the safe direction (trying a rule for nothing)
    costs time only.
    """
    found: dict[tuple[int, str], _Candidate] = {}
    for pos, end in _stem_positions(text):
        separated = _SEPARATED.match(text, end)
        if separated is None:
            continue
        token_start = _token_start(text, pos)
        kind = separated.group(2)
        if (token_start, kind) in found:
            continue
        token_end = separated.end(1)
        offsets = _secret_key_offsets(text[token_start:token_end])
        if kind == ":" and text[token_start:token_end].lower() in _LEFT_TO_BEARER:
            continue  # every ":" rule leaves Authorization to the bearer rule
        if offsets is not None:
            found[token_start, kind] = _Candidate(token_start, kind, tuple(token_start + o for o in offsets))
    if "-" in text:
        for flag in _FLAG_KEY.finditer(text):
            if _could_be_secret_key(flag.group(1)):
                found[flag.start(), "-"] = _Candidate(flag.start(), "-", (flag.start(),))
    return [found[k] for k in sorted(found)]


def _token_start(text: str | bytes, pos: int) -> int:
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


_verdicts: dict[str | bytes, tuple[int, ...] | None] = {}


def _secret_key_offsets(token: str | bytes) -> tuple[int, ...] | None:
    """Where in ``token`` a rule's key may start, if any such key is secret-looking; else None.

    Keys start at the token or after ``.``, ``-``, ``[`` or ``]``. Logs repeat their keys,
    so the verdict is remembered per token.
    """
    verdict = _verdicts.get(token, False)
    if verdict is not False:
        return verdict  # type: ignore[return-value]
    text = token if isinstance(token, str) else token.decode("utf-8", "surrogateescape")
    offsets = (0, *(m.end() for m in _SUFFIX_START.finditer(text, 0, len(text) - 1)))
    verdict = offsets if any(_could_be_secret_key(text[o:]) for o in offsets) else None
    if len(_verdicts) > 20000:
        _verdicts.clear()
    _verdicts[token] = verdict
    return verdict


def _at(lowered: str, text: str, word: str, before: int) -> int:
    """Where to start looking for a rule that needs ``word``: just before its first place."""
    if len(lowered) != len(text):
        return 0
    return max(0, lowered.find(word) - before)


def _could_be_secret_key(key: str) -> bool:
    key = key.lstrip("-")
    return bool(key) and is_secret_key(key)


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
    serves: tuple[str, ...]  # candidate kinds: "=" key=, ":" key:, "-" --flag
    at: str  # "keys": each key start; "quote", "escaped", "single": the quote before; "query"
    key: int = 1
    value: int = 2
    keep_quotes: bool = False  # mask inside the quotes of a quoted value
    pair: bool = True  # "key: value" forms, where Authorization is left to the bearer rule

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
    _KeyedRule(_COLON_KV, (":",), "keys"),
    _KeyedRule(_FLAG_SPACE, ("-",), "keys"),
)


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
        value = _unquote(value)
        if value and value != MASK:
            self.found.add(value)
            if "\n" in value or "\\n" in value:  # multi-line values (PEM): their lines are secrets too
                for part in re.split(r"\\n|\n", value):
                    line = part.strip()
                    if len(line) >= 16 and not line.startswith("-----"):  # not the PEM markers
                        self.found.add(line)

    def _keyed(self, key: str, value: str) -> bool:
        return bool(value) and value != MASK and _unquote(value) not in ("", MASK) and is_secret_key(key.lstrip("-"))

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
        for begin in _PEM_BEGIN.finditer(text):  # noqa: B007 - the last BEGIN is wanted
            pass
        if begin is not None and not _PEM_END.search(text, begin.end()):
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
                if m.group(3) == MASK or m.group(3).startswith(MASK):
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
            if m.group(3) in ("", MASK):
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
        if not spans:
            return text, 0, len(candidates)
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
        return "".join(out), len(spans), len(candidates) - len(spans)

    def _value_span(self, text: str, candidate: _Candidate) -> tuple[int, int] | None:
        """Where the value to mask for this candidate key is, if a rule masks one."""
        for rule in _KEYED_RULES:
            if candidate.kind not in rule.serves:
                continue
            for match in rule.matches(text, candidate):
                key, value = match.group(rule.key), match.group(rule.value)
                if rule.pair and key.lower() in _LEFT_TO_BEARER:
                    continue  # the bearer rule's business
                if not self._keyed(key, value):
                    continue
                self._found("secret-key", value)
                start, end = match.span(rule.value)
                if rule.keep_quotes and _unquote(value) != value:
                    start, end = start + 1, end - 1
                return start, end
        return None

    def _known(self, text: str) -> str:
        for value in self.known:
            if value in text:
                self.counts["known-value"] += text.count(value)
                text = text.replace(value, MASK)
        return text

    def text(self, text: str) -> str:
        """All rules on free text (a command line, a health check output, a log line)."""
        if not text:
            return text
        text = self._known(text)
        text = self._pem(text)
        text = self._auth(text)
        text = self._urls(text)
        return self._assignments(text)

    # --- documents ----------------------------------------------------------------------

    def document(self, doc: Any) -> Any:
        """A redacted deep copy of an inspect document (or any JSON value)."""
        return self._value(doc)

    def learn(self, doc: Any) -> None:
        """Find the secrets in ``doc`` so they are masked wherever they appear later."""
        counts = Counter(self.counts)
        self.document(doc)
        self.counts = counts  # learning is not redacting: count only what is written
        self.set_known(set(self.known) | self.found)

    def _value(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: self._item(str(k), v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._value(v) for v in value]
        if isinstance(value, str):
            return self.text(value)
        return value

    def _item(self, key: str, value: Any) -> Any:
        if isinstance(value, str) and value and is_secret_key(key) and value != MASK:
            self._found("secret-key", value)
            return MASK
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            if key == "Env":
                return [self._env(v) for v in value]
            if key in ("Cmd", "Entrypoint", "Args", "Test", "Shell", "OnBuild"):
                return self._args(value)
        return self._value(value)

    def _env(self, entry: str) -> str:
        key, sep, value = entry.partition("=")
        if sep and value and is_secret_key(key) and value != MASK:
            self._found("secret-key", value)
            return f"{key}={MASK}"
        return f"{key}{sep}{self.text(value)}" if sep else self.text(entry)

    def _args(self, args: list[str]) -> list[str]:
        out: list[str] = []
        mask_next = False
        for arg in args:
            if mask_next and arg and not arg.startswith("-") and arg != MASK:
                self._found("secret-key", arg)
                out.append(MASK)
                mask_next = False
                continue
            flag = _FLAG_ALONE.match(arg)
            mask_next = bool(flag and is_secret_key(flag.group(1)))
            out.append(self.text(arg))
        return out


def redact_documents(docs: list[Any], known: Iterable[str] = ()) -> tuple[list[Any], Redactor, list[Exception | None]]:
    """Redact several documents together: a secret found in one is masked in all.

    Returns the redacted documents (None where redaction failed: fail closed), the
    redactor (counts, found values) and the per-document error.
    """
    first = Redactor(known)
    passes: list[Any] = []
    errors: list[Exception | None] = []
    for doc in docs:
        try:
            passes.append(first.document(doc))
            errors.append(None)
        except Exception as exc:
            passes.append(None)
            errors.append(exc)
    # Second pass: every value found anywhere is masked everywhere (e.g. a password from
    # Env that is also a bare argument in Cmd). Rules already applied find nothing new.
    final = Redactor(set(known) | first.found)
    final.counts = first.counts
    final.found = first.found
    out: list[Any] = []
    for index, doc in enumerate(passes):
        if doc is None:
            out.append(None)
            continue
        try:
            out.append(_mask_known(doc, final))
        except Exception as exc:
            out.append(None)
            errors[index] = exc
    return out, final, errors


def _mask_known(value: Any, redactor: Redactor) -> Any:
    if isinstance(value, dict):
        return {k: _mask_known(v, redactor) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_known(v, redactor) for v in value]
    if isinstance(value, str):
        return redactor._known(value)
    return value


class LineRedactor:
    """Redacts successive lines of one text stream (a CI step log, a log excerpt).

    A PEM block spread over several lines is masked from its BEGIN to its END marker.
    """

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor
        self.in_pem = False

    def line(self, text: str) -> str:
        if self.in_pem:
            end = _PEM_END.search(text)
            if end:
                self.in_pem = False
                if text[: end.start()].strip():
                    self.redactor._found("pem-private-key", text[: end.start()])
                    text = MASK + text[end.start() :]
            elif _PEM_BODY.match(text.rstrip("\n")):
                if text.strip():
                    self.redactor._found("pem-private-key", text.strip())
                    return MASK + ("\n" if text.endswith("\n") else "")
                return text
            else:
                self.in_pem = False
        text = self.redactor.text(text)
        begin = None
        for begin in _PEM_BEGIN.finditer(text):  # noqa: B007 - the last BEGIN is wanted
            pass
        if begin is not None and not _PEM_END.search(text, begin.end()):
            self.in_pem = True
        return text


# --- log batches ------------------------------------------------------------------------


# Words and marks that call for a closer look at a line whatever follows them.
# (PEM blocks are looked for per batch; a URL needs an "@" after its "://".)
_SPECIAL = ("bearer", "authorization", "://")
_TS_ALPHABET = frozenset(b"0123456789-:.TZ")


def _spellings(words: Iterable[str]) -> set[bytes]:
    # Lower-casing every batch cost more than the scan: match the usual spellings instead.
    return {v.encode() for w in words for v in (w, w.upper(), w.capitalize())}


class LogRedactor:
    """Redacts batches of whole bundle lines (``<name> <stream> <ts> <data>``) for one container.

    A batch is scanned in one pass for the known secrets and the special triggers
    (``bearer``, ``authorization``, ``://``, ``private key``), and in another for the key
    stems (``pass``, ``token``, ``key`` …), each spelt lower, UPPER or Capitalized
    (``password``, ``DB_PASSWORD``, ``dbPassword``). A line goes through the rules, on
    its data part, when it holds a special trigger or known secret, or a stem whose
    token is followed by ``=`` or ``:``, or a ``--flag`` holding a stem; any other line
    cannot match a rule (see ``_candidates``) and is copied as it is. A PEM block spread
    over several lines is followed per stream until its END marker or a line that cannot
    be part of a key.
    """

    def __init__(self, known: Iterable[str], head_len: int, stream_len: int) -> None:
        self.rules = Redactor(known)
        self.head_len = head_len  # bytes before the data: name, stream, timestamp, spaces
        self.stream_len = stream_len  # bytes identifying the stream: "<name> <stream>"
        self.streams: dict[bytes, LineRedactor] = {}  # per "<name> <stream>": PEM blocks span lines
        self._known_b = [v.encode("utf-8", "surrogateescape") for v in self.rules.known]  # longest first
        self._replaceable: set[bytes] | None = None  # decided on the first batch (needs the name)
        self._special = _Finder(self._known_b + sorted(_spellings(_SPECIAL)))
        self._url = {i for i, p in enumerate(self._special.patterns) if p == b"://"}
        self._stems = _Finder(_spellings(_KEY_STEMS))

    def _safe_to_replace(self, data: bytes) -> set[bytes]:
        """The known secrets that can be replaced in a whole batch at once.

        That is safe for a value without whitespace that is not part of ``<name> <stream>``
        and not made only of timestamp characters: it cannot then touch a line's head.
        The others are masked line by line, in the data part only.
        """
        name = data[: self.stream_len - len(b" stdout")]
        heads = (name + b" stdout", name + b" stderr")
        return {
            v
            for v in self._known_b
            if not any(c in b" \t\r\n\f\v" for c in v) and not any(v in h for h in heads) and not set(v) <= _TS_ALPHABET
        }

    def _special_hits(self, data: bytes) -> tuple[bytes, list[tuple[int, int, int]]]:
        """Replace the known secrets found that are safe to replace batch-wide; the special hits left."""
        hits = self._special.find(data)
        if not hits or not self._known_b:
            return data, hits
        if self._replaceable is None:
            self._replaceable = self._safe_to_replace(data)
        patterns = self._special.patterns
        found = {patterns[index] for index, _, _ in hits} & self._replaceable
        if not found:
            return data, hits
        for value in sorted(found, key=len, reverse=True):
            self.rules.counts["known-value"] += data.count(value)
            data = data.replace(value, MASK_B)
        return data, self._special.find(data)

    @property
    def counts(self) -> Counter[str]:
        return self.rules.counts

    def _flagged(self, line: bytes) -> bool:
        """Does the line hold a ``-flag`` whose key holds a stem?"""
        for flag in _FLAG_KEY_B.finditer(line):
            key = flag.group(1).lower()
            if any(stem in key for stem in _KEY_STEMS_B):
                return True
        return False

    def _lines_to_check(self, data: bytes, special: list[tuple[int, int, int]]) -> list[tuple[int, int]]:
        """(start, end) of the lines that need the rules, in order."""
        marked: dict[int, int] = {}
        head = self.head_len  # a word in the container name or the stream is no reason to look
        for index, pos, hit_end in special:
            start = data.rfind(b"\n", 0, pos) + 1
            if start not in marked and pos - start >= head:
                end = data.find(b"\n", pos)
                end = len(data) if end < 0 else end + 1
                if index in self._url and data.find(b"@", hit_end, end) < 0:
                    continue  # no userinfo to mask
                marked[start] = end
        unsure: dict[int, int] = {}
        separated_at = _SEPARATED_B.match
        verdicts = _verdicts
        start = line_end = -1  # the line of the previous hit: hits come in order
        for _, pos, end in self._stems.find(data):
            if pos >= line_end:
                start = data.rfind(b"\n", 0, pos) + 1
                line_end = data.find(b"\n", end)
                line_end = len(data) if line_end < 0 else line_end + 1
            if start in marked or pos - start < head:
                continue
            separated = separated_at(data, end, line_end)
            if separated is None:
                unsure[start] = line_end
                continue
            token = data[_token_start(data, pos) : separated.end(1)]
            verdict = verdicts.get(token, False)
            if verdict is False:
                verdict = _secret_key_offsets(token)
            if verdict is not None:
                marked[start] = line_end
                unsure.pop(start, None)
            else:
                unsure[start] = line_end  # still to check for a --flag
        for start, end in unsure.items():
            if self._flagged(data[start:end]):
                marked[start] = end
        return sorted(marked.items())

    def batch(self, data: bytes) -> bytes:
        if not data:
            return data
        if b"PRIVATE KEY" in data or any(r.in_pem for r in self.streams.values()):
            return self._every_line(data)
        data, special = self._special_hits(data)
        lines = self._lines_to_check(data, special)
        if not lines:
            return data
        out: list[bytes] = []
        done = 0
        for start, end in lines:
            out.append(data[done:start])
            out.append(self.line(data[start:end]))
            done = end
        out.append(data[done:])
        return b"".join(out)

    def _every_line(self, data: bytes) -> bytes:
        lines = data.split(b"\n")
        tail = lines.pop()  # b"" when the batch ends with a newline
        out = [self.line(line + b"\n") for line in lines]
        if tail:
            out.append(self.line(tail))
        return b"".join(out)

    def line(self, line: bytes) -> bytes:
        head, body = line[: self.head_len], line[self.head_len :]
        stream = line[: self.stream_len]
        redactor = self.streams.get(stream)
        if redactor is None:
            redactor = self.streams[stream] = LineRedactor(self.rules)
        text = redactor.line(body.decode("utf-8", "surrogateescape"))
        return head + text.encode("utf-8", "surrogateescape")
