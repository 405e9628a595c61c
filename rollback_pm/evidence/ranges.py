"""Which bytes of a container's log files the caps keep, decided without reading the logs.

The caps count bytes of the bundle's lines (``<name> <stream> <timestamp> <text>``),
while the files hold Docker's records (json-file: a JSON object per record; local: a
length-framed protobuf). Parsing tens of MiB to convert one into the other is what the
collect phase must not do, so the newest records are sampled (256 KiB) for how many
bundle bytes a file byte makes, and the freeze keeps the newest raw bytes that should
make at most the cap (``FILL`` of it, so the finalize rarely has to cut again). A log
whose estimate fits is kept whole.

The cut falls on a record boundary, on a record that starts a line where one is near
(so the first frozen line is a whole line), rotated files are kept whole or not at
all when compressed, and older files the cap does not reach are left behind.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from rollback_pm.evidence.files import LogFiles, decode_entry
from rollback_pm.evidence.lines import TS_LEN

SAMPLE = 256 * 1024
FILL = 0.97
BACK = 128 * 1024  # bytes before a cut read to see the record that ends there (a json-file record is < 100 KiB)
WINDOW = 256 * 1024  # how far after the cut a boundary is looked for
_STREAM_SEP = b'","stream":"'
_MAX_LOCAL_RECORD = 4 << 20


@dataclass
class FileInfo:
    fd: int
    size: int  # bytes on disk when measured
    raw: int  # bytes of records it holds (uncompressed size for .gz)
    compressed: bool


@dataclass
class Measured:
    """A container's log set, sized, with how many bundle bytes one file byte makes."""

    driver: str
    files: list[FileInfo]  # oldest first, like LogFiles
    ratio: float

    @property
    def raw_bytes(self) -> int:
        return sum(f.raw for f in self.files)

    @property
    def estimate(self) -> int:
        """The bundle bytes the whole log would make (estimated)."""
        return int(self.raw_bytes * self.ratio)


@dataclass
class FileRange:
    index: int  # position in the LogFiles, oldest first
    start: int
    end: int


@dataclass
class LogPlan:
    ranges: list[FileRange] = field(default_factory=list)  # oldest first
    left_behind: int = 0  # raw bytes older than what is kept


def measure(files: LogFiles, name: str) -> Measured:
    infos = []
    for path, handle in zip(files.paths, files.handles):
        fd = handle.fileno()
        size = os.fstat(fd).st_size
        compressed = path.endswith(".gz")
        raw = _gzip_size(fd, size) if compressed else size
        infos.append(FileInfo(fd, size, raw, compressed))
    head = len(name.encode()) + len(" stdout ") + TS_LEN + 1
    ratio = None
    for info in reversed(infos):
        if not info.compressed and info.size:
            sample = _json_ratio if files.driver == "json-file" else _local_ratio
            ratio = sample(info.fd, info.size, head)
            break
    return Measured(files.driver, infos, ratio or 1.0)


def raw_needed(measured: Measured, allowance: int) -> int:
    """Raw bytes to keep for ``allowance`` bundle bytes: all of them when the estimate fits."""
    if measured.estimate <= allowance:
        return measured.raw_bytes
    return int(allowance / measured.ratio * FILL)


def plan(measured: Measured, need: int) -> LogPlan:
    """The newest ``need`` raw bytes (or a little more: whole compressed files, a line's start)."""
    result = LogPlan()
    left = need
    for index in range(len(measured.files) - 1, -1, -1):
        info = measured.files[index]
        if left <= 0:
            result.left_behind += info.raw
            continue
        if info.raw <= left or info.compressed:
            result.ranges.append(FileRange(index, 0, info.size))
            left -= info.raw
            continue
        align = json_record_start if measured.driver == "json-file" else local_record_start
        start = align(info.fd, info.size - left, info.size)
        result.ranges.append(FileRange(index, start, info.size))
        result.left_behind += start
        left = 0
    result.ranges.reverse()
    return result


def _gzip_size(fd: int, size: int) -> int:
    """The uncompressed size a gzip member records in its last 4 bytes (Docker writes one member)."""
    if size < 18:
        return 0
    return int.from_bytes(os.pread(fd, 4, size - 4), "little")


def _json_ratio(fd: int, size: int, head: int) -> float | None:
    """Bundle bytes per file byte over the newest whole records of a json-file log."""
    length = min(SAMPLE, size)
    data = os.pread(fd, length, size - length)
    if length < size:
        data = data[data.find(b"\n") + 1 :]
    data = data[: data.rfind(b"\n") + 1]
    if not data:
        return None
    out = 0
    for record in data.split(b"\n")[:-1]:
        sep = record.rfind(_STREAM_SEP)
        if sep < 8:
            out += len(record)  # not a plain record (attrs, garbage): count it one for one
            continue
        text = record[8:sep]
        # Each escape shrinks by at least one byte; a line's end adds the prefix and timestamp.
        out += len(text) - text.count(b"\\") + (head if text.endswith(b"\\n") else 0)
    return max(out, 1) / len(data)


