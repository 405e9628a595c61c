"""One ticket per rollback: find-or-create, comment what is new, queue when the tracker is down.

The outbox holds only (incident id, action, non-secret payload); the ticket's content is
rebuilt from the ledger when the entry is sent, so a flush sends current facts and no
token or secret is ever stored.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rollback_pm.deadline import describe, due_at
from rollback_pm.errors import IncidentNotFound, LedgerError, TrackerError, TrackerUnavailable
from rollback_pm.ledger import Ledger, Unreadable
from rollback_pm.log import get_logger, mask
from rollback_pm.models import Incident, TicketRef
from rollback_pm.signals import SignalReport, stored
from rollback_pm.signals.summary import listed, state_line
from rollback_pm.timeutil import iso
from rollback_pm.trackers.base import ExistingTicket, TicketSpec, Tracker
from rollback_pm.trackers.markup import Doc, Span, code, link, plain_doc, strong, to_markdown

log = get_logger(__name__)
ATTACH_LOG_CAP = 10 * 1024 * 1024  # logs bigger than this are linked, not uploaded
_LABEL_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")
# notifications (kind, channel "ticket"): the ticket was opened without its draft / has heard it is there now
DRAFT_MISSING = "draft-missing"
DRAFT_WRITTEN = "draft-written"


@dataclass
class TicketOutcome:
    ticket: TicketRef | None
    created: bool = False
    queued: bool = False
    message: str = ""
    comments: list[str] = field(default_factory=list)


def label(text: str) -> str:
    """Labels without spaces (Jira rejects them)."""
    return _LABEL_SAFE.sub("-", text.strip()).strip("-").lower() or "unknown"


def ticket_spec(
    incident: Incident,
    *,
    deadline_hours: float = 24.0,
    draft_path: str | None = None,
    signals: SignalReport | None = None,
    draft_problem: str | None = None,
) -> TicketSpec:
    """The ticket's title, body, labels, due date and attachments."""
    deploy7 = incident.deploy_sha[:7]
    rollback7 = (incident.rollback_sha or "unknown")[:7]
    due = due_at(incident, deadline_hours)
    body = ticket_body(
        incident, deadline_hours=deadline_hours, draft_path=draft_path, signals=signals, draft_problem=draft_problem
    )
    attachments: list[Path] = []
    if draft_path and Path(draft_path).is_file():
        attachments.append(Path(draft_path))
    for e in incident.evidence:
        if (e.kind == "manifest" or (e.kind == "log" and e.bytes <= ATTACH_LOG_CAP)) and Path(e.path).is_file():
            attachments.append(Path(e.path))
    return TicketSpec(
        incident_id=incident.id,
        unique_label=incident.unique_label,
        title=f"Postmortem: {incident.service} {incident.environment} rollback {deploy7} -> {rollback7}",
        body=body,
        labels=["postmortem", "rollback", label(incident.environment), label(incident.service)],
        due_date=due.date() if due else None,
        severity=incident.severity,
        pipeline_url=incident.pipeline_url,
        attachments=attachments,
    )


