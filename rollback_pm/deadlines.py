"""The 24-hour clock: warn before the postmortem deadline, escalate once after it.

Cron runs ``check_deadlines`` every few minutes, so it must be quiet when all is well,
loud exactly once when something is late, and safe to overlap:

- A non-blocking file lock on the state dir: a run that finds another one running
  does nothing (the other run does the work).
- Each notification (incident, kind, channel) is recorded in the ledger only *after*
  it was delivered; a failed one is simply attempted again by the next run. Deadline
  notices are deliberately not queued in the ticket outbox: an outbox entry freezes
  the text and the decision at failure time, while the next run recomputes both (a
  warning that could not be delivered before the postmortem was finished or became
  overdue is then no longer sent at all). The notifications table is the memory.
- The one unavoidable gap: a crash between delivery and the ledger write means the
  next run sends that notification again (at least once, never lost).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path

from filelock import FileLock
from filelock import Timeout as FileLockTimeout

from rollback_pm.config import Settings
from rollback_pm.deadline import due_at, hours_for
from rollback_pm.errors import (
    EXIT_DEGRADED,
    EXIT_FAILED,
    EXIT_OK,
    LedgerError,
    TrackerError,
)
from rollback_pm.followups import FollowupsRun, run_followups
from rollback_pm.followups.run import incidents_to_sync
from rollback_pm.ledger import Ledger, Unreadable, lock_file, open_state_dir
from rollback_pm.lint import lint_text
from rollback_pm.log import get_logger, mask
from rollback_pm.models import Incident, TicketRef
from rollback_pm.notices import Notice, Planned, clock_state, deliver
from rollback_pm.safe_dirs import is_symlink_error, read_nofollow
from rollback_pm.tickets import FlushResult, flush, notify, refresh_status
from rollback_pm.timeutil import iso, utcnow
from rollback_pm.trackers import make_tracker
from rollback_pm.trackers.base import Tracker
from rollback_pm.trackers.markup import Doc, Span, code
from rollback_pm.webhook import Webhook

log = get_logger(__name__)

OVERDUE_LABEL = "postmortem-overdue"
LOCK_NAME = "check-deadlines.lock"
MAX_DRAFT_BYTES = 4 * 1024 * 1024  # a postmortem is some KB


# -- the clock ------------------------------------------------------------------------------


def draft_complete(path: str | None, *, now: datetime) -> tuple[bool, str]:
    """Whether the postmortem draft is finished (it passes lint), and why (or why not).

    The deadline is not passed to lint on purpose: a postmortem finished late is still
    finished, and lateness is this module's job.
    """
    if not path:
        return False, "no draft recorded"
    try:
        # Bounded, regular files only, never through a link: a draft path in the ledger that
        # names /dev/zero, a pipe or a huge file must not hang or exhaust this cron run.
        raw = read_nofollow(path, MAX_DRAFT_BYTES)
    except FileNotFoundError:
        return False, f"draft unreadable: {path}: no such file; `rollback-pm draft ID` writes it again"
    except OSError as exc:
        why = "a symlink" if is_symlink_error(exc) else exc.strerror or str(exc)
        return False, f"draft unreadable: {path} cannot be read ({why}); it must be a regular file"
    if len(raw) > MAX_DRAFT_BYTES:
        return False, f"draft unreadable: {path} is larger than {MAX_DRAFT_BYTES // (1024 * 1024)} MiB"
    try:
        findings = lint_text(raw.decode("utf-8"), path=str(path), now=now)
    except UnicodeDecodeError:
        return False, f"draft unreadable: {path} is not UTF-8 text"
    if findings:
        first = findings[0]
        return False, f"draft has {len(findings)} lint finding(s), first at line {first.line}: {first.rule}"
    return True, "draft passes lint"


def span(delta: timedelta) -> str:
    """3h59m, 26h00m: whole minutes, hours not folded into days (deadlines are in hours)."""
    minutes = int(abs(delta.total_seconds()) // 60)
    return f"{minutes // 60}h{minutes % 60:02d}m"


# -- one run --------------------------------------------------------------------------------


@dataclass
class Check:
    """One open incident as this run saw it."""

    incident: Incident
    hours: float
    due: datetime | None
    state: str
    reason: str
    unchecked: str | None = None  # why the tracker could not be asked; state then uses the cache
    newly_done: bool = False
    notices: list[Notice] = field(default_factory=list)


@dataclass
class CheckResult:
    now: datetime
    dry_run: bool
    checks: list[Check] = field(default_factory=list)
    flushed: FlushResult | None = None
    followups: FollowupsRun = field(default_factory=FollowupsRun)
    unreadable: list[Unreadable] = field(default_factory=list)  # damaged records, skipped

    @property
    def overdue(self) -> list[Check]:
        return [c for c in self.checks if c.state == "overdue"]

    @property
    def degraded(self) -> list[str]:
        """What this run could not do, each saying what happens next."""
        lines = [
            f"outbox: still queued {line}; the next run retries"
            for line in (self.flushed.failed if self.flushed else [])
        ]
        lines += [f"outbox: {u.problem}" for u in (self.flushed.unreadable if self.flushed else [])]
        lines += [f"not checked: {u.problem}" for u in self.unreadable]
        for c in self.checks:
            i = c.incident
            if c.unchecked:
                lines.append(
                    f"could not check {i.id} ({i.service} {i.environment}): {c.unchecked}; "
                    f"its state uses the last known ticket status, notifications wait for the next run"
                )
            for n in c.notices:
                if n.result == "failed":
                    lines.append(f"{i.id}: {n.describe()} not delivered: {n.detail}")
        return lines + self.followups.degraded

    @property
    def exit_code(self) -> int:
        # Overdue wins over degraded: a known-late postmortem (or follow-up) is the louder
        # fact, and the degraded lines are printed either way.
        if self.overdue or self.followups.overdue:
            return EXIT_FAILED
        return EXIT_DEGRADED if self.degraded else EXIT_OK


def check_incident(
    ledger: Ledger,
    tracker: Tracker,
    incident: Incident,
    *,
    now: datetime,
    hours: float,
    warn_before: float,
    webhook: Webhook | None,
    dry_run: bool = False,
) -> Check:
    """Decide one incident's state, send what is owed for it, record what was delivered."""
    due = due_at(incident, hours)
    complete, reason = draft_complete(incident.draft_path, now=now)
    unchecked = None
    if not complete and incident.ticket is not None:
        status, unchecked = _ticket_status(ledger, tracker, incident, incident.ticket, dry_run)
        if status == "resolved":
            complete, reason = True, f"ticket {incident.ticket.key} resolved"
    if complete:
        check = Check(incident, hours, due, "done", reason, unchecked)
        if not dry_run:
            ledger.mark_done(incident.id, now)
            check.newly_done = True
            log.info("postmortem done", incident=incident.id, reason=reason)
        return check
    state = clock_state(now, due, warn_before)
    if due is None:
        reason = "no deadline in this environment" if hours <= 0 else "no mitigation time known"
    elif state == "overdue":
        reason = f"overdue by {span(now - due)}; {reason}"
    else:
        reason = f"due in {span(due - now)}; {reason}"
    check = Check(incident, hours, due, state, reason, unchecked)
    if state in ("due-soon", "overdue"):
        _notify(ledger, tracker, check, now=now, webhook=webhook, dry_run=dry_run)
    return check


