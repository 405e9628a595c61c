"""The embedded default tracker: one JSON file per ticket under <state_dir>/tickets.

Needs no server, so the whole flow runs anywhere. A human (or a test) resolves a ticket
by setting "status": "resolved" in its file.

Humans edit these files, so each is checked before use: a file that is not a ticket
(garbage, ``{"key": 5}``, a list where the labels go) is a TicketFileError naming the file,
the field and how to fix it. Only that incident's ticket is affected; a search skips
other broken files. A ticket file is never replaced by a new ticket, never read or written
through a symlink, and the tickets dir follows the state dir's symlink policy.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import Any

from rollback_pm.atomic import write_atomic
from rollback_pm.errors import TicketFileError, TrackerError, TrackerNotFoundError
from rollback_pm.log import get_logger
from rollback_pm.models import TicketRef
from rollback_pm.safe_dirs import ensure_dir, is_symlink_error, read_nofollow
from rollback_pm.timeutil import iso, utcnow
from rollback_pm.trackers.base import (
    Capabilities,
    ExistingTicket,
    FollowupSpec,
    NoPullRequests,
    TicketSpec,
    answers,
)
from rollback_pm.trackers.markup import Doc, plain_doc, to_markdown

log = get_logger(__name__)

MAX_TICKET_BYTES = 8 * 1024 * 1024  # a ticket with its comments is some KB
KEY_PREFIX = "PM-"
FOLLOWUP_PREFIX = "FU-"  # follow-up tickets: FU-1, FU-2, ... under tickets/followups/
FOLLOWUP_DIR = "followups"
LABEL_PREFIX = "rollback-pm-"  # Incident.unique_label
_LISTS = {"labels": str, "attachments": str, "comments": dict}
_OPTIONAL_LISTS = {"links": str}
_FOLLOWUP_KEY = re.compile(rf"{FOLLOWUP_PREFIX}(\d+)")


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "true/false", type(None): "null"}.get(
        type(value), "a number"
    )


def check_ticket(path: Path, data: Any) -> dict[str, Any]:
    """``data`` as a ticket, or TicketFileError naming the field that is wrong."""
    fix = (
        "fix it (it is JSON; see another ticket file for the shape), or move it away and run "
        f"`rollback-pm ticket open {path.stem.removeprefix(KEY_PREFIX)}` to write it again"
    )

    def wrong(problem: str) -> TicketFileError:
        return TicketFileError(f"ticket file {path} is not a ticket: {problem}; {fix}")

    if not isinstance(data, dict):
        raise wrong(f"it holds {_kind(data)}, not a JSON object")
    if data.get("key") != path.stem:
        raise wrong(f'"key" is {json.dumps(data.get("key"))[:40]}, not "{path.stem}" (the file\'s name)')
    if not isinstance(data.get("status"), str):
        raise wrong(f'"status" is {_kind(data.get("status"))}, not a string such as "open" or "resolved"')
    for name, item in (*_LISTS.items(), *((n, t) for n, t in _OPTIONAL_LISTS.items() if n in data)):
        value = data.get(name)
        if not isinstance(value, list) or not all(isinstance(v, item) for v in value):
            raise wrong(f'"{name}" must be a list of {"strings" if item is str else "objects"}, not {_kind(value)}')
    for name in ("title", "body"):
        if not isinstance(data.get(name, ""), str):
            raise wrong(f'"{name}" is {_kind(data.get(name))}, not a string')
    return data


def read_ticket(path: Path) -> dict[str, Any]:
    """A ticket file, checked (TicketFileError for anything but a ticket)."""
    try:
        raw = read_nofollow(path, MAX_TICKET_BYTES)
    except FileNotFoundError:
        raise
    except OSError as exc:
        if is_symlink_error(exc):
            raise TicketFileError(
                f"ticket file {path} is a symlink; refusing to follow it. Replace it with the ticket file itself"
            ) from None
        raise TicketFileError(
            f"ticket file {path} cannot be read: {exc.strerror or exc}; check the state dir's tickets/"
        ) from None
    if len(raw) > MAX_TICKET_BYTES:
        raise TicketFileError(
            f"ticket file {path} is larger than {MAX_TICKET_BYTES // (1024 * 1024)} MiB; "
            "a ticket is some KB: move it away and run `rollback-pm ticket open ID` to write it again"
        )
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        detail = f"{exc.msg} at line {exc.lineno} column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
        raise TicketFileError(
            f"ticket file {path} is not valid JSON{': ' + detail if detail else ''}; fix it, or move it away and "
            f"run `rollback-pm ticket open {path.stem.removeprefix(KEY_PREFIX)}` to write it again"
        ) from None
    return check_ticket(path, data)


class FileTracker(NoPullRequests):
    """Incident tickets as tickets/PM-<id>.json; follow-ups as tickets/followups/FU-<n>.json
    (a directory of their own, so every file in tickets/ stays one incident's ticket)."""

    name = "file"
    capabilities = Capabilities(links=True)

    def __init__(self, state_dir: Path) -> None:
        self.dir = Path(state_dir) / "tickets"
        self.followup_dir = self.dir / FOLLOWUP_DIR
        self.last_warnings: list[str] = []  # what create_followup could not do (the link back)

    def _path(self, key: str) -> Path:
        if _FOLLOWUP_KEY.fullmatch(key):
            return self.followup_dir / f"{key}.json"
        return self.dir / f"{key}.json"

    def _ensure_dir(self, followups: bool = False) -> None:
        ensure_dir(
            self.dir,
            "ticket directory",
            "make the state dir's tickets/ a real, writable directory",
            TrackerError,
        )
        if followups:
            ensure_dir(
                self.followup_dir,
                "follow-up ticket directory",
                "make the state dir's tickets/followups/ a real, writable directory",
                TrackerError,
            )

    def _load(self, key: str) -> dict[str, Any]:
        self._ensure_dir(followups=key.startswith(FOLLOWUP_PREFIX))
        try:
            return read_ticket(self._path(key))
        except FileNotFoundError:
            raise TrackerNotFoundError(
                f"ticket file {self._path(key)} is gone; run `rollback-pm ticket open ID` to recreate it"
            ) from None

    def _save(self, key: str, data: dict[str, Any], *, new: bool = False) -> None:
        self._ensure_dir(followups=key.startswith(FOLLOWUP_PREFIX))
        try:
            write_atomic(self._path(key), json.dumps(data, indent=2, sort_keys=True) + "\n", exclusive=new)
        except FileExistsError:
            raise
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
        """The ticket with this label. The incident's own file (PM-<id>) must be a ticket;
        other broken files are skipped (and logged), so one cannot hide every ticket."""
        if not self.dir.exists() and not self.dir.is_symlink():
            return None
        self._ensure_dir()
        own = KEY_PREFIX + unique_label.removeprefix(LABEL_PREFIX)
        try:
            data = read_ticket(self._path(own))
            return self._ref(own, data)
        except FileNotFoundError:
            pass
        for path in self._files():
            try:
                data = read_ticket(path)
            except FileNotFoundError:
                continue
            except TicketFileError as exc:
                log.warning("ticket file skipped", error=str(exc))
                continue
            if answers(unique_label, data["labels"]):
                return self._ref(path.stem, data)
        return None

    def _files(self) -> list[Path]:
        """Incident tickets, then follow-ups (each directory only when it is a real one)."""
        files = sorted(self.dir.glob("*.json"))
        if self.followup_dir.is_dir() and not self.followup_dir.is_symlink():
            files += sorted(self.followup_dir.glob("*.json"), key=_followup_number)
        return files

    def create(self, spec: TicketSpec) -> TicketRef:
        key = f"{KEY_PREFIX}{spec.incident_id}"
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
        try:
            self._save(key, data, new=True)
        except FileExistsError:
            # Never replace a ticket (a human may have written in it): the file is the ticket.
            return ExistingTicket(**asdict(self._ref(key, self._load(key))))
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

    # -- follow-ups

    def create_followup(self, spec: FollowupSpec) -> TicketRef:
        """FU-<n>, the next free number; linked both ways with the incident's ticket."""
        self.last_warnings = []
        self._ensure_dir(followups=True)
        data = {
            "title": spec.title,
            "body": to_markdown(spec.body),
            "labels": sorted(set(spec.labels) | {spec.unique_label}),
            "due_date": spec.due_date.isoformat() if spec.due_date else None,
            "assignee": spec.assignee,
            "parent": spec.parent.key,
            "links": [spec.parent.key],
            "status": "open",
            "created_at": iso(utcnow()),
            "comments": [],
            "attachments": [],
        }
        number = 1 + max((_followup_number(p) for p in self.followup_dir.glob("*.json")), default=0)
        while True:
            key = f"{FOLLOWUP_PREFIX}{number}"
            try:
                self._save(key, {"key": key, **data}, new=True)
                break
            except FileExistsError:  # another run took this number: take the next
                number += 1
        ref = self._ref(key, data)
        try:
            self._link(spec.parent.key, key)
        except TrackerError as exc:  # the follow-up matters more than the way back to it
            self.last_warnings.append(f"{spec.parent.key}: the follow-up {key} is not linked there: {exc}")
            log.warning("file follow-up not linked back", key=key, parent=spec.parent.key, error=str(exc))
        return ref

    def update_followup(self, ticket: TicketRef, *, title: str, due_date: date | None, assignee: str | None) -> None:
        data = self._load(ticket.key)
        data["title"] = title
        data["due_date"] = due_date.isoformat() if due_date else None
        if assignee:
            data["assignee"] = assignee
        self._save(ticket.key, data)

    def relate(self, ticket: TicketRef, other: TicketRef, note: Doc) -> None:
        """Recorded in both files' "links"."""
        self._link(ticket.key, other.key)
        self._link(other.key, ticket.key)

    def _link(self, key: str, other: str) -> None:
        data = self._load(key)
        links = data.setdefault("links", [])
        if other not in links:
            links.append(other)
            self._save(key, data)

    def find_user(self, owner: str) -> str | None:
        """The file tracker has no user list: the owner as written (without a leading @) is the assignee."""
        return owner.strip().lstrip("@").strip() or None


def _followup_number(path: Path) -> int:
    match = _FOLLOWUP_KEY.fullmatch(path.stem)
    return int(match.group(1)) if match else 0