def ticket_body(
    incident: Incident,
    *,
    deadline_hours: float,
    draft_path: str | None,
    signals: SignalReport | None = None,
    draft_problem: str | None = None,
) -> Doc:
    """The ticket's body as a document: every value from the incident is data, never markup."""
    doc = Doc().paragraph(
        "Production rollback of ",
        strong(incident.service),
        " in ",
        strong(incident.environment),
        ". " + describe(incident, deadline_hours),
    )
    rows: list[list[Any]] = [
        ["Incident", code(incident.id)],
        ["Deploy SHA", code(incident.deploy_sha)],
        [
            "Rollback SHA",
            [code(incident.rollback_sha or "unknown"), f" ({incident.rollback_sha_source or 'no source'})"],
        ],
        ["Detected", f"{iso(incident.detected_at) or 'unknown'} by {incident.detected_by}"],
        ["Mitigated", iso(incident.mitigated_at) or "unknown"],
        ["Severity", incident.severity],
    ]
    if incident.pipeline_url:
        rows.append(["Pipeline", link(incident.pipeline_url, incident.pipeline_url)])
    doc.table(["Field", "Value"], rows)
    failed = incident.failed_step
    if failed:
        number = f"step {failed.step} " if failed.step is not None else ""
        doc.paragraph(strong(f"Failed smoke {number}"), code(failed.name), ": ", failed.message or "no message")
    if signals is not None:
        _what_the_logs_say(doc, signals)
    for warning in incident.warnings:
        doc.paragraph(strong("Warning:"), " ", warning)
    if incident.evidence:
        doc.paragraph(strong("Evidence"), " (sha256):")
        doc.bullets([code(e.path), f" ({e.bytes} bytes, ", code(e.sha256), ")"] for e in incident.evidence)
    rewrite: list[Span | str] = [
        "; once that is fixed, " if draft_problem else "; ",
        code(f"rollback-pm draft {incident.id}"),
        " writes it.",
    ]
    if draft_path and Path(draft_path).is_file():
        doc.paragraph(strong("Postmortem draft:"), " ", code(draft_path), " (attached)")
        if draft_problem:
            doc.paragraph(strong("The draft was not updated with these facts:"), " ", draft_problem, *rewrite)
    else:
        why = draft_problem or (
            f"the draft {draft_path} is gone" if draft_path else "the ledger records none for this rollback"
        )
        doc.paragraph(strong("Postmortem draft missing:"), " ", why, *rewrite)
    return doc


def _what_the_logs_say(doc: Doc, report: SignalReport) -> None:
    """The short version of the draft's "What the logs say": the suspected cause with its
    citation, and each failing container's state in one line."""
    cause = report.suspected_cause
    if cause is not None:
        doc.paragraph(
            strong("Suspected cause (verify, machine-suggested from the logs):"),
            " ",
            code(cause.text),
            " logged by ",
            code(cause.container),
            " (",
            code(cause.ref.cite()),
            ")",
        )
    chosen = listed(report)
    if chosen:
        doc.paragraph(strong("What the logs say"), " (the draft quotes each with its lines):")
        doc.bullets([code(item.container.name), ": ", state_line(item.container)] for item in chosen)


def _bundles(incident: Incident) -> list[str]:
    return sorted({e.bundle for e in incident.evidence})


def _report_new_bundles(ledger: Ledger, tracker: Tracker, incident: Incident, ticket: TicketRef) -> list[str]:
    """Comment once per evidence bundle the ticket has not heard of yet."""
    comments = []
    for bundle in _bundles(incident):
        if ledger.notified(incident.id, f"evidence:{bundle}", "ticket"):
            continue
        files = [e for e in incident.evidence if e.bundle == bundle]
        doc = Doc().paragraph("New evidence bundle ", code(bundle), ":")
        doc.bullets([code(e.path), f" ({e.bytes} bytes, sha256 ", code(e.sha256), ")"] for e in files)
        tracker.comment(ticket, doc)
        for e in files:
            if e.kind == "manifest":
                tracker.attach(ticket, Path(e.path))
        ledger.record_notification(incident.id, f"evidence:{bundle}", "ticket")
        comments.append(to_markdown(doc))
    return comments


def _report_draft_written(
    ledger: Ledger, tracker: Tracker, incident: Incident, ticket: TicketRef, draft_path: str | None
) -> list[str]:
    """A ticket opened without its draft hears once that the draft is there now (attached)."""
    if not draft_path or not Path(draft_path).is_file():
        return []
    if not ledger.notified(incident.id, DRAFT_MISSING, "ticket") or ledger.notified(
        incident.id, DRAFT_WRITTEN, "ticket"
    ):
        return []
    doc = Doc().paragraph(strong("Postmortem draft written:"), " ", code(draft_path), " (attached)")
    tracker.comment(ticket, doc)
    tracker.attach(ticket, Path(draft_path))
    ledger.record_notification(incident.id, DRAFT_WRITTEN, "ticket")
    return [to_markdown(doc)]


