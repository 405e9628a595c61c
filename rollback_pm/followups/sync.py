"""`rollback-pm followups sync`: one ticket per action row, linked to the incident's ticket.

For each row with an owner, an action and a target date but no ticket (``rows``), the
follow-up ticket is found by its unique label (``rollback-pm-<id>-<row key>``) or created:
labelled ``rollback-pm-<id>`` and ``followup``, due on the target date, assigned when the
owner maps to a tracker user (the ``followup_owners`` setting, else the tracker's own user
lookup), linked to the incident's ticket. It is recorded in the ledger's ``followups``
table before anything else happens, so a rerun creates nothing new. A row whose text,
owner or date changed updates its ticket.

The new keys go into the rows' Ticket cells (a table without one: after the action, in
parentheses) only when the draft is byte for byte what was read at the start: it is read
again right before the atomic rename, and a human's edit in between wins. Then the keys are
commented on the incident's ticket instead, once, and the next run tries the draft again.
Every row is handled on its own: one that fails is reported, the others go on.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from rollback_pm import markdown
from rollback_pm.atomic import write_atomic
from rollback_pm.errors import TrackerError
from rollback_pm.followups.rows import Row, draft_rows, match_rows, new_row_key, norm
from rollback_pm.ledger import Ledger
from rollback_pm.lint import has_placeholder
from rollback_pm.log import get_logger, mask
from rollback_pm.models import Followup, Incident, TicketRef
from rollback_pm.safe_dirs import is_symlink_error, read_nofollow
from rollback_pm.trackers.base import FOLLOWUP_LABEL, FollowupSpec, Tracker
from rollback_pm.trackers.markup import Doc, Span, code, issue_ref, link, strong, text

log = get_logger(__name__)

MAX_DRAFT_BYTES = 8 * 1024 * 1024  # a postmortem is some KB
KEYS_COMMENTED = "followup-key"  # notification memory: a row's key commented on the incident's ticket


def followup_label(incident_id: str, row_key: str) -> str:
    """The follow-up's unique label: the search key that makes its creation idempotent."""
    return f"rollback-pm-{incident_id}-{row_key}"


@dataclass
class RowOutcome:
    """What happened to one action row."""

    line: int
    action: str
    result: str  # created | found | updated | unchanged | recorded | skipped | waiting | failed | would-create | would-update
    row_key: str | None = None
    key: str | None = None
    url: str | None = None
    detail: str = ""

    def describe(self) -> str:
        where = f"line {self.line}"
        ticket = f" {self.key}" if self.key else ""
        detail = f": {self.detail}" if self.detail else ""
        return f"{where} {self.result}{ticket} ({_short(self.action)}){detail}"


@dataclass
class SyncResult:
    incident_id: str
    draft: str | None
    rows: list[RowOutcome] = field(default_factory=list)
    written: bool = False  # keys went into the draft's Ticket cells
    commented: list[str] = field(default_factory=list)  # keys commented on the incident's ticket instead
    problems: list[str] = field(default_factory=list)  # what could not be done (degraded)
    note: str = ""  # why nothing was looked at (no draft)

    @property
    def changed(self) -> list[RowOutcome]:
        return [r for r in self.rows if r.result not in ("unchanged", "skipped")]


def _short(action: str, limit: int = 60) -> str:
    return action if len(action) <= limit else action[: limit - 1] + "…"


