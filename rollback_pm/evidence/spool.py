"""A per-container ring of spool files that keeps the NEWEST bytes of a log.

Formatted, redacted lines are appended to segment files (hidden temps in the evidence
directory). Once the segments after the oldest hold at least ``cap`` bytes, the oldest is
deleted, so disk use stays near ``cap`` + one segment and memory is one batch, whatever
the log size. ``plan()`` then picks the newest ``allowance`` bytes, starting on a line
boundary. ``freeze()`` stops a worker that outlived the deadline: what it had written
stays, later writes are refused.

The disk side (write, and for a lone container, whose first segment may become the log
itself, sha256 and early fdatasync) runs in a
writer thread fed through a one-batch queue: those calls release the GIL, so on a
second core they overlap with the parsing thread instead of adding to it, and the
final fsync has little left to do.
"""

from __future__ import annotations

import errno
import hashlib
import os
import threading
from dataclasses import dataclass
from typing import Any

from rollback_pm.evidence.evdir import EvidenceDir, temp_name, write_all
from rollback_pm.evidence.writer import BackgroundWriter

MIB = 1024 * 1024
SCAN_BLOCK = 256 * 1024
SYNC_EVERY = 32 * MIB  # start writeback early so the final fsync is short


class SpoolFrozen(Exception):
    """The deadline passed: this spool takes no more data."""


class SpoolWriteError(Exception):
    """Writing the spool failed (disk full, I/O error); the message says how."""

    def __init__(self, error: OSError) -> None:
        super().__init__(error.strerror or str(error))
        self.errno = error.errno

    @property
    def full(self) -> bool:
        """The filesystem ran out of space (or quota)."""
        return self.errno in (errno.ENOSPC, errno.EDQUOT)


@dataclass
class Segment:
    name: str
    fd: int
    length: int = 0
    starts_on_line: bool = True
    hasher: Any = None  # sha256 of what was written, when this segment may be published as the log itself

    def sha256(self) -> str:
        """Its sha256: kept while writing, else read back (the rare lone segment of several spools)."""
        if self.hasher is not None:
            return str(self.hasher.hexdigest())
        hasher = hashlib.sha256()
        position = 0
        while position < self.length:
            block = os.pread(self.fd, min(1 << 20, self.length - position), position)
            if not block:
                break
            hasher.update(block)
            position += len(block)
        return hasher.hexdigest()