def _ticket_status(
    ledger: Ledger, tracker: Tracker, incident: Incident, ticket: TicketRef, dry_run: bool
) -> tuple[str, str | None]:
    """(status, problem): the tracker's answer (cached in the ledger), or the cache and why."""
    if not tracker.capabilities.status:
        return ticket.status, None
    if ticket.tracker != tracker.name:
        return ticket.status, (
            f"ticket {ticket.key} is on tracker {ticket.tracker}, but the configured tracker is {tracker.name}"
        )
    try:
        if dry_run:
            return tracker.status(ticket), None
        return refresh_status(ledger, tracker, incident).status, None
    except TrackerError as exc:
        return ticket.status, f"ticket {ticket.key} status not readable: {mask(str(exc))}"


def _notify(
    ledger: Ledger, tracker: Tracker, check: Check, *, now: datetime, webhook: Webhook | None, dry_run: bool
) -> None:
    incident = check.incident
    kind = check.state
    target = incident.ticket.key if incident.ticket else "the ticket"
    plan: list[Planned] = []
    if tracker.capabilities.tickets:
        doc = (_warning_text if kind == "due-soon" else _overdue_text)(check, now)
        plan.append(
            Planned("ticket-comment", target, lambda: notify(ledger, tracker, incident, "comment", {"doc": doc}))
        )
        if kind == "overdue":
            plan.append(
                Planned(
                    "ticket-label",
                    target,
                    lambda: notify(ledger, tracker, incident, "label", {"label": OVERDUE_LABEL}),
                    OVERDUE_LABEL,
                )
            )
    if kind == "overdue" and webhook is not None:
        message = _webhook_text(check, now)
        plan.append(Planned("webhook", webhook.host, lambda: webhook.post(message)))
    # The ticket may already be resolved while its status is unreadable: never escalate on a guess.
    check.notices += deliver(ledger, incident.id, kind, plan, unchecked=bool(check.unchecked), dry_run=dry_run)