def _local_ratio(fd: int, size: int, head: int) -> float | None:
    """The same for the local driver, walking the newest records back by their trailing sizes."""
    length = min(SAMPLE, size)
    data = os.pread(fd, length, size - length)
    pos, out, raw = len(data), 0, 0
    while pos >= 8:
        record = int.from_bytes(data[pos - 4 : pos], "big")
        begin = pos - 8 - record
        if begin < 0 or int.from_bytes(data[begin : begin + 4], "big") != record:
            break
        try:
            _, _, line, partial = decode_entry(data[begin + 4 : pos - 4])
        except (ValueError, IndexError):
            break
        out += len(line) + (0 if partial else head + 1)
        raw += record + 8
        pos = begin
    return max(out, 1) / raw if raw else None


def _escaped(data: bytes, at: int) -> bool:
    """Is the backslash at ``at`` a real escape (not the second half of an escaped backslash)?"""
    count = 0
    while at >= 0 and data[at] == 0x5C:
        count += 1
        at -= 1
    return count % 2 == 1


def json_record_start(fd: int, offset: int, size: int) -> int:
    """A record start at or after ``offset``: the first that begins a line, else the first at all.

    0 (keep the whole file) when no record boundary is near, which Docker's record
    sizes (16 KiB of text, escaped at most six-fold) do not allow.
    """
    if offset <= 0:
        return 0
    base = max(0, offset - BACK)
    data = os.pread(fd, min(size, offset + WINDOW) - base, base)
    first = None
    previous = data.rfind(b"\n", 0, offset - base - 1)
    newline = data.find(b"\n", offset - base - 1)
    while newline >= 0:
        candidate = base + newline + 1
        if candidate >= size:
            break
        if first is None:
            first = candidate
        if previous >= 0 or base == 0:  # the whole record ending here is in view: does its text end a line?
            sep = data.rfind(_STREAM_SEP, previous + 1, newline)
            if sep >= 2 and data[sep - 2 : sep] == b"\\n" and _escaped(data, sep - 2):
                return candidate
        previous, newline = newline, data.find(b"\n", newline + 1)
    return first if first is not None else 0


def _local_record(data: bytes, at: int) -> tuple[int, bool] | None:
    """(end, partial) of a local-driver record framed at ``at``, or None if it is not one."""
    if at + 8 > len(data):
        return None
    size = int.from_bytes(data[at : at + 4], "big")
    end = at + 8 + size
    if size > _MAX_LOCAL_RECORD or end > len(data) or int.from_bytes(data[end - 4 : end], "big") != size:
        return None
    try:
        _, nanos, _, partial = decode_entry(data[at + 4 : end - 4])
    except (ValueError, IndexError):
        return None
    return (end, partial) if nanos > 0 else None


def local_record_start(fd: int, offset: int, size: int, chain: int = 4) -> int:
    """A local-driver record start at or after ``offset``, found by its framing.

    A position counts when ``chain`` records in a row (or all up to the file's end) are
    framed and decode; the first after a record that ended a line wins. 0 (keep the
    whole file) when none is found.
    """
    if offset <= 0:
        return 0
    base = max(0, offset - BACK)
    data = os.pread(fd, min(size, offset + WINDOW + chain * (64 << 10)) - base, base)
    at = offset - base
    while at < min(len(data), offset - base + WINDOW):
        ends, cursor = 0, at
        while ends < chain and cursor < len(data):
            found = _local_record(data, cursor)
            if found is None:
                break
            cursor, ends = found[0], ends + 1
        if ends == chain or (ends and cursor == len(data) == size - base):
            break
        at += 1
    else:
        return 0
    # Walk forward to the first record that starts a line (the one before it ended one).
    cursor, partial_before = at, _partial_before(data, at)
    for _ in range(64):
        if not partial_before:
            return base + cursor
        found = _local_record(data, cursor)
        if found is None:
            break
        cursor, partial_before = found
    return base + at


def _partial_before(data: bytes, at: int) -> bool:
    """Does the record ending at ``at`` leave its line open? False when it cannot be read."""
    if at < 8:
        return False
    size = int.from_bytes(data[at - 4 : at], "big")
    begin = at - 8 - size
    if begin < 0:
        return False
    found = _local_record(data, begin)
    return bool(found and found[0] == at and found[1])
