"""Byte budgets and the merged ``rollback-<ts>.log``.

``allowances`` shares ``--max-total-bytes`` between containers by water-filling: a
container whose log fits in an equal share keeps all of it, the rest split what is left
equally, each keeping its newest bytes. Every container's end (where it failed) stays in
the bundle even when a chatty neighbour logs far more.

``write_log`` interleaves the containers' spools by timestamp (a k-way merge that copies
runs of lines while one container stays oldest), hashing as it writes.
"""

from __future__ import annotations

import hashlib
import heapq
import os
from collections.abc import Iterator
from dataclasses import dataclass, field

from rollback_pm.evidence.evdir import EvidenceDir, temp_name
from rollback_pm.evidence.lines import TS_LEN
from rollback_pm.evidence.spool import Segment, Spool

FLUSH = 1 << 20


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
    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.hasher = hashlib.sha256()
        self.size = 0
        self.parts: list[bytes] = []
        self.pending = 0

    def write(self, data: bytes) -> None:
        self.parts.append(data)
        self.pending += len(data)
        if self.pending >= FLUSH:
            self.flush()

    def flush(self) -> None:
        if not self.parts:
            return
        data = b"".join(self.parts)
        self.parts.clear()
        self.pending = 0
        self.hasher.update(data)
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view) :]
        self.size += len(data)


def _lines(ranges: list[tuple[Segment, int, int]]) -> Iterator[bytes]:
    for segment, start, end in ranges:
        with open(os.dup(segment.fd), "rb", buffering=1 << 18) as handle:
            handle.seek(start)
            left = end - start
            for line in handle:
                if len(line) >= left:
                    yield line[:left]
                    break
                left -= len(line)
                yield line


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


def _merge(sources: list[Source], out: _Out) -> None:
    iters = [_lines(s.ranges) for s in sources]
    heap: list[tuple[bytes, int, bytes]] = []
    for index, (source, lines) in enumerate(zip(sources, iters)):
        first = next(lines, None)
        if first is not None:
            heap.append((first[source.key_offset : source.key_offset + TS_LEN], index, first))
    heapq.heapify(heap)
    write = out.write
    while heap:
        _, index, line = heapq.heappop(heap)
        source, lines, offset = sources[index], iters[index], sources[index].key_offset
        bound = heap[0][0] if heap else None
        while True:
            write(line)
            source.written += len(line)
            while not line.endswith(b"\n"):  # a line split across spool segments
                line = next(lines, b"")
                if not line:
                    write(b"\n")
                    source.written += 1
                    break
                write(line)
                source.written += len(line)
            line = next(lines, None)
            if line is None:
                break
            key = line[offset : offset + TS_LEN]
            if bound is not None and key > bound:
                heapq.heappush(heap, (key, index, line))
                break


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
            return segment.hasher.hexdigest(), end
    temp = temp_name(bundle, "log")
    fd = evdir.create(temp)
    try:
        out = _Out(fd)
        if len(active) == 1:
            _copy(active[0], out)
        elif active:
            _merge(active, out)
        out.flush()
        os.fsync(fd)
    finally:
        os.close(fd)
    evdir.publish(temp, final)
    return out.hasher.hexdigest(), out.size
