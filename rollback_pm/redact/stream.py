"""The streaming layer: redact batches of bundle log lines, looking closely only where a rule can fire."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from rollback_pm.redact.finder import Finder
from rollback_pm.redact.formats import COMMAND_TRIGGERS, FORMAT_TRIGGERS
from rollback_pm.redact.keys import MASK_B, SUFFIX_VERDICTS, TOKEN_VERDICTS, suffix_verdict, token_verdict
from rollback_pm.redact.text import (
    AFTER_TOKEN_B,
    AFTER_TOKEN_FIRST,
    ALL_STEMS,
    FLAG_KEY_B,
    KEY_STEMS_B,
    LONG_VALUE_B,
    TOKEN_TABLE,
    LineRedactor,
    Redactor,
)

# Words and marks that call for a closer look at a line whatever follows them.
# (PEM blocks are looked for per batch; a URL needs an "@" after its "://".) The token
# formats' and commands' triggers are looked for as they are spelt.
_SPECIAL = ("bearer", "authorization", "://")
_EXACT = tuple(t.encode() for t in FORMAT_TRIGGERS + COMMAND_TRIGGERS)
_TS_ALPHABET = frozenset(b"0123456789-:.TZ")
# An Authorization header or bearer credential whose value is masked already: the bearer
# rules leave it as it is (text.Redactor._auth).
_AUTH_MASKED_B = re.compile(
    rb"(?i)(?:(?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?"
    rb"(?:(?:basic|bearer|token|digest|negotiate|apikey|api-key|key)\s+)?|bearer\s+)" + re.escape(MASK_B)
)
# A keyed value that is masked already, as every keyed rule would take it: nothing to do.
_MASKED_VALUE_B = re.compile(
    rb"[ \t]*(?:\"" + re.escape(MASK_B) + rb"\"|'" + re.escape(MASK_B) + rb"'|" + re.escape(MASK_B) + rb"(?=[\s\"']|$))"
)


def _spellings(words: Iterable[str]) -> set[bytes]:
    # Lower-casing every batch cost more than the scan: match the usual spellings instead.
    return {v.encode() for w in words for v in (w, w.upper(), w.capitalize())}


class LogRedactor:
    """Redacts batches of whole bundle lines (``<name> <stream> <ts> <data>``) for one container.

    The known secrets that cannot touch a line's head are replaced in the whole batch at
    once. The batch is then scanned, in a few Aho-Corasick passes, for the other known
    secrets, the special triggers (``bearer``, ``authorization``, ``://``, the token
    formats' prefixes such as ``AKIA`` or ``ghp_``, command names such as ``curl``) and the
    key stems (``pass``, ``token``, ``key``, ``sess`` …), words spelt lower, UPPER or
    Capitalized (``password``, ``DB_PASSWORD``, ``dbPassword``). A line goes through the
    rules, on its data part, only when one of these can make a rule fire there:

    - a known secret or a special trigger (a URL only with an ``@`` after it; not a bearer
      credential that is masked already, as when a known secret was replaced);
    - a stem whose token (found with one ``bytes.find`` in the batch translated to token
      classes) is a secret key followed by ``=`` or ``:`` and a value not masked yet, or a
      semi-secret key followed by a value long enough to be high-entropy;
    - a stem whose token is a secret key followed by blanks and a long value (prose);
    - a ``--flag`` holding a stem and followed by a value.

    Any other line cannot match a rule (see ``text._candidates``) and is copied as it is; a
    property test checks that the lines skipped are exactly those the rules leave alone.
    A PEM block spread over several lines is followed per stream until its END marker or
    a line that cannot be part of a key.
    """

    def __init__(self, known: Iterable[str], head_len: int, stream_len: int) -> None:
        self.rules = Redactor(known)
        self.head_len = head_len  # bytes before the data: name, stream, timestamp, spaces
        self.stream_len = stream_len  # bytes identifying the stream: "<name> <stream>"
        self.streams: dict[bytes, LineRedactor] = {}  # per "<name> <stream>": PEM blocks span lines
        self._known_b = [v.encode("utf-8", "surrogateescape") for v in self.rules.known]  # longest first
        # Decided on the first batch (needs the name): the known secrets replaced batch-wide,
        # and the finder of the special triggers with the other known secrets.
        self._replace: list[bytes] = []
        self._replace_finder: Finder | None = None
        self._finders: list[Finder] | None = None
        self._url: list[set[int]] = []  # per finder: the patterns that are "://"
        self._auth: list[set[int]] = []  # per finder: the spellings of bearer and authorization
        self._stems = Finder(_spellings(ALL_STEMS))

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

    def _prepare(self, data: bytes) -> None:
        """On the first batch (the heads show the container's name): split the known secrets."""
        replaceable = self._safe_to_replace(data)
        self._replace = sorted(replaceable, key=len, reverse=True)
        # A few values are looked for with bytes.find (memchr-fast); many, in one pass.
        self._replace_finder = Finder(self._replace) if len(self._replace) > 16 else None
        rest = [v for v in self._known_b if v not in replaceable]
        # Several automata: one holding many patterns, short ones among them, loses its SIMD
        # prefilter and scans ~10x slower than a few that each keep it.
        triggers = sorted(_spellings(_SPECIAL)) + list(_EXACT)
        short = [t for t in triggers if len(t) < 4]
        groups = [[t for t in triggers if t not in short], short, rest]
        self._finders = [Finder(group) for group in groups if group]
        self._url = [{i for i, p in enumerate(f.patterns) if p == b"://"} for f in self._finders]
        self._auth = [
            {i for i, p in enumerate(f.patterns) if p.lower() in (b"bearer", b"authorization")} for f in self._finders
        ]

    def _special_hits(self, data: bytes) -> tuple[bytes, list[list[tuple[int, int, int]]]]:
        """Replace the known secrets that are safe to replace batch-wide; then the special hits."""
        if self._finders is None:
            self._prepare(data)
        if self._replace:
            if self._replace_finder is not None:
                patterns = self._replace_finder.patterns
                present = sorted({patterns[i] for i, _, _ in self._replace_finder.find(data)}, key=len, reverse=True)
            else:
                present = [v for v in self._replace if v in data]
            for value in present:  # longest first, as Redactor.mask_known does
                replaced = data.replace(value, MASK_B)
                if replaced is data:
                    continue  # inside a longer value replaced before
                grew = len(MASK_B) - len(value)
                self.rules.counts["known-value"] += (len(replaced) - len(data)) // grew if grew else data.count(value)
                data = replaced
        assert self._finders is not None
        return data, [finder.find(data) for finder in self._finders]

    @property
    def counts(self) -> Counter[str]:
        return self.rules.counts

    def _flagged(self, line: bytes) -> bool:
        """Does the line hold a ``-flag`` whose key holds a stem?"""
        for flag in FLAG_KEY_B.finditer(line):
            key = flag.group(1).lower()
            if any(stem in key for stem in KEY_STEMS_B):
                return True
        return False

    def _lines_to_check(self, data: bytes, special: list[list[tuple[int, int, int]]]) -> list[tuple[int, int]]:
        """(start, end) of the lines that need the rules, in order."""
        marked: dict[int, int] = {}
        head = self.head_len  # a word in the container name or the stream is no reason to look
        auth_masked_at = _AUTH_MASKED_B.match
        for hits, url_hits, auth_hits in zip(special, self._url, self._auth):
            no_userinfo = url_hits and b"@" not in data
            start = line_end = -1  # the line of the previous hit: hits come in order
            for index, pos, hit_end in hits:
                if pos >= line_end:
                    start = data.rfind(b"\n", 0, pos) + 1
                    line_end = data.find(b"\n", pos)
                    line_end = len(data) if line_end < 0 else line_end + 1
                elif start in marked:
                    continue
                if pos - start < head:
                    continue
                if index in url_hits and (no_userinfo or data.find(b"@", hit_end, line_end) < 0):
                    continue  # no userinfo to mask
                if index in auth_hits and auth_masked_at(data, pos, line_end):
                    continue  # "Bearer [REDACTED]": a known secret already replaced, nothing left to do
                marked[start] = line_end
        unsure: dict[int, int] = {}  # lines where a --flag holding a stem may take a value
        after_at = AFTER_TOKEN_B.match
        masked_value_at = _MASKED_VALUE_B.match
        long_value_at = LONG_VALUE_B.match
        verdicts = SUFFIX_VERDICTS
        tokens = TOKEN_VERDICTS
        stems = self._stems.find(data)
        classes = data.translate(TOKEN_TABLE) if stems else b""  # 1 for a token's bytes, 0 for the others
        start = line_end = -1
        for _, pos, end in stems:
            if pos >= line_end:
                start = data.rfind(b"\n", 0, pos) + 1
                line_end = data.find(b"\n", end)
                line_end = len(data) if line_end < 0 else line_end + 1
            if start in marked or pos - start < head:
                continue
            token_end = classes.find(b"\0", end, line_end)
            if token_end < 0 or data[token_end] not in AFTER_TOKEN_FIRST:
                continue  # no separator, no blank after the token: no rule can take it as a key
            after = after_at(data, token_end, line_end)
            if after is None:
                continue
            inside = pos > 0 and classes[pos - 1]
            separator = after.group(1)
            if separator is None:
                if after.group(3) is None:  # a blank and a value: a --flag's (its key has a dash first)
                    if inside:
                        unsure[start] = line_end
                    continue
                # "password Xk9…": the prose rule wants a token that is a secret key.
            elif inside and data[token_end] in b" \t":
                unsure[start] = line_end  # "--pass = x": a --flag's value may be the "=" itself
            # A stem that starts its token: the verdict on the whole token. Inside a token:
            # the verdict on its part from the stem on (keys.suffix_verdict), which errs
            # towards a look, so there is no need to find where the token starts.
            suffix = data[pos:token_end]
            if inside:
                verdict = verdicts.get(suffix)
                if verdict is None:
                    verdict = suffix_verdict(suffix)
            else:
                if separator == b":" and suffix.lower() == b"authorization":
                    continue  # the ":" rules leave Authorization to the bearer rule
                verdict = tokens.get(suffix)
                if verdict is None:
                    verdict = token_verdict(suffix)
            if not verdict:
                continue
            if separator is None:
                if verdict == 2:
                    marked[start] = line_end
            elif masked_value_at(data, after.end(), line_end):
                continue  # "token=[REDACTED]": masked already (a known secret replaced batch-wide)
            elif verdict == 2 or long_value_at(data, after.end(), line_end):
                marked[start] = line_end
        for start, end in unsure.items():
            if start not in marked and self._flagged(data[start:end]):
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