class Spool:
    def __init__(
        self, evdir: EvidenceDir, bundle: str, tag: str, cap: int, floor_bytes: int = 0, sync_early: bool = False
    ) -> None:
        self.evdir = evdir
        # Only worth it when this spool will likely become the log file itself (one
        # container): other spools are merged and deleted, and syncing them is wasted I/O.
        self.sync_early = sync_early
        self.bundle = bundle
        self.tag = tag
        self.cap = max(0, cap)
        self.floor_bytes = floor_bytes
        self.segment_size = max(MIB, self.cap // 4)
        self.segments: list[Segment] = []
        self.original = 0  # every byte offered, before the cap
        self.dropped = False
        self.frozen = False
        self.notes: list[str] = []
        self._count = 0
        self._ends_on_line = True
        self._lock = threading.Lock()
        self._writer: BackgroundWriter | None = None  # started by the first write
        self._error: OSError | None = None  # the writer's, kept once it is drained
        self._unsynced = 0

    def _new_segment(self) -> Segment:
        if self.floor_bytes and self.segments and self.evdir.free_bytes() < self.floor_bytes:
            # Below the floor: stop growing; keep rotating so the newest bytes still win.
            kept = sum(s.length for s in self.segments)
            if kept < self.cap:
                self.cap = kept
                self.notes.append(f"free space fell below the floor; cap lowered to {kept} bytes")
        name = temp_name(self.bundle, f"{self.tag}.{self._count}.spool")
        self._count += 1
        segment = Segment(name, self.evdir.create(name, readable=True), starts_on_line=self._ends_on_line)
        if self.sync_early:  # a lone container: this segment will likely be published as the log
            segment.hasher = hashlib.sha256()
        self.segments.append(segment)
        return segment

    def write(self, data: bytes) -> None:
        """Queue a batch of whole lines (called by one worker thread)."""
        if not data:
            return
        with self._lock:
            if self.frozen:
                raise SpoolFrozen()
            error = self._error or (self._writer.error if self._writer is not None else None)
            if error is not None:
                raise SpoolWriteError(error)
            self.original += len(data)
            if self.cap == 0:
                self.dropped = True
                return
            if self._writer is None:
                self._writer = BackgroundWriter(self._write_block, f"spool-{self.tag}")
            writer = self._writer
        writer.put(data)

    def _write_block(self, data: bytes) -> None:  # in the writer thread
        current = self.segments[-1] if self.segments else None
        if current is None or current.length >= self.segment_size:
            current = self._new_segment()
            self._drop_old()
        write_all(current.fd, data)
        if current.hasher is not None:
            current.hasher.update(data)
        current.length += len(data)
        self._ends_on_line = data.endswith(b"\n")
        self._unsynced += len(data)
        if self.sync_early and self._unsynced >= SYNC_EVERY:
            os.fdatasync(current.fd)
            self._unsynced = 0

    def drain(self) -> None:
        """Wait until every queued batch is on disk; raise the writer's error, if any."""
        with self._lock:
            writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
            self._error = self._error or writer.error
        if self._error is not None:
            raise SpoolWriteError(self._error)

    def _drop_old(self) -> None:
        total = sum(s.length for s in self.segments)
        while len(self.segments) > 1 and total - self.segments[0].length >= self.cap:
            old = self.segments.pop(0)
            total -= old.length
            os.close(old.fd)
            self.evdir.unlink(old.name)
            self.dropped = True

    def freeze(self) -> None:
        with self._lock:
            self.frozen = True

    @property
    def kept(self) -> int:
        return sum(s.length for s in self.segments)

    def plan(self, allowance: int) -> list[tuple[Segment, int, int]]:
        """(segment, start, end) ranges holding the newest <= ``allowance`` bytes, from a line start."""
        self.freeze()  # planning happens once writing is over
        try:
            self.drain()
        except SpoolWriteError:
            pass  # the caller has recorded it; what was written before still counts
        segments = [s for s in self.segments if s.length]
        total = sum(s.length for s in segments)
        cut = max(0, total - max(0, allowance))
        if cut == 0 and (not segments or segments[0].starts_on_line):
            return [(s, 0, s.length) for s in segments]
        start = self._line_start_at_or_after(segments, cut)
        ranges = []
        offset = 0
        for segment in segments:
            seg_start, seg_end = offset, offset + segment.length
            offset = seg_end
            if seg_end <= start:
                continue
            ranges.append((segment, max(0, start - seg_start), segment.length))
        return ranges

    @staticmethod
    def _byte_at(segments: list[Segment], position: int) -> bytes:
        offset = 0
        for segment in segments:
            if position < offset + segment.length:
                return os.pread(segment.fd, 1, position - offset)
            offset += segment.length
        return b""

    def _line_start_at_or_after(self, segments: list[Segment], position: int) -> int:
        if position > 0 and self._byte_at(segments, position - 1) == b"\n":
            return position
        offset = 0
        for segment in segments:
            seg_end = offset + segment.length
            if seg_end <= position:
                offset = seg_end
                continue
            local = max(0, position - offset)
            while local < segment.length:
                block = os.pread(segment.fd, min(SCAN_BLOCK, segment.length - local), local)
                if not block:
                    break
                newline = block.find(b"\n")
                if newline >= 0:
                    return offset + local + newline + 1
                local += len(block)
            offset = seg_end
        return offset  # no line starts after the cut: keep nothing

    def close(self) -> None:
        self.freeze()
        try:
            self.drain()
        except SpoolWriteError:
            pass
        with self._lock:
            for segment in self.segments:
                try:
                    os.close(segment.fd)
                except OSError:
                    pass
                self.evdir.unlink(segment.name)
            self.segments.clear()
