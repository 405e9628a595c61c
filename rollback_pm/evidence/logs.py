"""Streaming container logs, never whole in memory.

Two readers yield the same records (timestamp, stream, text):
- the Engine API (``/containers/{id}/logs?timestamps=1``) read in large raw chunks and
  demultiplexed here (8-byte frame headers; raw for TTY containers);
- the json-file fast path: the daemon's own log files, rotated ones included, parsed with
  orjson, when they are readable from where we run.

A ``Spool`` keeps the NEWEST bytes of one container within its cap, on disk in chunks.
"""

from __future__ import annotations

import os
import re
import struct
import tempfile
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator

import orjson

STREAMS = {0: "stdin", 1: "stdout", 2: "stderr"}
READ_SIZE = 1024 * 1024
MAX_LINE = 1024 * 1024  # a line longer than this is cut into records (a TTY may never send \n)
_TS = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$")


class Deadline(Exception):
    """The global time budget ran out while reading."""


def norm_ts(ts: str) -> str:
    """Docker's RFC3339Nano (trailing zeros trimmed) -> fixed width, so strings sort by time."""
    match = _TS.match(ts)
    if not match or match.group(3) != "Z":
        return ts
    return f"{match.group(1)}.{(match.group(2) or '').ljust(9, '0')}Z"


def _since_param(since: datetime | None) -> int | float:
    return since.timestamp() if since else 0


# -- Engine API ------------------------------------------------------------------------------

def api_records(client: Any, container_id: str, *, tty: bool, since: datetime | None,
                deadline: float, clock: Any) -> Iterator[tuple[str, str, str]]:
    """Records from the Engine API, read in 1 MiB chunks."""
    params = {"stdout": 1, "stderr": 1, "timestamps": 1, "follow": 0}
    if since:
        params["since"] = _since_param(since)
    url = client._url("/containers/{0}/logs", container_id)
    response = client._get(url, params=params, stream=True, timeout=max(1.0, min(30.0, deadline - clock())))
    client._raise_for_status(response)
    raw = response.raw
    pending: dict[str, bytearray] = {}
    buf = bytearray()
    try:
        while True:
            if clock() > deadline:
                raise Deadline()
            chunk = raw.read(READ_SIZE)
            if not chunk:
                break
            if tty:
                yield from _lines(pending, "stdout", chunk)
                continue
            buf += chunk
            offset = 0
            while len(buf) - offset >= 8:
                kind, size = buf[offset], struct.unpack(">I", buf[offset + 4: offset + 8])[0]
                if len(buf) - offset - 8 < size:
                    break
                yield from _lines(pending, STREAMS.get(kind, "stdout"), bytes(buf[offset + 8: offset + 8 + size]))
                offset += 8 + size
            del buf[:offset]
        for stream, rest in pending.items():
            if rest:
                yield _record(stream, bytes(rest))
    finally:
        response.close()


def _lines(pending: dict[str, bytearray], stream: str, data: bytes) -> Iterator[tuple[str, str, str]]:
    acc = pending.setdefault(stream, bytearray())
    acc += data
    start = 0
    while True:
        nl = acc.find(b"\n", start)
        if nl < 0:
            break
        yield _record(stream, bytes(acc[start:nl]))
        start = nl + 1
    del acc[:start]
    while len(acc) > MAX_LINE:
        yield _record(stream, bytes(acc[:MAX_LINE]))
        del acc[:MAX_LINE]


def _record(stream: str, line: bytes) -> tuple[str, str, str]:
    text = line.decode("utf-8", "replace").rstrip("\r")
    ts, _, rest = text.partition(" ")
    if _TS.match(ts):
        return norm_ts(ts), stream, rest
    return "", stream, text  # a continuation of an over-long line: no timestamp of its own


# -- json-file fast path ---------------------------------------------------------------------

def json_file_paths(inspect_doc: dict[str, Any]) -> list[Path] | None:
    """The container's json-file logs, oldest first, or None when not usable from here."""
    if ((inspect_doc.get("HostConfig") or {}).get("LogConfig") or {}).get("Type") != "json-file":
        return None
    log_path = inspect_doc.get("LogPath")
    if not log_path:
        return None
    current = Path(log_path)
    try:
        if not os.access(current, os.R_OK):
            return None
    except OSError:
        return None
    rotated = []
    for candidate in current.parent.glob(current.name + ".*"):
        suffix = candidate.name[len(current.name) + 1:]
        if suffix.isdigit():
            rotated.append((int(suffix), candidate))
    # .N is older than .N-1; rotated files may be gzip-compressed (compress=true): then use the API.
    paths = [p for _, p in sorted(rotated, reverse=True)] + [current]
    for p in paths[:-1]:
        with open(p, "rb") as handle:
            if handle.read(2) == b"\x1f\x8b":
                return None
    return paths


