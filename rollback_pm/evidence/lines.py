"""Docker log records -> the bundle's line format, the same for every read path.

A record is what Docker stores per write: (stream, timestamp, data). Docker splits a
long line into 16 KiB "partial" records whose data lacks the trailing newline. The
bundle has one line per logical line::

    <container name> <stdout|stderr> <RFC 3339 timestamp, 9 fraction digits, UTC> <data>

Partial records are joined onto the first record's line (the later timestamps of the
same line are dropped), and a joined line longer than LINE_MAX continues on a new line
with the same prefix and timestamp, so no line in a spool or in memory is unbounded.
Each stream joins its own partials (Docker's stdout and stderr copiers interleave); a
line still open at the end of the log is closed with a newline. Because both the API path and the file path feed the same records through
``LineBuilder``, they produce the same bytes.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable
from typing import Any

LINE_MAX = 1 << 20
TS_LEN = 30  # 2026-05-13T08:47:21.123456789Z
PARTIAL_SIZE = 16 * 1024  # Docker's copier splits lines at this size
_TS = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z ")

STDOUT, STDERR = 1, 2
_FRAME_HEADER = struct.Struct(">BxxxL").unpack_from  # stream byte, 3 zero bytes, big-endian size


class StreamError(Exception):
    """The engine reported an error inside the logs stream."""


class LineBuilder:
    """Turns records into complete lines for one container; ``take()`` hands out a batch.

    Each stream has at most one open line (a partial record waiting for its end), so a
    stderr line logged while a long stdout line is still being split does not cut it.
    ``out`` only ever holds complete lines; open lines are bounded by LINE_MAX.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        out_prefix = f"{name} stdout ".encode()
        err_prefix = f"{name} stderr ".encode()
        # Keyed both by the API's stream byte and by the json-file stream name.
        self.prefix: dict[object, bytes] = {
            0: out_prefix,
            STDOUT: out_prefix,
            STDERR: err_prefix,
            "stdout": out_prefix,
            "stderr": err_prefix,
        }
        self.prefix_len = len(out_prefix)  # both prefixes have the same length
        self.out: list[bytes] = []
        self.pending: dict[bytes, list[Any]] = {}  # prefix -> [timestamp, pieces, length] of its open line
        self.last_ts = b"0001-01-01T00:00:00.000000000Z"
        self.records = 0

    def add(self, stream: object, ts: bytes, data: bytes) -> None:
        """Add one record (the general case: partials, long data)."""
        prefix = self.prefix.get(stream, self.prefix[STDOUT])
        self.records += 1
        self.last_ts = ts
        line = self.pending.get(prefix)
        if line is None:
            if data.endswith(b"\n") and len(data) <= LINE_MAX:
                self.out.append(prefix + ts + b" " + data)
                return
            line = self.pending[prefix] = [ts, [], 0]
        self._append(prefix, line, data)

    def _append(self, prefix: bytes, line: list[Any], data: bytes) -> None:
        ts, pieces, length = line
        complete = data.endswith(b"\n")
        while length + len(data) - complete > LINE_MAX:
            room = LINE_MAX - length
            pieces.append(data[:room])
            data = data[room:]
            self.out.append(b"".join([prefix, ts, b" ", *pieces, b"\n"]))  # one copy of up to LINE_MAX
            pieces.clear()
            length = 0
        pieces.append(data)
        if complete:
            self.out.append(b"".join([prefix, ts, b" ", *pieces]))
            del self.pending[prefix]
        else:
            line[2] = length + len(data)

    def finish(self) -> None:
        """The log ended: close the open lines with a newline."""
        for prefix, (ts, pieces, _) in list(self.pending.items()):
            self.out.append(b"".join([prefix, ts, b" ", *pieces, b"\n"]))  # one copy of up to LINE_MAX
        self.pending.clear()

    def take(self) -> bytes:
        if not self.out:
            return b""
        data = b"".join(self.out)
        self.out.clear()
        return data


