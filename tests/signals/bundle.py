"""Bundle-format logs for the signal tests, from plain lines."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path

T0 = datetime(2026, 5, 13, 8, 47, 21, tzinfo=timezone.utc)


def ts(index: int, step_ms: int = 1) -> str:
    moment = T0 + timedelta(milliseconds=index * step_ms)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


def bundle_lines(entries: Iterable[tuple[str, str]], stream: str = "stderr", step_ms: int = 1) -> list[str]:
    """(container, text) pairs -> bundle lines, one timestamp step apart."""
    return [f"{name} {stream} {ts(i, step_ms)} {text}" for i, (name, text) in enumerate(entries)]


def write_bundle_log(path: Path, lines: Sequence[str]) -> str:
    path.write_text("".join(line + "\n" for line in lines))
    return str(path)


def interleave(name: str, lines: Sequence[str], noise: str = "web-1", every: int = 3) -> list[tuple[str, str]]:
    """``name``'s lines with a neighbour's INFO line after every ``every``-th: the merged log's shape."""
    out: list[tuple[str, str]] = []
    for i, line in enumerate(lines):
        out.append((name, line))
        if i % every == every - 1:
            out.append((noise, f"INFO GET /api/v1/items/{i} status=200 duration_ms={i % 97} errors=0"))
    return out
