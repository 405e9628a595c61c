"""Where ``rollback-pm watch`` resumes: the time of the last event it handled, kept in the state dir.

``<state_dir>/watch-checkpoint.json`` holds ``{"since_ns": ..., "since": ..., "updated_at": ...}``.
It only moves forward: two watchers sharing a state dir write under a lock and keep the
later of the two times. It is written atomically, so a watcher killed at any moment
leaves the previous checkpoint or the new one, never a torn file. An event handled but
not yet checkpointed is seen again after a restart; handling it again is a no-op (the
ledger knows it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from filelock import FileLock

from rollback_pm.atomic import write_atomic
from rollback_pm.ledger import lock_file, open_state_dir
from rollback_pm.log import get_logger
from rollback_pm.timeutil import iso, utcnow

NAME = "watch-checkpoint.json"
log = get_logger(__name__)


def ns_of(when: datetime) -> int:
    when = when if when.tzinfo else when.replace(tzinfo=timezone.utc)
    delta = when - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def time_of(ns: int) -> datetime:
    return datetime.fromtimestamp(ns // 1_000_000_000, timezone.utc).replace(microsecond=(ns % 1_000_000_000) // 1000)


@dataclass
class Checkpoint:
    path: Path
    since_ns: int | None = None

    @classmethod
    def load(cls, state_dir: Path) -> Checkpoint:
        path = Path(state_dir) / NAME
        return cls(path, _read(path))

    def advance(self, time_ns: int) -> None:
        """Move to ``time_ns`` (never back) and persist it."""
        if self.since_ns is not None and time_ns <= self.since_ns:
            return
        directory = open_state_dir(self.path.parent)  # the state dir's symlink policy
        lock = lock_file(directory, self.path.with_suffix(".lock").name, "watch checkpoint lock")
        with FileLock(lock, timeout=60):
            on_disk = _read(self.path)
            target = max(time_ns, on_disk or 0)
            data = {"since_ns": target, "since": iso(time_of(target)), "updated_at": iso(utcnow())}
            write_atomic(self.path, json.dumps(data) + "\n")
        self.since_ns = target


def _read(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("watch.checkpoint_unreadable", path=str(path), error=exc.strerror or str(exc))
        return None
    try:
        value = json.loads(text).get("since_ns")
    except (ValueError, AttributeError):
        value = None
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        log.warning("watch.checkpoint_damaged", path=str(path), hint="starting from --watch-lookback instead")
        return None
    return value
