"""Byte budgets and the merged ``rollback-<ts>.log``.

``allowances`` shares ``--max-total-bytes`` between containers by water-filling: a
container whose log fits in an equal share keeps all of it, the rest split what is left
equally, each keeping its newest bytes. Every container's end (where it failed) stays in
the bundle even when a chatty neighbour logs far more.

``write_log`` interleaves the containers' spools by timestamp (windows of lines sorted
together, see ``_merge``), hashing as it writes; one container's spool is copied, or
published as is when it is a single whole segment.
"""

from __future__ import annotations

import hashlib
import os
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from itertools import accumulate, islice
from operator import itemgetter, le
from typing import IO, Any, Protocol

from rollback_pm.evidence.evdir import EvidenceDir, temp_name, write_all
from rollback_pm.evidence.lines import TS_LEN
from rollback_pm.evidence.spool import SYNC_EVERY, Segment, Spool
from rollback_pm.evidence.writer import BackgroundWriter

# Memory is about 2 x BLOCK per source plus (writer depth + 2) x FLUSH: ~4 MiB for 8
# sources (it was ~10 MiB with 256 KiB blocks and 1 MiB flushes, for no speed).
FLUSH = 256 << 10  # bytes joined and handed to the writer thread at a time
BLOCK = 128 << 10  # lines read per source per merge window


def allowances(sizes: list[int], per_container: int, total: int | None) -> list[int]:
    capped = [min(size, per_container) for size in sizes]
    if total is None or sum(capped) <= total:
        return capped
    result = [0] * len(capped)
    left = max(0, total)
    order = sorted(range(len(capped)), key=lambda i: capped[i])
    for position, index in enumerate(order):
        share = left // (len(order) - position)
        result[index] = min(capped[index], share)
        left -= result[index]
    return result


@dataclass
class Source:
    spool: Spool
    key_offset: int  # where the timestamp starts in each line: len("<name> <stream> ")
    ranges: list[tuple[Segment, int, int]] = field(default_factory=list)
    written: int = 0

    @property
    def size(self) -> int:
        return sum(end - start for _, start, end in self.ranges)


