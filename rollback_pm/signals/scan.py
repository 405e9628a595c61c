"""One streaming pass over a bundle log: every error line and stack trace, per container.

The log is read in blocks of whole lines. One Aho-Corasick pass per block finds the
lines holding a trigger word (``levels.TRIGGERS``); only those are looked at in Python,
so a log of INFO lines costs little more than reading it. When a line is an error or a
trace head, the container's following lines (found by their ``<name> `` prefix, past
other containers' interleaved lines and its other stream, within WINDOW bytes and MAX_GAP_S seconds) are fed
to a ``traces.Block`` until it ends; those lines are then not looked at again. A block
left open at the end of a read block goes on in the next one.

Line numbers: each block's lines are counted with one ``count(b"\\n" + c)`` per distinct
first byte ``c`` of the container names (a two-byte pattern is searched ~4x faster than a
lone newline, and in a bundle every newline but the last is followed by a name), or
exactly with ``count(b"\\n")`` when the names are not known.

Memory is bounded whatever the log's size: one block (BLOCK bytes plus one line), per
container at most MAX_TEMPLATES signals with excerpts within EXCERPT_BUDGET characters,
and a sparse index of one entry per block for the tail pass.
"""

from __future__ import annotations

import os
import re
import time
from bisect import bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

import ahocorasick_rs

from rollback_pm.evidence.lines import TS_LEN
from rollback_pm.signals.levels import ERROR, FATAL, RANK, TRIGGERS, classify
from rollback_pm.signals.model import LineRef, ScanStats, Signal
from rollback_pm.signals.templates import template
from rollback_pm.signals.traces import END, GO, STOP, Block, trace_start

BLOCK = 4 << 20
WINDOW = 256 << 10  # a block's next line must come within this many bytes...
MAX_GAP_S = 2.0  # ...and seconds of its previous one
MAX_LINE_BYTES = 4 * BLOCK  # the bundle's lines are at most 1 MiB plus their prefix
MAX_TEXT_BYTES = 4096  # of a line, looked at
MAX_TEMPLATES = 100  # distinct signals kept per container
MAX_KEYS = 10_000  # distinct signal keys remembered per container (a baseline's yardstick)
EXCERPT_BUDGET = 256 << 10  # characters of excerpts kept per container; past it, cause lines only
_MATCHER = ahocorasick_rs.BytesAhoCorasick(list(TRIGGERS), matchkind=ahocorasick_rs.MATCHKIND_LEFTMOST_FIRST)
_STREAMS = (b"stdout", b"stderr")
_TRACE_STARTS = ("Traceback", "panic: ", "fatal error: ", "Exception in thread ", "  + Exception Group")
# Where a line's own level may be written. One literal alternation: re finds it fast.
_LEVEL_MARK = re.compile(
    rb'INFO|DEBUG|TRACE|WARN|NOTICE|level=|lvl=|"level"|"severity"|"lvl"|"levelname"|\[info\]|\[debug\]|\[warn|\[notice\]|LOG:  '
)
_LOW_WORD = re.compile(rb"(?:INFO|DEBUG|TRACE|WARNING|WARN|NOTICE)(?![\w-])")
_LOW_VALUE = re.compile(rb'\s*:?\s*"?(?:info|debug|warn|warning|trace|notice|INFO|DEBUG|WARN|WARNING|TRACE|NOTICE)\b')
_JSON_LOW = re.compile(
    rb'"(?:level|severity|lvl|levelname)"\s*:\s*"(?:info|debug|warn|warning|trace|notice|INFO|DEBUG|WARN|WARNING|TRACE|NOTICE)"'
    rb'|"level"\s*:\s*[1-4]\d\b'
)
_WORDISH = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_LETTER_MARKS = frozenset(b"IDTWN")
_FIELD_MARKS = frozenset(b'l"')


