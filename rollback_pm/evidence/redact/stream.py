"""The streaming layer: redact batches of bundle log lines, looking closely only where a rule can fire."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from rollback_pm.evidence.redact.finder import Finder
from rollback_pm.evidence.redact.formats import COMMAND_TRIGGERS, FORMAT_TRIGGERS
from rollback_pm.evidence.redact.keys import MASK_B
from rollback_pm.evidence.redact.text import (
    ALL_STEMS,
    FLAG_KEY_B,
    KEY_STEMS_B,
    LONG_VALUE_B,
    PROSE_B,
    SEPARATED_B,
    VERDICTS,
    LineRedactor,
    Redactor,
    secret_key_offsets,
    strictly_secret,
    token_start,
)

# Words and marks that call for a closer look at a line whatever follows them.
# (PEM blocks are looked for per batch; a URL needs an "@" after its "://".) The token
# formats' and commands' triggers are looked for as they are spelt.
_SPECIAL = ("bearer", "authorization", "://")
_EXACT = tuple(t.encode() for t in FORMAT_TRIGGERS + COMMAND_TRIGGERS)
_TS_ALPHABET = frozenset(b"0123456789-:.TZ")


def _spellings(words: Iterable[str]) -> set[bytes]:
    # Lower-casing every batch cost more than the scan: match the usual spellings instead.
    return {v.encode() for w in words for v in (w, w.upper(), w.capitalize())}


class LogRedactor:
    """Redacts batches of whole bundle lines (``<name> <stream> <ts> <data>``) for one container.

    A batch is scanned in one pass for the known secrets and the special triggers
    (``bearer``, ``authorization``, ``://``, ``private key``, the token formats' prefixes
    such as ``AKIA`` or ``ghp_``, command names such as ``curl``), and in another for the
    key stems (``pass``, ``token``, ``key``, ``sess`` …), each spelt lower, UPPER or
    Capitalized (``password``, ``DB_PASSWORD``, ``dbPassword``). A line goes through the
    rules, on its data part, when it holds a special trigger or known secret, a stem whose
    token is a secret key followed by ``=`` or ``:`` (a semi-secret key only when a value
    long enough to be high-entropy follows), a stem followed by blanks and a long value
    (prose: ``password Xy7…``), or a ``--flag`` holding a stem; any other line cannot
    match a rule (see ``text._candidates``) and is copied as it is. A PEM block spread
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
        self._special = Finder(self._known_b + sorted(_spellings(_SPECIAL)) + list(_EXACT))
        self._url = {i for i, p in enumerate(self._special.patterns) if p == b"://"}
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
        for flag in FLAG_KEY_B.finditer(line):
            key = flag.group(1).lower()
            if any(stem in key for stem in KEY_STEMS_B):
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
        separated_at = SEPARATED_B.match
        prose_at = PROSE_B.match
        long_value_at = LONG_VALUE_B.match
        verdicts = VERDICTS
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
                if prose_at(data, end, line_end):  # "password Xy7…": the prose rule decides
                    marked[start] = line_end
                    unsure.pop(start, None)
                else:
                    unsure[start] = line_end
                continue
            token = data[token_start(data, pos) : separated.end(1)]
            verdict = verdicts.get(token, False)
            if verdict is False:
                verdict = secret_key_offsets(token)
            if verdict is not None and (strictly_secret(token) or long_value_at(data, separated.end(), line_end)):
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
