"""A container's last lines before it exited or was killed, found again after the pass.

The forward pass keeps no per-container ring of lines (keeping one current for every
line would cost more than the whole trigger search). Instead it records where each read
block is and its first timestamp; here the block holding the container's FinishedAt
(or the log's end, for a container still running) is read again and searched backwards
for the container's ``<name> `` prefix. Consecutive lines with the same template fold
into one with a repeat count, so a retry loop before the exit is one line, not all N.
"""

from __future__ import annotations

import os
from bisect import bisect_right

from rollback_pm.signals.model import LineRef, Tail, TailLine
from rollback_pm.signals.scan import BlockInfo, _parse, _text
from rollback_pm.signals.templates import template
from rollback_pm.signals.traces import MAX_LINE_CHARS

MAX_SCAN_LINES = 5000  # of the container's own lines, walking back
MAX_SCAN_BYTES = 64 << 20  # of the log, walking back


def last_lines(
    path: str, blocks: list[BlockInfo], name: str, until: str | None, count: int, reason: str
) -> Tail | None:
    """Up to ``count`` last lines (repeats folded) of ``name`` logged at or before ``until``."""
    if not blocks or count <= 0:
        return None
    index = len(blocks) - 1
    if until is not None:
        # The block holding "until", and the one after it: Docker's stdout and stderr
        # timestamps can be a little out of order.
        index = min(len(blocks) - 1, max(0, bisect_right([b.first_ts for b in blocks], until) - 1) + 1)
    needle = b"\n" + name.encode() + b" "
    found: list[TailLine] = []
    keys: list[str] = []
    scanned_lines = scanned_bytes = 0
    fd = os.open(path, os.O_RDONLY)
    try:
        while index >= 0 and scanned_lines < MAX_SCAN_LINES and scanned_bytes < MAX_SCAN_BYTES:
            info = blocks[index]
            data = os.pread(fd, info.length, info.offset)
            scanned_bytes += len(data)
            ref_pos = len(data)
            ref_line = info.first_line + info.lines - (0 if data.endswith(b"\n") else 1)
            end = len(data)
            while scanned_lines < MAX_SCAN_LINES:
                hit = data.rfind(needle, 0, end)
                start = hit + 1 if hit >= 0 else (0 if data.startswith(needle[1:]) and end > 0 else -1)
                if start < 0:
                    break
                end = max(hit, 0)
                line_end = data.find(b"\n", start)
                parsed = _parse(data, start, len(data) if line_end < 0 else line_end)
                if parsed is None:
                    continue
                _, stream, ts, text_start = parsed
                ref_line -= data.count(b"\n", start, ref_pos)
                ref_pos = start
                if until is not None and ts > until:
                    continue
                scanned_lines += 1
                text = _text(data, text_start, len(data) if line_end < 0 else line_end)
                key = template(text)
                if keys and keys[-1] == key:
                    found[-1].repeat += 1
                    found[-1].line = ref_line
                    continue
                if len(found) == count:
                    scanned_lines = MAX_SCAN_LINES  # the earliest entry's repeats are complete
                    break
                cut = text if len(text) <= MAX_LINE_CHARS else text[: MAX_LINE_CHARS - 1] + "…"
                found.append(TailLine(line=ref_line, ts=ts, stream=stream, text=cut, last_line=ref_line))
                keys.append(key)
                if hit < 0:
                    break
            index -= 1
            data = b""  # dropped before the next read: one block in memory, not two
    finally:
        os.close(fd)
    if not found:
        return None
    found.reverse()
    return Tail(lines=found, ref=LineRef(path, found[0].line, found[-1].last_line), until=until, reason=reason)