class _Out:
    """The merged log's writer: joining in the caller, disk work in a thread.

    os.write, sha256 and fdatasync release the GIL, so they overlap with the merge's
    sorting; syncing every SYNC_EVERY bytes leaves little for the final fsync.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.hasher = hashlib.sha256()
        self.size = 0
        self.parts: list[bytes] = []
        self.pending = 0
        self._unsynced = 0
        self._writer = BackgroundWriter(self._write_block, "merge-writer", depth=2)

    def _write_block(self, data: bytes) -> None:  # in the writer thread
        write_all(self.fd, data)
        self.hasher.update(data)
        self._unsynced += len(data)
        if self._unsynced >= SYNC_EVERY:
            os.fdatasync(self.fd)
            self._unsynced = 0

    def write(self, data: bytes) -> None:
        self.parts.append(data)
        self.pending += len(data)
        if self.pending >= FLUSH:
            self.flush()

    def flush(self) -> None:
        if not self.parts:
            return
        data = b"".join(self.parts) if len(self.parts) > 1 else self.parts[0]
        self.parts.clear()
        self.pending = 0
        self.size += len(data)
        self._writer.put(data)

    def close(self) -> None:
        """Write what is left and wait for the disk side; raises its error."""
        self.flush()
        self._writer.close()
        if self._writer.error is not None:
            raise self._writer.error


class _Reader:
    """Complete lines of one source, a block at a time, across its spool segments."""

    def __init__(self, ranges: list[tuple[Segment, int, int]]) -> None:
        self.ranges = list(ranges)
        self.handle: IO[bytes] | None = None
        self.left = 0
        self.carry = b""  # a line cut by a segment boundary

    def block(self, hint: int = BLOCK) -> list[bytes]:
        lines: list[bytes] = []
        while not lines:
            if self.handle is None:
                if not self.ranges:
                    if self.carry:
                        lines, self.carry = [self.carry + b"\n"], b""  # stopped mid-line (deadline)
                    return lines
                segment, start, end = self.ranges.pop(0)
                self.handle = open(os.dup(segment.fd), "rb", buffering=BLOCK)  # noqa: SIM115 - held across calls, closed at its range end
                self.handle.seek(start)
                self.left = end - start
            lines = self.handle.readlines(min(hint, self.left)) if self.left > 0 else []
            self.left -= sum(map(len, lines))
            if self.left < 0:  # never read past the range
                lines[-1] = lines[-1][: len(lines[-1]) + self.left]
                self.left = 0
            if not lines or self.left == 0:
                self.handle.close()
                self.handle = None
            if lines and self.carry:
                lines[0] = self.carry + lines[0]
                self.carry = b""
            if lines and not lines[-1].endswith(b"\n"):
                self.carry = lines.pop()
        return lines


def _copy(source: Source, out: _Out) -> None:
    for segment, start, end in source.ranges:
        position = start
        while position < end:
            block = os.pread(segment.fd, min(FLUSH, end - position), position)
            if not block:
                break
            position += len(block)
            out.write(block)
            source.written += len(block)
    if source.written and os.pread(source.ranges[-1][0].fd, 1, source.ranges[-1][2] - 1) != b"\n":
        out.write(b"\n")  # a worker stopped by the deadline mid-line
        source.written += 1


class LineSource(Protocol):
    def block(self) -> list[bytes]:
        """The next complete lines of the source (at least one), or [] once it has ended."""
        ...


# Docker's stdout and stderr copiers are microseconds apart: a few lines, far below 256.
# Bigger holds cost memory per source (8 sources at 1024 lines: ~7 MiB more peak RSS).
HOLD_LINES = 256  # a source's newest lines held back, so a line stamped before them still lands in place
HOLD_BYTES = 64 * 1024  # ... and no more bytes of them (a line may be up to 1 MiB)
GROUP_LINES = 256  # lines (or GROUP_BYTES bytes) of a source sorted together with those held back
GROUP_BYTES = 64 * 1024


class _InOrder:
    """A source's lines in timestamp order, with bounded memory, whatever the read blocks.

    Docker stamps stdout and stderr in copiers of their own, so a container's log can hold
    a line stamped a few microseconds before lines written ahead of it. The lines are taken
    in groups (GROUP_LINES lines or GROUP_BYTES bytes, counted on the lines alone, never on
    how the reader cuts them); each group is stably sorted together with the newest lines
    held back from the groups before it, and all but the newest (HOLD_LINES lines, at most
    HOLD_BYTES) are released. A line that at most HOLD_LINES earlier lines outdate so lands
    in its place; one later than that is released after them (and ``merge_lines`` keeps it
    right after the line before it). Ties keep the source's own order.
    """

    def __init__(self, reader: LineSource, offset: int) -> None:
        self.reader = reader
        self.stamp = itemgetter(slice(offset, offset + TS_LEN))
        self.pending: list[bytes] = []  # read, not yet grouped
        self.at = 0  # pending[at:] is what is left of it
        self.pending_bytes = 0
        self.held: list[bytes] = []  # in order, the newest seen so far
        self.held_keys: list[bytes] = []
        self.ended = False

    def _group(self) -> list[bytes]:
        """The next group of lines; [] once the source has ended."""
        while not self.ended and len(self.pending) - self.at < GROUP_LINES and self.pending_bytes < GROUP_BYTES:
            lines = self.reader.block()
            if not lines:
                self.ended = True
                break
            if self.at:
                del self.pending[: self.at]
                self.at = 0
            self.pending.extend(lines)
            self.pending_bytes += sum(map(len, lines))
        sizes = list(accumulate(map(len, islice(self.pending, self.at, self.at + GROUP_LINES))))
        if not sizes:
            return []
        cut = min(len(sizes), bisect_left(sizes, GROUP_BYTES) + 1)
        group = self.pending[self.at : self.at + cut]
        self.at += cut
        self.pending_bytes -= sizes[cut - 1]
        return group

    def block(self) -> tuple[list[bytes], list[bytes]]:
        """The next lines, in order, and their timestamps; ([], []) once all were given."""
        while True:
            group = self._group()
            if not group:
                lines, keys = self.held, self.held_keys
                self.held, self.held_keys = [], []
                return lines, keys
            keys = list(map(self.stamp, group))
            lines, keys_all = self.held + group, self.held_keys + keys
            if (self.held_keys and keys[0] < self.held_keys[-1]) or not all(map(le, keys, islice(keys, 1, None))):
                # Stable: ties keep the source's order. Two lines at least here, so ``pick`` gives a tuple.
                pick = itemgetter(*sorted(range(len(lines)), key=keys_all.__getitem__))
                lines, keys_all = list(pick(lines)), list(pick(keys_all))
            tail = lines[-HOLD_LINES:]
            if sum(map(len, tail)) <= HOLD_BYTES:
                release = len(lines) - len(tail)
            else:
                release = len(lines) - bisect_right(list(accumulate(map(len, reversed(tail)))), HOLD_BYTES)
            self.held, self.held_keys = lines[release:], keys_all[release:]
            if release:
                return lines[:release], keys_all[:release]


def merge_lines(readers: list[LineSource], offsets: list[int], out: _Out | Any, written: list[int]) -> None:
    """Interleave sources of lines by timestamp, a window at a time; ``written[i]`` counts source i's bytes.

    The order is fixed by the lines alone, not by how the sources are cut into blocks:
    each source's lines are first put in timestamp order (``_InOrder``), then all are
    ordered by (the newest timestamp of the source so far, source index, position). A
    line ``_InOrder`` could not place (stamped before more lines than it holds back) so
    stays right after the line before it, and equal timestamps keep the order of the
    sources. That lets the finalize phase merge while the logs are still being read
    (``mergechild``) and still write the bytes this function writes after reading.

    Each window takes, from every source, the lines up to the smallest "newest timestamp
    so far" of the sources that may still bring more (ties resolved by source index) and
    sorts them in one stable sort, which keeps the per-line work in C instead of a
    Python heap operation per line. Each source holds at most a few blocks in memory.
    """
    sorted_sources = [_InOrder(reader, offset) for reader, offset in zip(readers, offsets)]
    key, line_of = itemgetter(0), itemgetter(1)
    count = len(sorted_sources)
    lines: list[list[bytes]] = [[] for _ in sorted_sources]
    keys: list[list[bytes]] = [[] for _ in sorted_sources]
    top = [b""] * count  # newest timestamp seen per source
    ended = [False] * count
    pos = [0] * count
    while True:
        for i, source in enumerate(sorted_sources):
            if not ended[i] and pos[i] >= len(lines[i]):
                block, block_keys = source.block()
                if not block:
                    ended[i], lines[i], keys[i], pos[i] = True, [], [], 0
                    continue
                if block_keys[0] < top[i]:  # each block is in order; this one starts back in time: see above
                    block_keys = list(accumulate(block_keys, max, initial=top[i]))[1:]
                keys[i] = block_keys
                top[i] = block_keys[-1]
                lines[i], pos[i] = block, 0
        active = [i for i in range(count) if pos[i] < len(lines[i])]
        if not active:
            return
        live = [i for i in active if not ended[i]]
        if len(active) == 1:
            i = active[0]
            rest = lines[i][pos[i] :]
            out.write(b"".join(rest))
            written[i] += sum(map(len, rest))
            pos[i] = len(lines[i])
            continue
        if live:
            bound = min(keys[i][-1] for i in live)
            first = min(i for i in live if keys[i][-1] == bound)  # may still bring lines at ``bound``
        window: list[tuple[bytes, bytes]] = []
        for i in active:
            start = pos[i]
            if not live or i == first:
                end = len(lines[i])
            elif i < first:
                end = bisect_right(keys[i], bound, start)
            else:
                end = bisect_left(keys[i], bound, start)
            if end > start:
                taken = lines[i][start:end]
                window.extend(zip(keys[i][start:end], taken))
                written[i] += sum(map(len, taken))
                pos[i] = end
        window.sort(key=key)
        out.write(b"".join(map(line_of, window)))


def _merge(sources: list[Source], out: _Out) -> None:
    written = [0] * len(sources)
    merge_lines([_Reader(s.ranges) for s in sources], [s.key_offset for s in sources], out, written)
    for source, count in zip(sources, written):
        source.written += count


def write_log(evdir: EvidenceDir, bundle: str, final: str, sources: list[Source]) -> tuple[str, int]:
    """Write the merged log under ``final``; returns (sha256, size). Sets each source's ``written``."""
    active = [s for s in sources if s.size]
    if len(active) == 1 and len(active[0].ranges) == 1:
        segment, start, end = active[0].ranges[0]
        if start == 0 and end == segment.length and os.pread(segment.fd, 1, end - 1) == b"\n":
            # The whole log is one spool segment: it already is the file.
            os.fsync(segment.fd)
            evdir.publish(segment.name, final)
            active[0].written = end
            return segment.sha256(), end
    with evdir.new_file(final, temp_name(bundle, "log"), " Check free space there.") as fd:
        out = _Out(fd)
        try:
            if len(active) == 1:
                _copy(active[0], out)
            elif active:
                _merge(active, out)
        finally:
            out.close()
    return out.hasher.hexdigest(), out.size
