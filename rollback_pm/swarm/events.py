"""Service events from the engine's event stream, parsed into what a rollback watcher needs.

An event is one JSON object per line (``/events`` with ``type=service``)::

    {"Type": "service", "Action": "update", "Actor": {"ID": "...", "Attributes":
     {"name": "shop_api", "updatestate.new": "rollback_started", "updatestate.old": "updating",
      "image.new": "shop/api:1.3", "image.old": "shop/api:1.4"}}, "time": 1796289368,
     "timeNano": 1796289368853880967}

Only the fields used are read; anything malformed is None, never an exception: the stream
is outside input.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

ROLLBACK_STATES = ("rollback_started", "rollback_paused", "rollback_completed")
MAX_EVENT_BYTES = 1 << 20  # a longer line is not an event the engine would send


@dataclass(frozen=True)
class ServiceEvent:
    service_id: str
    name: str
    action: str  # create | update | remove
    time_ns: int
    state: str | None = None  # updatestate.new
    old_state: str | None = None  # updatestate.old
    image_new: str | None = None
    image_old: str | None = None

    @property
    def time(self) -> datetime:
        return datetime.fromtimestamp(self.time_ns // 1_000_000_000, timezone.utc).replace(
            microsecond=(self.time_ns % 1_000_000_000) // 1000
        )

    @property
    def is_rollback(self) -> bool:
        return self.action == "update" and self.state in ROLLBACK_STATES

    @property
    def ident(self) -> tuple[int, str, str, str]:
        """Two reads of one event (windows overlap at their edges) share this."""
        return (self.time_ns, self.service_id, self.action, self.state or "")


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def parse_event(data: Any) -> ServiceEvent | None:
    """A ServiceEvent from one decoded event object, or None when it is not a usable service event."""
    if not isinstance(data, dict) or data.get("Type") != "service":
        return None
    actor = data.get("Actor")
    if not isinstance(actor, dict):
        return None
    attrs = actor.get("Attributes")
    if not isinstance(attrs, dict):
        attrs = {}
    service_id = _text(actor.get("ID"))
    action = _text(data.get("Action"))
    time_ns = data.get("timeNano")
    if not isinstance(time_ns, int) or isinstance(time_ns, bool):
        seconds = data.get("time")
        time_ns = seconds * 1_000_000_000 if isinstance(seconds, int) and not isinstance(seconds, bool) else None
    if service_id is None or action is None or time_ns is None or time_ns <= 0:
        return None
    return ServiceEvent(
        service_id=service_id,
        name=_text(attrs.get("name")) or service_id[:12],
        action=action,
        time_ns=time_ns,
        state=_text(attrs.get("updatestate.new")),
        old_state=_text(attrs.get("updatestate.old")),
        image_new=_text(attrs.get("image.new")),
        image_old=_text(attrs.get("image.old")),
    )


def parse_line(line: bytes) -> ServiceEvent | None:
    if len(line) > MAX_EVENT_BYTES:
        return None
    try:
        return parse_event(json.loads(line))
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None


class LineSplitter:
    """Bytes from a stream -> complete lines, holding at most MAX_EVENT_BYTES of a partial one."""

    def __init__(self) -> None:
        self._partial = bytearray()
        self._skipping = False  # inside a line already too long: drop up to its end

    def feed(self, data: bytes) -> list[bytes]:
        lines: list[bytes] = []
        start = 0
        while True:
            newline = data.find(b"\n", start)
            if newline < 0:
                break
            piece = data[start:newline]
            if not self._skipping:
                self._partial += piece
                if self._partial.strip():
                    lines.append(bytes(self._partial))
            self._partial.clear()
            self._skipping = False
            start = newline + 1
        if not self._skipping:
            self._partial += data[start:]
            if len(self._partial) > MAX_EVENT_BYTES:
                self._partial.clear()
                self._skipping = True
        return lines