def open_ticket(
    ledger: Ledger,
    tracker: Tracker,
    incident: Incident,
    *,
    deadline_hours: float = 24.0,
    queue_on_failure: bool = True,
    draft_problem: str | None = None,
) -> TicketOutcome:
    """Find or create the incident's ticket; on a re-run, comment only what is new.

    ``draft_problem``: why this run could not write the draft; a new ticket says so."""
    if not tracker.capabilities.tickets:
        return TicketOutcome(ticket=None, message=f"no ticket (tracker {tracker.name})")
    draft_path, _, _ = ledger.draft_record(incident.id)
    try:
        ticket = incident.ticket if incident.ticket and incident.ticket.tracker == tracker.name else None
        created = False
        if ticket is None:
            ticket = tracker.find(incident.unique_label)
        if ticket is None:
            report = stored.choose(ledger.signal_report_rows(incident.id), incident.id)
            spec = ticket_spec(
                incident,
                deadline_hours=deadline_hours,
                draft_path=draft_path,
                signals=report,
                draft_problem=draft_problem,
            )
            made = tracker.create(spec)
            # A ticket that turned out to exist (a lost create's, another runner's) is found, not made.
            ticket = TicketRef(made.tracker, made.key, made.url, made.status)
            created = not isinstance(made, ExistingTicket)
        if created:
            log.info("ticket created", incident=incident.id, key=ticket.key, tracker=tracker.name)
            # The creation already carries every bundle known now.
            ledger.set_ticket(incident.id, ticket)
            for bundle in _bundles(incident):
                ledger.record_notification(incident.id, f"evidence:{bundle}", "ticket")
            if not (draft_path and Path(draft_path).is_file()):
                ledger.record_notification(incident.id, DRAFT_MISSING, "ticket")
            comments: list[str] = []
        else:
            ledger.set_ticket(incident.id, ticket)
            comments = _report_new_bundles(ledger, tracker, incident, ticket)
            comments += _report_draft_written(ledger, tracker, incident, ticket, draft_path)
    except TrackerError as exc:
        if not queue_on_failure:
            raise
        message = mask(str(exc))
        ledger.enqueue(incident.id, "open", {}, message)
        log.warning("ticket queued in outbox", incident=incident.id, error=message)
        hint = "" if isinstance(exc, TrackerUnavailable) else " Fix the setting named above, then"
        return TicketOutcome(
            ticket=None,
            queued=True,
            message=f"ticket queued in the outbox: {message}.{hint} `rollback-pm ticket flush` sends it (cron runs it)",
        )
    return TicketOutcome(
        ticket=ticket,
        created=created,
        comments=comments,
        message=f"{'created' if created else 'found'} {ticket.key} {ticket.url}".strip(),
    )


def notify(ledger: Ledger, tracker: Tracker, incident: Incident, action: str, payload: dict[str, Any]) -> None:
    """Comment or label on the incident's ticket; raises TrackerError (callers decide to queue)."""
    ticket = incident.ticket or tracker.find(incident.unique_label)
    if ticket is None:
        raise TrackerError(f"incident {incident.id} has no ticket yet; run `rollback-pm ticket open {incident.id}`")
    if action == "comment":
        # A document built by us, or (an outbox entry) a plain string shown as text.
        tracker.comment(ticket, payload["doc"] if "doc" in payload else plain_doc(payload["text"]))
    elif action == "label":
        tracker.add_label(ticket, payload["label"])
    else:
        raise TrackerError(f"unknown outbox action {action!r}")


@dataclass
class FlushResult:
    sent: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    unreadable: list[Unreadable] = field(default_factory=list)  # entries that cannot be sent as they are


