"""Follow-up status read back from the tracker, and reminders around their target dates.

The tracker is the source of truth: an open follow-up's ticket is asked for its state on
each run (resolved means closed), and the ledger caches it. An open follow-up is due at
the end (UTC) of its target date and goes through the same clock as the postmortem
(``notices``): a warning comment on its ticket once inside ``warn_before``, and once past
the date a comment, the ``followup-overdue`` label and the webhook, each sent exactly once
(the ledger remembers per follow-up), and nothing while its state cannot be read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone

from rollback_pm.errors import TrackerError
from rollback_pm.ledger import Ledger
from rollback_pm.log import mask
from rollback_pm.models import FOLLOWUP_CLOSED, FOLLOWUP_OPEN, Followup, Incident, TicketRef
from rollback_pm.notices import Notice, Planned, clock_state, deliver
from rollback_pm.trackers.base import Tracker
from rollback_pm.trackers.markup import Doc, code, strong, text
from rollback_pm.webhook import Webhook

OVERDUE_LABEL = "followup-overdue"


def due_time(target_date: str | None) -> datetime | None:
    """The end (UTC) of a YYYY-MM-DD target date: past due from the next day's 00:00 on,
    as the report counts it; None for no date or text that is not one."""
    try:
        day = date.fromisoformat((target_date or "").strip())
    except ValueError:
        return None
    return datetime.combine(day + timedelta(days=1), time(), tzinfo=timezone.utc) - timedelta(microseconds=1)


def ticket_of(followup: Followup) -> TicketRef | None:
    if not followup.key:
        return None
    return TicketRef(tracker=followup.tracker or "", key=followup.key, url=followup.url or "")


def refresh_status(ledger: Ledger, tracker: Tracker, followup: Followup, *, dry_run: bool = False) -> Followup:
    """The follow-up with its ticket's state as the tracker says now (cached in the ledger).
    Raises TrackerError when the tracker cannot be asked; returns it unchanged when this
    tracker does not hold its ticket or reads no state."""
    ticket = ticket_of(followup)
    if ticket is None or not tracker.capabilities.status or ticket.tracker != tracker.name:
        return followup
    status = FOLLOWUP_CLOSED if tracker.status(ticket) == "resolved" else FOLLOWUP_OPEN
    if status == followup.status:
        return followup
    followup.status = status
    followup.closed_at = None
    if not dry_run:
        followup, _ = ledger.upsert_followup(followup)
    return followup


@dataclass
class FollowupCheck:
    """One follow-up as this run saw it."""

    followup: Followup
    incident: Incident
    due: datetime | None
    state: str  # ok | due-soon | overdue | closed | no-date
    unchecked: str | None = None  # why its ticket's state could not be read
    notices: list[Notice] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.incident.id}/{self.followup.row_key}"


def check_followup(
    ledger: Ledger,
    tracker: Tracker,
    followup: Followup,
    incident: Incident,
    *,
    now: datetime,
    warn_before: float,
    webhook: Webhook | None,
    remind: bool = True,
    dry_run: bool = False,
) -> FollowupCheck:
    """Read one follow-up's state back, decide where it stands, and (``remind``) send what is owed for it."""
    unchecked = None
    if followup.status == FOLLOWUP_OPEN:
        try:
            followup = refresh_status(ledger, tracker, followup, dry_run=dry_run)
        except TrackerError as exc:
            unchecked = f"ticket {followup.key} status not readable: {mask(str(exc))}"
    due = due_time(followup.target_date)
    if followup.status == FOLLOWUP_CLOSED:
        return FollowupCheck(followup, incident, due, "closed", unchecked)
    state = clock_state(now, due, warn_before) if due else "no-date"
    check = FollowupCheck(followup, incident, due, state, unchecked)
    if remind and state in ("due-soon", "overdue"):
        check.notices = deliver(
            ledger,
            incident.id,
            state,
            _plan(tracker, check, now, webhook),
            memory=f"followup-{state}:{followup.row_key}",
            unchecked=bool(unchecked),
            dry_run=dry_run,
        )
    return check


def _plan(tracker: Tracker, check: FollowupCheck, now: datetime, webhook: Webhook | None) -> list[Planned]:
    followup, state = check.followup, check.state
    ticket = ticket_of(followup)
    plan: list[Planned] = []
    if ticket is not None and tracker.capabilities.tickets and ticket.tracker == tracker.name:
        doc = _comment(check, now)
        plan.append(Planned("ticket-comment", ticket.key, lambda: tracker.comment(ticket, doc)))
        if state == "overdue":
            plan.append(
                Planned("ticket-label", ticket.key, lambda: tracker.add_label(ticket, OVERDUE_LABEL), OVERDUE_LABEL)
            )
    if state == "overdue" and webhook is not None:
        message = _webhook_text(check, now)
        plan.append(Planned("webhook", webhook.host, lambda: webhook.post(message)))
    return plan


def _span(delta: timedelta) -> str:
    minutes = int(abs(delta.total_seconds()) // 60)
    return f"{minutes // 60}h{minutes % 60:02d}m"


def _day_end(check: FollowupCheck) -> datetime:
    """The midnight that ends the target date (``due`` is its last microsecond)."""
    assert check.due is not None
    return check.due + timedelta(microseconds=1)


def _comment(check: FollowupCheck, now: datetime) -> Doc:
    followup, incident = check.followup, check.incident
    assert check.due is not None
    when = (
        f"due by the end of {followup.target_date} (UTC), in {_span(_day_end(check) - now)}"
        if check.state == "due-soon"
        else f"overdue: its target date {followup.target_date} ended {_span(now - _day_end(check))} ago"
    )
    return Doc().paragraph(
        strong(f"Follow-up {when}."),
        " ",
        text(followup.action),
        f" (owner: {followup.owner or 'unassigned'}), from the postmortem of the ",
        text(incident.service),
        " rollback on ",
        text(incident.environment),
        " (incident ",
        code(incident.id),
        "). Close this ticket when it is done.",
    )


def _webhook_text(check: FollowupCheck, now: datetime) -> str:
    followup, incident = check.followup, check.incident
    assert check.due is not None
    ticket = f"{followup.key} {followup.url or ''}".strip() if followup.key else "none"
    return (
        f"Follow-up overdue: {followup.action!r} (owner: {followup.owner or 'unassigned'}) was due "
        f"{followup.target_date}, {_span(now - _day_end(check))} ago; from the postmortem of the {incident.service} "
        f"{incident.environment} rollback (incident {incident.id}). Ticket: {ticket}. "
        f"Postmortem: {incident.draft_path or 'none'}."
    )
