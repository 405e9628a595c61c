"""The cron's clock and its memory: warn before a date, escalate once after it.

Shared by the postmortem deadline (``deadlines``) and the follow-ups' target dates
(``followups``), so both behave alike:

- ``clock_state`` says ok, due-soon (inside ``warn_before``, up to and including the due
  time) or overdue (after it);
- ``deliver`` sends each planned notice at most once: a notice is recorded in the ledger's
  notifications table (incident, kind, channel) only *after* it was delivered, so one that
  failed is attempted again by the next run, and one recorded is never sent again. While
  the ticket's state could not be read, nothing is sent (never escalate on a guess).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from rollback_pm.errors import TrackerError, WebhookError
from rollback_pm.ledger import Ledger
from rollback_pm.log import get_logger, mask

log = get_logger(__name__)

CHANNEL_WORDS = {"ticket-comment": "comment", "webhook": "webhook"}


def clock_state(now: datetime, due: datetime | None, warn_before: float) -> str:
    """ok, due-soon or overdue. Due at 24:00 means still on time at 24:00, overdue after it."""
    if due is None:
        return "ok"
    if now > due:
        return "overdue"
    if now >= due - timedelta(seconds=warn_before):
        return "due-soon"
    return "ok"


@dataclass
class Notice:
    kind: str  # due-soon | overdue
    channel: str  # ticket-comment | ticket-label | webhook
    target: str  # ticket key or webhook host
    result: str  # sent | failed | would-send | deferred
    detail: str = ""
    label: str = ""  # the label a ticket-label notice adds

    def describe(self) -> str:
        what = f"label {self.label}" if self.channel == "ticket-label" else CHANNEL_WORDS[self.channel]
        return f"{self.kind} {what} to {self.target}"


@dataclass(frozen=True)
class Planned:
    """One notice to send: where, how, and (for a label) which."""

    channel: str
    target: str
    send: Callable[[], None]
    label: str = ""


def deliver(
    ledger: Ledger,
    incident_id: str,
    kind: str,
    plan: list[Planned],
    *,
    memory: str | None = None,
    unchecked: bool = False,
    dry_run: bool = False,
) -> list[Notice]:
    """Send what ``plan`` holds and has not been delivered before; what became of each.

    ``memory`` is the kind under which the ledger remembers them (default ``kind``; the
    follow-ups keep one per row). ``unchecked``: the ticket's state could not be read, so
    each notice is deferred to the next run.
    """
    remembered = memory or kind
    notices = []
    for step in plan:
        if ledger.notified(incident_id, remembered, step.channel):
            continue
        notice = Notice(kind, step.channel, step.target, "sent", label=step.label)
        notices.append(notice)
        if unchecked:
            notice.result, notice.detail = "deferred", "the ticket's status could not be read"
            continue
        if dry_run:
            notice.result = "would-send"
            continue
        try:
            step.send()
        except (TrackerError, WebhookError) as exc:
            notice.result, notice.detail = "failed", mask(str(exc))
            # the command prints it as a degraded line; a warning log here would say it twice
            log.info(
                "notification not delivered",
                incident=incident_id,
                kind=remembered,
                channel=step.channel,
                error=notice.detail,
            )
            continue
        ledger.record_notification(incident_id, remembered, step.channel)
        log.info("notification sent", incident=incident_id, kind=remembered, channel=step.channel)
    return notices