def _draft_hint(check: Check) -> list[Span | str]:
    draft = check.incident.draft_path
    where: list[Span | str] = ["the draft ", code(draft)] if draft else ["the postmortem"]
    return [" It counts as done when ", *where, " passes ", code("rollback-pm lint"), " or this ticket is resolved."]


def _warning_text(check: Check, now: datetime) -> Doc:
    assert check.due is not None
    return Doc().paragraph(
        f"Postmortem due in {span(check.due - now)}, by {iso(check.due)} ({check.hours:g}h after mitigation).",
        *_draft_hint(check),
    )


def _overdue_text(check: Check, now: datetime) -> Doc:
    assert check.due is not None
    return Doc().paragraph(
        f"Postmortem overdue: it was due {iso(check.due)} ({check.hours:g}h after mitigation), "
        f"{span(now - check.due)} ago.",
        *_draft_hint(check),
    )


def _webhook_text(check: Check, now: datetime) -> str:
    assert check.due is not None
    i = check.incident
    ticket = f"{i.ticket.key} {i.ticket.url}".strip() if i.ticket else "none yet"
    return (
        f"Postmortem overdue: {i.service} {i.environment} rollback of {i.deploy_sha[:7]} "
        f"(incident {i.id}) was due {iso(check.due)}, {span(now - check.due)} ago. "
        f"Owner: {i.owner or 'unassigned'}. Ticket: {ticket}. Draft: {i.draft_path or 'none'}."
    )


def check_deadlines(
    ledger: Ledger, tracker: Tracker, *, now: datetime, settings: Settings, dry_run: bool = False
) -> CheckResult:
    """Flush the outbox (so a tracker outage during the rollback heals), then check every open incident."""
    result = CheckResult(now=now, dry_run=dry_run)
    if not dry_run:
        result.flushed = flush(ledger, tracker, deadline_hours=partial(hours_for, settings))
    followup_incidents = incidents_to_sync(ledger)  # before this run marks any of them done
    webhooks: dict[str, Webhook] = {}
    incidents, result.unreadable = ledger.read_each(status="open")
    for incident in incidents:
        local = settings.for_environment(incident.environment)
        url = local.webhook_url
        if url and url not in webhooks:
            webhooks[url] = Webhook(url)
        result.checks.append(
            check_incident(
                ledger,
                tracker,
                incident,
                now=now,
                hours=hours_for(settings, incident.environment),
                warn_before=local.warn_before,
                webhook=webhooks.get(url) if url else None,
                dry_run=dry_run,
            )
        )
    result.checks.sort(key=lambda c: (c.due is None, c.due or now, c.incident.id))
    # The postmortems' action rows: tickets for new rows, their state, their target dates.
    result.followups = run_followups(
        ledger, tracker, settings, now=now, incidents=followup_incidents, remind=True, dry_run=dry_run
    )
    return result


def run_check(settings: Settings, *, now: datetime | None = None, dry_run: bool = False) -> CheckResult | None:
    """The `check-deadlines` command. None when another run holds the state dir's lock."""
    now = now or utcnow()
    state_dir = Path(settings.state_dir)
    if dry_run:  # reads only: needs no lock, and must not be silenced by a running cron job
        return _run(settings, state_dir, now, dry_run=True)
    lock = FileLock(lock_file(open_state_dir(state_dir), LOCK_NAME, "check-deadlines lock"))
    try:
        lock.acquire(blocking=False)
    except FileLockTimeout:
        log.debug("another check-deadlines run holds the lock; leaving the work to it", lock=str(state_dir / LOCK_NAME))
        return None
    except OSError as exc:  # a link planted after the check above, or no permission
        raise LedgerError(f"lock {state_dir / LOCK_NAME} cannot be taken ({exc.strerror or exc})") from None
    try:
        return _run(settings, state_dir, now, dry_run=False)
    finally:
        lock.release()


def _run(settings: Settings, state_dir: Path, now: datetime, *, dry_run: bool) -> CheckResult:
    with Ledger(state_dir) as ledger:
        return check_deadlines(ledger, make_tracker(settings), now=now, settings=settings, dry_run=dry_run)