def _below_error_first(data: bytes | bytearray, start: int, end: int) -> bool:
    """Does a level below error come before ``end`` (the trigger) in data[start:]?

    Then the line is not an error and needs no closer look: the first level word decides,
    as in ``levels.classify``. Only the unambiguous forms count; anything else is left to it.
    """
    match = _LEVEL_MARK.search(data, start, end)
    if match is None:
        return False
    at = match.start()
    first = data[at]
    if first in _LETTER_MARKS:  # a bare word: whole (not INFO_SERVICE), and a low one
        return data[at - 1] not in _WORDISH and _LOW_WORD.match(data, at) is not None
    if first in _FIELD_MARKS:  # level=info, "level":"info"
        return _LOW_VALUE.match(data, match.end(), end) is not None
    return True  # [info] [debug] [warn...] [notice], PostgreSQL's LOG:


@dataclass
class BlockInfo:
    """Where one read block is: for the tail pass to find a container's last lines again."""

    offset: int
    length: int
    first_line: int
    lines: int
    first_ts: str
    last_ts: str


@dataclass
class ContainerScan:
    name: str
    start: str | None  # signals before it are marked "before the bad version started"
    signals: dict[str, Signal] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)  # every signal key, kept or not (up to MAX_KEYS)
    first_signal: Signal | None = None
    dropped: int = 0
    excerpt_chars: int = 0
    # the open block and how far it may still look for its next line
    block: Block | None = None
    classified_level: str = ERROR
    classified_format: str = ""
    structured_message: str | None = None
    window: int = WINDOW
    skip_until: int = 0  # absolute offset: lines before it were taken by a block


@dataclass
class ScanResult:
    containers: dict[str, ContainerScan]
    blocks: list[BlockInfo]
    stats: ScanStats
    exact_lines: bool  # False: a container outside the given names appeared; its line numbers may be off


def _seconds(ts: str) -> float:
    try:
        return datetime.fromisoformat(ts[:19]).timestamp() + float("0" + ts[19:29])
    except ValueError:
        return 0.0