class ApiDemux:
    """Splits the engine's multiplexed logs stream (8-byte frame headers) into records.

    With ``timestamps=1`` every frame is one record: ``<ts> <data>``. TTY containers are
    not multiplexed: records follow each other directly and a partial record is exactly
    PARTIAL_SIZE bytes, followed by the next record's timestamp.

    ``data``, when given, rewrites each record's data before it becomes a line (a Swarm
    task's log read with ``details=1`` loses the attributes in front of each message);
    the whole-frame fast path is then off, since every record must go through it.
    """

    def __init__(self, builder: LineBuilder, tty: bool, data: Callable[[bytes], bytes] | None = None) -> None:
        self.builder = builder
        self.tty = tty
        self.carry = b""
        self.data = data
        self.add: Callable[[Any, bytes, bytes], None] = (
            builder.add if data is None else lambda stream, ts, raw: builder.add(stream, ts, data(raw))
        )

    def feed(self, body: bytes) -> None:
        buf = self.carry + body if self.carry else body
        self.carry = self._feed_tty(buf, False) if self.tty else self._feed_mux(buf)

    def end(self) -> None:
        if self.tty:
            if self.carry:
                self._feed_tty(self.carry, True)
        elif len(self.carry) > 8 + TS_LEN + 1:
            # A frame cut short: keep its bytes rather than drop evidence.
            self._record(self.carry[0], self.carry[8:])
        self.carry = b""
        self.builder.finish()

    def _record(self, stream: int, payload: bytes) -> None:
        if stream == 3:  # stdcopy's in-band error from the daemon
            raise StreamError(payload.decode("utf-8", "replace").strip())
        if payload[TS_LEN : TS_LEN + 1] == b" ":
            self.add(stream, payload[:TS_LEN], payload[TS_LEN + 1 :])
        else:
            self.add(stream, self.builder.last_ts, payload)

    def _feed_mux(self, buf: bytes) -> bytes:
        builder = self.builder
        append = builder.out.append
        prefix = builder.prefix
        # No fast path when each record's data is rewritten.
        line_prefix = {STDOUT: prefix[STDOUT], STDERR: prefix[STDERR]} if self.data is None else {}
        pending = builder.pending
        header = _FRAME_HEADER
        pos, n = 0, len(buf)
        records = 0
        while n - pos >= 8:
            stream, size = header(buf, pos)
            end = pos + 8 + size
            if end > n:
                break
            # Fast path: a complete line with its timestamp, nothing open (10 is "\n", 32 " ").
            first = line_prefix.get(stream)
            if (
                first is not None
                and not pending
                and TS_LEN < size <= LINE_MAX
                and buf[end - 1] == 10
                and buf[pos + 8 + TS_LEN] == 32
            ):
                append(first)
                append(buf[pos + 8 : end])
                records += 1
            else:
                self._record(stream, buf[pos + 8 : end])
            pos = end
        builder.records += records
        return buf[pos:]

    def _feed_tty(self, buf: bytes, at_end: bool) -> bytes:
        pos, n = 0, len(buf)
        while n - pos > TS_LEN:
            ts = buf[pos : pos + TS_LEN]
            start = pos + TS_LEN + 1
            nl = buf.find(b"\n", start, start + PARTIAL_SIZE)
            if nl >= 0:
                self.add(STDOUT, ts, buf[start : nl + 1])
                pos = nl + 1
                continue
            cut = start + PARTIAL_SIZE
            if n - cut >= TS_LEN + 1:
                if _TS.match(buf, cut):
                    end = cut
                else:  # not Docker's partial split: take up to the next newline
                    nl = buf.find(b"\n", cut)
                    if nl < 0 and not at_end:
                        break
                    end = n if nl < 0 else nl + 1
                self.add(STDOUT, ts, buf[start:end])
                pos = end
                continue
            if not at_end:
                break
            self.add(STDOUT, ts, buf[start:])
            pos = n
        if at_end and pos < n:
            self.add(STDOUT, self.builder.last_ts, buf[pos:])
            pos = n
        return buf[pos:]


def normalize_ts(value: str) -> str:
    """Go's RFC3339Nano (trailing zeros trimmed, any offset) -> fixed 9 digits, UTC, 'Z'."""
    if value.endswith("Z"):
        dot = value.find(".", 19)
        if dot < 0:
            return value[:19] + ".000000000Z"
        return value[: dot + 1] + (value[dot + 1 : -1] + "000000000")[:9] + "Z"
    from datetime import datetime, timezone

    match = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?([+-]\d\d:\d\d)$", value)
    if not match:
        return value
    base = datetime.fromisoformat(match.group(1) + match.group(3)).astimezone(timezone.utc)
    frac = ((match.group(2) or "") + "000000000")[:9]
    return base.strftime("%Y-%m-%dT%H:%M:%S") + "." + frac + "Z"
