"""The embedded default tracker: one JSON file per ticket under <state_dir>/tickets.

Needs no server, so the whole flow runs anywhere. A human (or a test) resolves a ticket
by setting "status": "resolved" in its file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rollback_pm.atomic import write_atomic
from rollback_pm.errors import TrackerError, TrackerNotFoundError
from rollback_pm.models import TicketRef
from rollback_pm.timeutil import iso, utcnow
from rollback_pm.trackers.base import TicketSpec
from rollback_pm.trackers.markup import Doc, plain_doc, to_markdown


class FileTracker:
    name = "file"

    def __init__(self, state_dir: Path) -> None:
        self.dir = Path(state_dir) / "tickets"

    def _path(self, key: str) -> Path:
        return self.dir / f"{key}.json"

    def _load(self, key: str) -> dict[str, Any]:
        try:
            return json.loads(self._path(key).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise TrackerNotFoundError(
                f"ticket file {self._path(key)} is gone; run `rollback-pm ticket open ID` to recreate it"
            ) from None
        except (OSError, ValueError) as exc:
            raise TrackerError(f"ticket file {self._path(key)} cannot be read: {exc}") from None

    def _save(self, key: str, data: dict[str, Any]) -> None:
        try:
            self.dir.mkdir(parents=True, exist_ok=True, mode=0o750)
            write_atomic(self._path(key), json.dumps(data, indent=2, sort_keys=True) + "\n")
        except OSError as exc:
            raise TrackerError(
                f"ticket file {self._path(key)} cannot be written ({exc.strerror}); "
                "make the state dir's tickets/ a writable directory"
            ) from None

    def _ref(self, key: str, data: dict[str, Any]) -> TicketRef:
        return TicketRef(
            tracker=self.name,
            key=key,
            url=self._path(key).resolve().as_uri(),
            status="resolved" if data.get("status") in ("resolved", "closed", "done") else "open",
        )

    def find(self, unique_label: str) -> TicketRef | None:
        if not self.dir.is_dir():
            return None
        for path in sorted(self.dir.glob("*.json")):
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if unique_label in data.get("labels", []):
                return self._ref(path.stem, data)
        return None

    def create(self, spec: TicketSpec) -> TicketRef:
        key = f"PM-{spec.incident_id}"
        data = {
            "key": key,
            "title": spec.title,
            "body": to_markdown(spec.body),
            "labels": sorted(set(spec.labels) | {spec.unique_label}),
            "due_date": spec.due_date.isoformat() if spec.due_date else None,
            "severity": spec.severity,
            "pipeline_url": spec.pipeline_url,
            "status": "open",
            "created_at": iso(utcnow()),
            "comments": [],
            "attachments": [],
        }
        self._save(key, data)
        ref = self._ref(key, data)
        for path in spec.attachments:
            self.attach(ref, path)
        return ref

    def comment(self, ticket: TicketRef, text: Doc | str) -> None:
        data = self._load(ticket.key)
        data["comments"].append({"at": iso(utcnow()), "body": to_markdown(plain_doc(text))})
        self._save(ticket.key, data)

    def add_label(self, ticket: TicketRef, label: str) -> None:
        data = self._load(ticket.key)
        if label not in data["labels"]:
            data["labels"] = sorted([*data["labels"], label])
            self._save(ticket.key, data)

    def attach(self, ticket: TicketRef, path: Path) -> None:
        # Evidence stays where it is (it is already checksummed); the ticket points at it.
        data = self._load(ticket.key)
        if str(path) not in data["attachments"]:
            data["attachments"].append(str(path))
            self._save(ticket.key, data)

    def status(self, ticket: TicketRef) -> str:
        return self._ref(ticket.key, self._load(ticket.key)).status