class Scanner:
    def __init__(
        self,
        path: str,
        names: list[str] | None = None,
        starts: dict[str, str] | None = None,
        default_start: str | None = None,
    ) -> None:
        self.path = path
        self.starts = starts or {}
        self.default_start = default_start
        self.containers: dict[str, ContainerScan] = {}
        # b"\n" and the first byte of each container name: what every line but the first starts with
        self.firsts: list[bytes] | None = sorted({b"\n" + n.encode()[:1] for n in names if n}) if names else None
        self.exact_lines = True
        self.blocks: list[BlockInfo] = []
        self.stats = ScanStats()
        # the current read block
        self._data: bytes | bytearray = b""
        self._offset = 0
        self._line_base = 1
        # Positions of the current block whose line numbers are known (sorted): a line number
        # is counted from the nearest one before it.
        self._end = 0  # where the current block's whole lines end
        self._marks: list[int] = [0]
        self._mark_lines: list[int] = [1]

    # --- the pass ---------------------------------------------------------------------
    def run(self, chunks: Iterable[bytes] | None = None) -> ScanResult:
        """Scan the log file, or ``chunks`` of bundle-format bytes (cut anywhere) instead."""
        began = time.perf_counter()
        if chunks is not None:
            for block in whole_lines(chunks):
                self._scan_block(block, len(block))
        else:
            fd = os.open(self.path, os.O_RDONLY)
            try:
                offset = 0
                # Every block is read into the same buffer: a new 4 MiB object per block
                # cost either its page faults (a mapping of its own) or a heap it fragments.
                buffer = bytearray(BLOCK)
                data: bytes | bytearray
                while True:
                    got = os.preadv(fd, [buffer], offset)
                    if not got:
                        break
                    data = buffer if got == BLOCK else buffer[:got]
                    # Up to the last line end: the cut line is read again with the next block
                    # (cheaper than copying every block onto the previous one's tail).
                    end = data.rfind(b"\n") + 1
                    if end == 0 and got == BLOCK:
                        data = os.pread(fd, MAX_LINE_BYTES, offset)
                        end = data.rfind(b"\n") + 1
                    self._scan_block(data, end or len(data))
                    offset += end or len(data)
            finally:
                os.close(fd)
        for scan in self.containers.values():
            self._close(scan)
        self.stats.seconds = time.perf_counter() - began
        self.stats.exact_lines = self.exact_lines
        return ScanResult(self.containers, self.blocks, self.stats, self.exact_lines)

    def _scan_block(self, data: bytes | bytearray, size: int) -> None:
        """Scan data[:size], whole lines (the rest of ``data`` belongs to the next block)."""
        self._data, self._end, self._marks, self._mark_lines = data, size, [0], [self._line_base]
        for scan in list(self.containers.values()):
            if scan.block is not None:
                self._follow(scan, 0)
        last_line_start = last_line_end = -1
        for _, start, end in _MATCHER.find_matches_as_indexes(memoryview(data)[:size]):
            if start < last_line_end and last_line_start >= 0:
                continue  # another trigger in the line just looked at
            line_start = data.rfind(b"\n", 0, start) + 1
            if line_start == last_line_start:
                continue
            line_end = data.find(b"\n", start, size)
            if line_end < 0:
                line_end = size
            space = data.find(b" ", line_start, line_end)
            text_start = space + 39  # after " stdout " and the timestamp's 30 bytes and a space
            if end <= text_start and space > 0:
                continue  # the trigger is in the prefix (a container named "error-svc"): look on
            last_line_start, last_line_end = line_start, line_end
            if data[text_start : text_start + 1] == b"{":
                if _JSON_LOW.search(data, text_start, line_end):
                    continue  # a JSON line's level field decides, wherever it is
            elif _below_error_first(data, text_start, start):
                continue  # INFO, level=info, LOG: ... come first: the line's level is not an error
            parsed = _parse(data, line_start, line_end)
            if parsed is None:
                self.stats.malformed += 1
                continue
            name, stream, ts, text_start = parsed
            scan = self._container(name)
            if self._offset + line_start < scan.skip_until:
                continue
            self.stats.candidates += 1
            self._candidate(scan, _text(data, text_start, line_end), line_start, ts, stream, line_end + 1)
        last_start = data.rfind(b"\n", 0, size - 1) + 1
        lines = self._line_at(last_start) - self._line_base + 1 if size else 0
        first_end, last_end = data.find(b"\n", 0, size), data.find(b"\n", last_start, size)
        self.blocks.append(
            BlockInfo(
                self._offset,
                size,
                self._line_base,
                lines,
                _ts_of(data, 0, size if first_end < 0 else first_end),
                _ts_of(data, last_start, size if last_end < 0 else last_end),
            )
        )
        self.stats.bytes += size
        self.stats.lines += lines
        self._offset += size
        self._line_base += lines

    def _candidate(self, scan: ContainerScan, text: str, line_start: int, ts: str, stream: str, next_pos: int) -> None:
        language = trace_start(text) if text.startswith(_TRACE_STARTS) or ":in " in text else None
        if language is not None:
            level, fmt, message = (FATAL if language == GO else ERROR), "trace", None
        else:
            found = classify(text)
            if found is None:
                return
            level, fmt = found.level, found.format
            message = found.message if fmt in ("json", "logfmt") else None
        self._close(scan)
        scan.block = Block.open(text, self._line_at(line_start), ts, stream, language)
        scan.classified_level, scan.classified_format, scan.structured_message = level, fmt, message
        scan.window = WINDOW
        self._follow(scan, next_pos)

    def _follow(self, scan: ContainerScan, pos: int) -> None:
        """Feed the container's next lines to its open block until the block ends."""
        data, size = self._data, self._end
        if scan.block is None:
            return
        # A block is written to one stream: Docker may timestamp the other stream's lines
        # in between (a stdout line in the middle of a stderr traceback).
        needle = f"\n{scan.name} {scan.block.stream} ".encode()
        while scan.block is not None:
            if pos == 0 and data.startswith(needle[1:], 0, size):
                found = 0
            else:
                limit = min(size, pos + scan.window)
                found = data.find(needle, max(pos - 1, 0), min(size, limit + len(needle)))
                if found < 0:
                    if limit >= size and scan.window > size - pos:
                        scan.window -= max(0, size - pos)  # it may still come in the next read block
                    else:
                        self._close(scan)
                    return
                found += 1
            line_end = data.find(b"\n", found, size)
            if line_end < 0:
                line_end = size
            parsed = _parse(data, found, line_end)
            if parsed is None:
                self._close(scan)
                return
            ts, text_start = parsed[2], parsed[3]
            if ts[:19] != scan.block.last_ts[:19] and _seconds(ts) - _seconds(scan.block.last_ts) > MAX_GAP_S:
                self._close(scan)
                return
            verdict = scan.block.feed(_text(data, text_start, line_end), self._line_at(found), ts)
            if verdict == STOP:
                self._close(scan)
                return
            scan.skip_until = self._offset + line_end + 1
            scan.window = WINDOW
            if verdict == END:
                self._close(scan)
                return
            pos = line_end + 1

    def _close(self, scan: ContainerScan) -> None:
        """The open block is complete: count it under its template, or keep it as a new signal."""
        block, scan.block = scan.block, None
        if block is None:
            return
        trace = block.is_trace
        cause = block.cause or block.header or block.head[0]
        text = scan.structured_message if (scan.structured_message and not trace) else cause
        level = scan.classified_level
        if trace and block.language == GO and cause.startswith(("panic: ", "fatal error: ")):
            level = FATAL  # the process died of it (a panic recovered by net/http did not kill it)
        kind = "trace" if trace else "line"
        language = block.language if (trace or block.language == "postgresql") else None
        tmpl = template(text)
        key = f"{kind}:{language or ''}:{tmpl}"
        after_start = scan.start is None or block.first_ts >= scan.start
        if len(scan.seen) < MAX_KEYS:
            scan.seen.add(key)
        known = scan.signals.get(key)
        if known is not None:
            known.count += 1
            known.last_ts, known.last_line = block.first_ts, block.first_line
            known.after_start = known.after_start or after_start
            if after_start and scan.first_signal is None:
                scan.first_signal = self._signal(scan, block, kind, level, language, text, tmpl)
            return
        signal = self._signal(scan, block, kind, level, language, text, tmpl)
        if after_start and scan.first_signal is None:
            scan.first_signal = signal
        if len(scan.signals) >= MAX_TEMPLATES and not self._evict(scan, signal):
            scan.dropped += 1
            return
        scan.signals[key] = signal
        scan.excerpt_chars += sum(map(len, signal.excerpt))

    def _signal(
        self, scan: ContainerScan, block: Block, kind: str, level: str, language: str | None, text: str, tmpl: str
    ) -> Signal:
        excerpt = block.excerpt()
        elided = block.elided
        if scan.excerpt_chars + sum(map(len, excerpt)) > EXCERPT_BUDGET:
            excerpt, elided = [*([block.header] if block.header else []), text], max(0, block.count - 1)
        return Signal(
            container=scan.name,
            kind=kind,
            level=level,
            format=scan.classified_format,
            language=language,
            text=text,
            template=tmpl,
            excerpt=excerpt,
            elided=elided,
            ref=LineRef(self.path, block.first_line, block.last_line),
            stream=block.stream,
            first_ts=block.first_ts,
            last_ts=block.first_ts,
            last_line=block.first_line,
            header=block.header,
            after_start=scan.start is None or block.first_ts >= scan.start,
        )

    @staticmethod
    def _evict(scan: ContainerScan, newcomer: Signal) -> bool:
        """Full: a stronger newcomer takes the place of the weakest single-occurrence signal."""

        def strength(s: Signal) -> tuple[int, int, int]:
            return (s.kind == "trace", RANK[s.level], s.count)

        weakest = min(
            (s for s in scan.signals.values() if s is not scan.first_signal),
            key=strength,
            default=None,
        )
        if weakest is None or strength(weakest) >= strength(newcomer):
            return False
        del scan.signals[weakest.key]
        scan.excerpt_chars -= sum(map(len, weakest.excerpt))
        scan.dropped += 1
        return True

    # --- helpers --------------------------------------------------------------------------
    def _container(self, name: str) -> ContainerScan:
        scan = self.containers.get(name)
        if scan is None:
            scan = self.containers[name] = ContainerScan(name=name, start=self.starts.get(name, self.default_start))
            if self.firsts is not None and b"\n" + name.encode()[:1] not in self.firsts:
                self.exact_lines = False  # its earlier lines were not counted: say so
                self.firsts = None
        return scan

    def _count(self, start: int, end: int) -> int:
        """Newlines in data[start:end] that are followed by another line inside the block."""
        data = self._data
        if self.firsts is None:
            return data.count(b"\n", start, min(end, self._end - 1))
        stop = min(end + 1, self._end)
        if len(self.firsts) == 1:
            return data.count(self.firsts[0], start, stop)
        return sum(data.count(first, start, stop) for first in self.firsts)

    def _line_at(self, pos: int) -> int:
        """The 1-based line number of the line starting at ``pos`` of the current block."""
        index = bisect_right(self._marks, pos) - 1
        mark = self._marks[index]
        if mark == pos:
            return self._mark_lines[index]
        line = self._mark_lines[index] + self._count(mark, pos)
        self._marks.insert(index + 1, pos)
        self._mark_lines.insert(index + 1, line)
        return line