@dataclass
class Syncer:
    """One run's follow-up sync: the tracker, the owner map and what it has asked the tracker."""

    ledger: Ledger
    tracker: Tracker
    owners: Mapping[str, str] = field(default_factory=dict)
    dry_run: bool = False
    _users: dict[str, str | None] = field(default_factory=dict)

    # -- owners

    def assignee(self, owner: str | None) -> tuple[str | None, str]:
        """(the tracker user the owner maps to, or None; why not). The owner map first
        (keys compared case aside, with or without a leading @), then the tracker's lookup."""
        if not owner:
            return None, ""
        wanted = {owner.casefold(), owner.lstrip("@").casefold()}
        for name, user in self.owners.items():
            if name.casefold() in wanted or name.lstrip("@").casefold() in wanted:
                return user, ""
        if owner not in self._users:
            try:
                self._users[owner] = self.tracker.find_user(owner)
            except TrackerError as exc:
                return None, f"owner {owner!r} not looked up ({mask(str(exc))}); left unassigned"
        found = self._users[owner]
        if found is None:
            return None, f"owner {owner!r} is no {self.tracker.name} user (set followup_owners); left unassigned"
        return found, ""

    # -- one incident

    def sync(self, incident: Incident) -> SyncResult:
        result = SyncResult(incident.id, incident.draft_path)
        if not incident.draft_path:
            result.note = "no draft recorded"
            return result
        path = Path(incident.draft_path)
        try:
            original = read_draft(path)
        except OSError as exc:
            result.problems.append(f"draft {path} cannot be read ({_reason(exc)}); its follow-ups wait")
            return result
        try:
            draft_text = original.decode("utf-8")
        except UnicodeDecodeError:
            result.problems.append(f"draft {path} is not UTF-8 text; its follow-ups wait")
            return result
        rows = draft_rows(draft_text)
        known = self.ledger.list_followups(incident.id)
        taken = {f.row_key for f in known}
        handled: list[tuple[Row, str]] = []
        for row, followup in zip(rows, match_rows(rows, known), strict=True):
            try:
                outcome = self._row(incident, row, followup, taken)
            except TrackerError as exc:
                outcome = RowOutcome(row.line, row.action, "failed", detail=mask(str(exc)))
                result.problems.append(f"{incident.id} follow-up at {path}:{row.line}: {outcome.detail}")
            if outcome is None:
                continue
            result.rows.append(outcome)
            if outcome.result == "waiting":
                result.problems.append(f"{incident.id} follow-up at {path}:{row.line}: {outcome.detail}")
            if outcome.row_key and not row.has_ticket:
                handled.append((row, outcome.row_key))
        stored = {f.row_key: f for f in self.ledger.list_followups(incident.id)}
        pending = [(row, stored[key]) for row, key in handled if key in stored and stored[key].key]
        if pending and not self.dry_run:
            self._put_keys(incident, path, original, draft_text, pending, result)
        return result

    def _row(self, incident: Incident, row: Row, followup: Followup | None, taken: set[str]) -> RowOutcome | None:
        if followup is None:
            if row.has_ticket or not row.has_action:
                return None  # tracked by a human's own ticket, or an unfilled template row
            if row.problem:
                return RowOutcome(row.line, row.action, "skipped", detail=row.problem)
            row_key = new_row_key(row, taken)
            taken.add(row_key)
            followup = Followup(incident_id=incident.id, row_key=row_key, action=row.action)
        if followup.key is None and followup.created_at is not None and not self.tracker.capabilities.tickets:
            return self._update(row, followup)  # recorded without a ticket before: keep it current
        if followup.key is None:
            return self._open(incident, row, followup)
        return self._update(row, followup)

    def _current(self, row: Row, followup: Followup) -> Followup:
        """The follow-up with the row's present text (its ticket and status as recorded)."""
        return Followup(
            incident_id=followup.incident_id,
            row_key=followup.row_key,
            action=row.action if row.has_action else followup.action,
            owner=row.owner if row.problem is None else followup.owner,
            target_date=row.target.isoformat() if row.target else followup.target_date,
            tracker=followup.tracker,
            key=followup.key,
            url=followup.url,
            status=followup.status,
            closed_at=followup.closed_at,
        )

    def _open(self, incident: Incident, row: Row, followup: Followup) -> RowOutcome:
        """A row without a ticket yet: find it by its label, else create it."""
        current = self._current(row, followup)
        outcome = RowOutcome(row.line, row.action, "created", row_key=followup.row_key)
        if row.problem:
            outcome.result, outcome.detail = "skipped", row.problem
            return outcome
        if not self.tracker.capabilities.tickets:
            outcome.result = "recorded"
            outcome.detail = f"tracker {self.tracker.name} keeps no tickets"
            if not self.dry_run:
                self.ledger.upsert_followup(current)
            return outcome
        parent = self._parent(incident)
        if parent is None:
            outcome.result = "waiting"
            outcome.detail = (
                "the incident has no ticket yet (`rollback-pm ticket flush` or `ticket open` opens it); "
                "its follow-ups are created after it"
            )
            return outcome
        label = followup_label(incident.id, followup.row_key)
        ticket = self.tracker.find(label)
        if ticket is not None:
            outcome.result = "found"
        elif self.dry_run:
            outcome.result = "would-create"
            return outcome
        else:
            assignee, note = self.assignee(row.owner)
            ticket = self.tracker.create_followup(self._spec(incident, row, followup.row_key, parent, assignee))
            warnings = [*getattr(self.tracker, "last_warnings", []), *([note] if note else [])]
            outcome.detail = "; ".join(warnings)
            log.info("follow-up created", incident=incident.id, row=followup.row_key, key=ticket.key)
        current.tracker, current.key, current.url = ticket.tracker, ticket.key, ticket.url
        outcome.key, outcome.url = ticket.key, ticket.url
        if not self.dry_run:
            self.ledger.upsert_followup(current)
        return outcome

    def _update(self, row: Row, followup: Followup) -> RowOutcome:
        """A row whose follow-up has its ticket: bring the ticket in line with an edited row."""
        current = self._current(row, followup)
        outcome = RowOutcome(
            row.line, current.action, "unchanged", row_key=followup.row_key, key=followup.key, url=followup.url
        )
        changed = (
            norm(current.action) != norm(followup.action)
            or current.target_date != followup.target_date
            or (current.owner or "") != (followup.owner or "")
        )
        if not changed:
            return outcome
        outcome.result = "would-update" if self.dry_run else "updated"
        if self.dry_run:
            return outcome
        if followup.key is not None:  # without one (tracker none), the record is all there is
            if self.tracker.capabilities.tickets and followup.tracker == self.tracker.name:
                assignee, note = (None, "")
                if (current.owner or "") != (followup.owner or ""):
                    assignee, note = self.assignee(current.owner)
                ticket = TicketRef(tracker=followup.tracker or "", key=followup.key, url=followup.url or "")
                self.tracker.update_followup(
                    ticket, title=current.action, due_date=_day(current.target_date), assignee=assignee
                )
                outcome.detail = "; ".join([*getattr(self.tracker, "last_warnings", []), *([note] if note else [])])
            else:
                outcome.detail = f"recorded only: its ticket is on tracker {followup.tracker}, not {self.tracker.name}"
        self.ledger.upsert_followup(current)
        return outcome

    def _parent(self, incident: Incident) -> TicketRef | None:
        """The incident's ticket on this tracker (as recorded, else found by its label)."""
        ticket = incident.ticket
        if ticket is not None and ticket.tracker == self.tracker.name:
            return ticket
        found = self.tracker.find(incident.unique_label)
        if found is not None and not self.dry_run:
            self.ledger.set_ticket(incident.id, found)
        return found

    def _spec(
        self, incident: Incident, row: Row, row_key: str, parent: TicketRef, assignee: str | None
    ) -> FollowupSpec:
        parent_ref: list[Span | str] = [issue_ref(parent.key)]
        if parent.url.startswith(("http://", "https://")):
            parent_ref += [" (", link(parent.url, parent.url), ")"]
        body = (
            Doc()
            .paragraph(
                "Follow-up of the postmortem of the ",
                strong(incident.service),
                " rollback on ",
                strong(incident.environment),
                " (incident ",
                code(incident.id),
                "), whose ticket is ",
                *parent_ref,
                ".",
            )
            .table(
                ["Field", "Value"],
                [
                    ["Action", text(row.action)],
                    ["Owner", text(row.owner or "")],
                    ["Target date", code(row.target.isoformat() if row.target else "")],
                    ["Postmortem", code(incident.draft_path or "")],
                    ["Row", f"{row.source.section} table {row.source.table}, row {row.source.row}"],
                ],
            )
            .paragraph(
                "Close this ticket when the action is done: rollback-pm reads its state back, "
                "and reminds before and after the target date while it is open."
            )
        )
        return FollowupSpec(
            incident_id=incident.id,
            unique_label=followup_label(incident.id, row_key),
            title=row.action,
            body=body,
            parent=parent,
            labels=[incident.unique_label, FOLLOWUP_LABEL],
            due_date=row.target,
            assignee=assignee,
        )

    # -- the keys into the draft, or onto the incident's ticket

    def _put_keys(
        self,
        incident: Incident,
        path: Path,
        original: bytes,
        draft_text: str,
        pending: list[tuple[Row, Followup]],
        result: SyncResult,
    ) -> None:
        new_text, unplaced = with_keys(draft_text, pending)
        if new_text != draft_text and write_if_unchanged(path, original, new_text):
            # The ledger's sha256 of the draft is left as it was: to `rollback-pm draft` the
            # file is now edited, so a re-render never drops the keys without --force.
            result.written = True
            log.info("follow-up keys written into the draft", incident=incident.id, draft=str(path))
        else:
            unplaced = [f for _, f in pending]
        if unplaced:
            self._comment_keys(incident, path, unplaced, result)

    def _comment_keys(self, incident: Incident, path: Path, followups: list[Followup], result: SyncResult) -> None:
        fresh = [
            f for f in followups if not self.ledger.notified(incident.id, f"{KEYS_COMMENTED}:{f.row_key}", "ticket")
        ]
        if not fresh or not self.tracker.capabilities.tickets:
            return
        parent = self._parent(incident)
        if parent is None:
            return
        doc = Doc().paragraph(
            "Follow-up tickets for the postmortem's action rows. The draft ",
            code(str(path)),
            " changed while rollback-pm was about to write their keys into it, so it was left as "
            "it is: add each key to its row's Ticket cell (the next sync tries again).",
        )
        doc.bullets([[text(f.action), " → ", link(f.key, f.url) if f.url else code(f.key or "")] for f in fresh])
        try:
            self.tracker.comment(parent, doc)
        except TrackerError as exc:
            result.problems.append(f"{incident.id}: follow-up keys not commented on {parent.key}: {mask(str(exc))}")
            return
        for f in fresh:
            self.ledger.record_notification(incident.id, f"{KEYS_COMMENTED}:{f.row_key}", "ticket")
        result.commented += [f.key or "" for f in fresh]