OUTBOX_ACTIONS = {"open": None, "comment": "text", "label": "label"}  # action -> the payload's text field


def _entry_payload(entry: sqlite3.Row) -> dict[str, Any]:
    """An outbox entry's payload as sent, checked: ValueError saying what is wrong."""
    action = entry["action"]
    if action not in OUTBOX_ACTIONS:
        raise ValueError(f"its action {str(action)[:40]!r} is not one of {', '.join(OUTBOX_ACTIONS)}")
    text = entry["payload"]
    try:
        payload = json.loads(text) if isinstance(text, (str, bytes)) else None
    except (ValueError, RecursionError):
        payload = None
    if not isinstance(payload, dict):
        raise ValueError("its payload is not a JSON object")
    needed = OUTBOX_ACTIONS[action]
    if needed and not isinstance(payload.get(needed), str):
        raise ValueError(f'its payload has no "{needed}" text')
    return payload


def flush(
    ledger: Ledger, tracker: Tracker, *, deadline_hours: Callable[[str], float] = lambda environment: 24.0
) -> FlushResult:
    """Send the outbox in order. An incident whose entry fails keeps its later entries queued.

    Each entry stands on its own: one that cannot be sent as it is (its payload is not JSON,
    its incident is damaged or gone) is listed in ``unreadable`` with how to fix it and left
    queued; the other entries are sent. ``deadline_hours`` maps an environment to its
    deadline (environments may differ).
    """
    result = FlushResult()
    blocked: set[str] = set()
    for entry in ledger.pending_outbox():
        iid, action = str(entry["incident_id"]), entry["action"]
        what = f"outbox entry {entry['id']} ({str(action)[:20]}) for incident {iid}"
        drop = f'sqlite3 {ledger.path} "DELETE FROM outbox WHERE id = {entry["id"]}"'
        if iid in blocked:
            continue
        try:
            payload = _entry_payload(entry)
        except ValueError as exc:
            result.unreadable.append(
                Unreadable(
                    "outbox entry", str(entry["id"]), f"{what} is not sent: {exc}; correct it or delete it: {drop}"
                )
            )
            continue
        try:
            incident = ledger.get(iid)
        except IncidentNotFound:
            result.unreadable.append(
                Unreadable(
                    "outbox entry",
                    str(entry["id"]),
                    f"{what} is not sent: the ledger has no such incident; delete it: {drop}",
                )
            )
            continue
        except LedgerError as exc:
            result.unreadable.append(Unreadable("outbox entry", str(entry["id"]), f"{what} is not sent: {exc}"))
            blocked.add(iid)  # its later entries wait for the incident to be repaired, in order
            continue
        try:
            if action == "open":
                outcome = open_ticket(
                    ledger,
                    tracker,
                    incident,
                    deadline_hours=deadline_hours(incident.environment),
                    queue_on_failure=False,
                )
                done = f"{iid}: {outcome.message}"
            else:
                field_name = OUTBOX_ACTIONS[action]
                assert field_name is not None
                notify(ledger, tracker, incident, action, {field_name: payload[field_name]})
                done = f"{iid}: {action} sent"
        except TrackerError as exc:
            message = mask(str(exc))
            ledger.outbox_failed(entry["id"], message)
            result.failed.append(f"{iid}: {action}: {message}")
            blocked.add(iid)
            continue
        ledger.outbox_done(entry["id"])
        result.sent.append(done)
    return result


def refresh_status(ledger: Ledger, tracker: Tracker, incident: Incident) -> TicketRef:
    """Read the ticket's state back from the tracker (the source of truth) and cache it."""
    ticket = incident.ticket
    if ticket is None:
        raise TrackerError(f"incident {incident.id} has no ticket yet; run `rollback-pm ticket open {incident.id}`")
    status = tracker.status(ticket)
    updated = TicketRef(tracker=ticket.tracker, key=ticket.key, url=ticket.url, status=status)
    ledger.set_ticket(incident.id, updated)
    return updated