def whole_lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The chunks re-cut at line ends, about BLOCK bytes each (a line longer than BLOCK goes whole)."""
    carry = b""
    pending: list[bytes] = []
    size = 0
    for chunk in chunks:
        pending.append(chunk)
        size += len(chunk)
        if size < BLOCK:
            continue
        buf = b"".join([carry, *pending])
        pending.clear()
        size = 0
        cut = buf.rfind(b"\n") + 1
        if cut == 0 and len(buf) < MAX_LINE_BYTES:
            carry = buf
            continue
        if cut == 0:
            cut = len(buf)  # not a bundle line: no newline for this long, take it as it is
        carry = buf[cut:]
        yield buf[:cut] if cut < len(buf) else buf
    rest = b"".join([carry, *pending])
    if rest:
        yield rest


def _parse(data: bytes | bytearray, start: int, end: int) -> tuple[str, str, str, int] | None:
    """(name, stream, timestamp, where the text starts) of a bundle line, or None if it is not one."""
    space = data.find(b" ", start, end)
    if space <= start:
        return None
    stream = data[space + 1 : space + 7]
    ts_start = space + 8
    text_start = ts_start + TS_LEN + 1
    if stream not in _STREAMS or data[ts_start - 1 : ts_start] != b" " or text_start - 1 > end:
        return None
    ts = data[ts_start : ts_start + TS_LEN]
    if ts[10:11] != b"T" or ts[-1:] != b"Z":
        return None
    try:
        return data[start:space].decode(), stream.decode(), ts.decode(), min(text_start, end)
    except UnicodeDecodeError:
        return None


def _ts_of(data: bytes | bytearray, start: int, end: int) -> str:
    parsed = _parse(data, start, end)
    return parsed[2] if parsed else ""


def _text(data: bytes | bytearray, start: int, end: int) -> str:
    return data[start : min(end, start + MAX_TEXT_BYTES)].decode("utf-8", "replace").rstrip("\r")