def _day(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def read_draft(path: Path) -> bytes:
    """The draft's bytes, never through a symlink (OSError otherwise)."""
    data = read_nofollow(path, MAX_DRAFT_BYTES)
    if len(data) > MAX_DRAFT_BYTES:
        raise OSError(f"larger than {MAX_DRAFT_BYTES // (1024 * 1024)} MiB")
    return data


def _reason(exc: OSError) -> str:
    if is_symlink_error(exc):
        return "it is a symlink"
    return exc.strerror or str(exc)


def key_cell(followup: Followup) -> str:
    """The key as Markdown for a table cell: a link to the ticket where it has a web page."""
    key = followup.key or ""
    if followup.url and followup.url.startswith(("http://", "https://")):
        return markdown.cell(markdown.link(key, followup.url))
    return markdown.cell(key)


def with_keys(draft_text: str, pending: list[tuple[Row, Followup]]) -> tuple[str, list[Followup]]:
    """The draft with each follow-up's key in its row, and the follow-ups whose row could
    not take one (a row shorter than its header). Every other byte stays as it was."""
    lines = draft_text.splitlines(keepends=True)
    unplaced = []
    for row, followup in pending:
        index = row.line - 1
        body = lines[index].rstrip("\r\n") if index < len(lines) else None
        if body != row.source.raw:
            unplaced.append(followup)
            continue
        ending = lines[index][len(body) :]
        ticket_col = row.source.column("ticket")
        column = ticket_col if ticket_col is not None else row.source.column("action")
        if column is None or column >= len(row.source.spans):
            unplaced.append(followup)
            continue
        start, end = row.source.spans[column]
        current = body[start:end].strip()
        cell = key_cell(followup)
        if ticket_col is None:
            content = f"{current} ({cell})"
        elif not current or has_placeholder(current):
            content = cell
        else:
            content = f"{current} {cell}"  # a human's note stays, the key goes beside it
        lines[index] = f"{body[:start]} {content} {body[end:]}{ending}"
    return "".join(lines), unplaced


def write_if_unchanged(path: Path, expected: bytes, new_text: str) -> bool:
    """Replace the draft with ``new_text`` only if it still holds ``expected``, checked
    right before the atomic rename; False (and nothing written) when a human changed it."""

    def unchanged() -> bool:
        try:
            return read_draft(path) == expected
        except OSError:
            return False

    if not unchanged():
        return False
    try:
        mode = stat.S_IMODE(os.stat(path, follow_symlinks=False).st_mode)
        return write_atomic(path, new_text.encode("utf-8"), mode, precondition=unchanged)
    except OSError as exc:
        log.warning("follow-up keys not written into the draft", draft=str(path), error=_reason(exc))
        return False