def json_file_records(paths: list[Path], *, since: datetime | None, deadline: float,
                      clock: Any) -> Iterator[tuple[str, str, str]]:
    """Records from json-file logs; partial entries (long lines) are joined like the CLI does."""
    since_key = norm_ts(since.strftime("%Y-%m-%dT%H:%M:%S.%fZ")) if since else ""
    partial: dict[str, list[str]] = {}
    partial_ts: dict[str, str] = {}
    count = 0
    for path in paths:
        try:
            handle = open(path, "rb")
        except FileNotFoundError:  # rotated away while we read
            continue
        with handle:
            for raw in handle:
                count += 1
                if count % 4096 == 0 and clock() > deadline:
                    raise Deadline()
                try:
                    entry = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    continue  # a line being written right now
                ts = norm_ts(entry.get("time", ""))
                if since_key and ts < since_key:
                    continue
                stream = entry.get("stream", "stdout")
                text = entry.get("log", "")
                if text.endswith("\n"):
                    if stream in partial:
                        text = "".join(partial.pop(stream)) + text
                        ts = partial_ts.pop(stream)
                    yield ts, stream, text[:-1].rstrip("\r")
                else:
                    partial.setdefault(stream, []).append(text)
                    partial_ts.setdefault(stream, ts)
                    if sum(map(len, partial[stream])) > MAX_LINE:
                        yield partial_ts.pop(stream), stream, "".join(partial.pop(stream))
    for stream, parts in partial.items():
        yield partial_ts[stream], stream, "".join(parts)


# -- newest-bytes spool -----------------------------------------------------------------------

@dataclass
class Spool:
    """One container's redacted records on disk, keeping at most ``cap`` newest log bytes.

    The cap counts log payload (the line and its newline, as ``docker logs`` prints it).
    Chunks are dropped oldest first while the rest still hold ``cap`` bytes, so disk use
    stays near the cap and memory holds one line at a time.
    """

    directory: Path
    cap: int
    original_bytes: int = 0
    records: int = 0
    _chunks: list[list[Any]] = field(default_factory=list)  # [path, payload bytes]
    _handle: Any = None
    _written: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    frozen: bool = False

    def freeze(self) -> None:
        """Stop taking records (the time budget ran out); a reader thread still running
        gets Deadline on its next record instead of writing into a spool being merged."""
        with self._lock:
            self.frozen = True
            self.close()

    @property
    def chunk_size(self) -> int:
        return min(8 * 1024 * 1024, max(64 * 1024, self.cap // 4))

    def add(self, ts: str, stream: str, text: str) -> None:
        with self._lock:
            if self.frozen:
                raise Deadline()
            self._add(ts, stream, text)

    def _add(self, ts: str, stream: str, text: str) -> None:
        line = text.encode("utf-8", "replace")
        payload = len(line) + 1
        self.original_bytes += payload
        self.records += 1
        if self._handle is None or self._written >= self.chunk_size:
            self._rotate()
        data = f"{ts}\t{stream}\t".encode() + line + b"\n"
        self._handle.write(data)
        self._written += len(data)
        self._chunks[-1][1] += payload
        while len(self._chunks) > 1 and sum(c[1] for c in self._chunks[1:]) >= self.cap:
            Path(self._chunks.pop(0)[0]).unlink(missing_ok=True)

    def _rotate(self) -> None:
        if self._handle is not None:
            self._handle.close()
        fd, name = tempfile.mkstemp(prefix=".spool-", dir=self.directory)
        self._handle = os.fdopen(fd, "wb")
        self._chunks.append([name, 0])
        self._written = 0

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def lines(self) -> Iterator[tuple[str, str, str]]:
        """The kept records, oldest first: the newest ``cap`` payload bytes."""
        self.close()
        skip = max(0, sum(c[1] for c in self._chunks) - self.cap)
        for name, _ in self._chunks:
            with open(name, "rb") as handle:
                for raw in handle:
                    ts, stream, text = raw.decode("utf-8", "replace")[:-1].split("\t", 2)
                    if skip > 0:
                        skip -= len(text.encode("utf-8", "replace")) + 1
                        continue
                    yield ts, stream, text

    def discard(self) -> None:
        self.close()
        for name, _ in self._chunks:
            Path(name).unlink(missing_ok=True)
        self._chunks.clear()
