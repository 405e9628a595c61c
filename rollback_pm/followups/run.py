"""One pass over the follow-ups: what `followups sync` and `check-deadlines` run.

1. sync the drafts' action rows to tickets (``sync``), for one incident or for every open
   one and every done one whose draft was edited after it became done;
2. link those incidents' tickets to their repeats' (``repeats``), once each;
3. read every open follow-up's state back from the tracker, and (check-deadlines) remind
   around its target date (``reminders``).

Each incident and each follow-up is handled on its own: one that fails is reported (the
run is degraded) and the others go on. Once the tracker is unavailable (out of its retry
budget, refusing connections, timing out), the run asks it nothing more: every later call
fails at once and is reported, so a tracker outage costs one retry budget per run, not one
per row and follow-up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from rollback_pm import repeats
from rollback_pm.config import Settings
from rollback_pm.errors import RollbackPmError, TrackerUnavailable
from rollback_pm.followups.reminders import FollowupCheck, check_followup
from rollback_pm.followups.sync import Syncer, SyncResult
from rollback_pm.ledger import Ledger
from rollback_pm.log import get_logger, mask
from rollback_pm.models import Incident
from rollback_pm.timeutil import parse_ts
from rollback_pm.trackers.base import Tracker
from rollback_pm.webhook import Webhook

log = get_logger(__name__)


@dataclass
class FollowupsRun:
    syncs: list[SyncResult] = field(default_factory=list)
    checks: list[FollowupCheck] = field(default_factory=list)
    linked: list[str] = field(default_factory=list)  # repeat links made
    problems: list[str] = field(default_factory=list)  # records that could not be read, links not made

    @property
    def overdue(self) -> list[FollowupCheck]:
        return [c for c in self.checks if c.state == "overdue"]

    @property
    def degraded(self) -> list[str]:
        """What this run could not do, each saying what happens next."""
        lines = [p for s in self.syncs for p in s.problems] + list(self.problems)
        for c in self.checks:
            if c.unchecked:
                lines.append(
                    f"could not check follow-up {c.followup.key} of {c.incident.id}: {c.unchecked}; "
                    "its state uses the last known status, its reminders wait for the next run"
                )
            for n in c.notices:
                if n.result == "failed":
                    lines.append(
                        f"{c.incident.id} follow-up {c.followup.key or c.followup.row_key}: {n.describe()} not delivered: {n.detail}"
                    )
        return lines


class OneOutage:
    """A tracker for one run: after its first TrackerUnavailable, every call raises at once
    (naming that first failure) instead of waiting out the retry budget again."""

    def __init__(self, tracker: Tracker) -> None:
        self._tracker = tracker
        self._down: TrackerUnavailable | None = None

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._tracker, name)
        if not callable(value):
            return value
        return self._guard(value)

    def _guard(self, call: Callable[..., Any]) -> Callable[..., Any]:
        def guarded(*args: Any, **kwargs: Any) -> Any:
            if self._down is not None:
                raise TrackerUnavailable(f"{self._tracker.name} not asked: it was unavailable earlier in this run")
            try:
                return call(*args, **kwargs)
            except TrackerUnavailable as exc:
                self._down = exc
                raise

        return guarded


def incidents_to_sync(ledger: Ledger) -> list[Incident]:
    """Every open incident, and every done one whose draft was edited after it became done.
    A damaged incident is left out and named (check-deadlines reports it as not checked)."""
    chosen, damaged = ledger.read_each(status="open")
    for unreadable in damaged:
        log.warning("a damaged incident's follow-ups are not synced", problem=unreadable.problem)
    for row in ledger.report_rows():  # one light query: no steps, evidence or events
        if row["status"] != "done" or not row["draft_path"] or not row["done_at"]:
            continue
        try:
            edited = Path(row["draft_path"]).stat().st_mtime
            done_at = parse_ts(row["done_at"], "done_at")
        except (OSError, RollbackPmError):
            continue
        if done_at is not None and edited > done_at.timestamp():
            try:
                chosen.append(ledger.get(row["id"]))
            except RollbackPmError as exc:
                log.warning("a done incident could not be read; its follow-ups are not synced", error=str(exc))
    return chosen


def run_followups(
    ledger: Ledger,
    tracker: Tracker,
    settings: Settings,
    *,
    now: datetime,
    incident_id: str | None = None,
    incidents: list[Incident] | None = None,
    remind: bool = True,
    dry_run: bool = False,
) -> FollowupsRun:
    """Sync, link repeats, read back and (with ``remind``) remind; see the module's steps.

    ``incident_id``: that incident's follow-ups only. ``incidents``: the ones to sync
    (default ``incidents_to_sync``); every follow-up in the ledger is read back either way."""
    run = FollowupsRun()
    tracker = cast(Tracker, OneOutage(tracker))
    if incident_id:
        incidents = [ledger.get(incident_id)]
    elif incidents is None:
        incidents = incidents_to_sync(ledger)
    syncer = Syncer(ledger, tracker, owners=dict(settings.followup_owners), dry_run=dry_run)
    for incident in incidents:
        try:
            run.syncs.append(syncer.sync(incident))
        except RollbackPmError as exc:
            run.syncs.append(
                SyncResult(incident.id, incident.draft_path, problems=[f"{incident.id}: {mask(str(exc))}"])
            )
        try:
            linked, problems = repeats.link_repeats(
                ledger, tracker, ledger.get(incident.id), repeats.seen_before(ledger, incident), dry_run=dry_run
            )
        except RollbackPmError as exc:
            linked, problems = [], [f"{incident.id}: repeats not linked: {mask(str(exc))}"]
        run.linked += linked
        run.problems += problems
    followups, damaged = ledger.read_followups(incidents[0].id if incident_id else None)
    run.problems += [f"{line}; the other follow-ups are checked" for line in damaged]
    known: dict[str, Incident | None] = {i.id: i for i in incidents}
    webhooks: dict[str, Webhook] = {}
    for followup in followups:
        if followup.incident_id not in known:
            try:
                known[followup.incident_id] = ledger.get(followup.incident_id)
            except RollbackPmError as exc:
                known[followup.incident_id] = None
                run.problems.append(
                    f"the follow-ups of incident {followup.incident_id} are not checked: {mask(str(exc))}"
                )
        found = known[followup.incident_id]
        if found is None:
            continue
        incident = found
        local = settings.for_environment(incident.environment)
        webhook = None
        if remind and local.webhook_url:
            webhook = webhooks.setdefault(local.webhook_url, Webhook(local.webhook_url))
        try:
            run.checks.append(
                check_followup(
                    ledger,
                    tracker,
                    followup,
                    incident,
                    now=now,
                    warn_before=local.warn_before,
                    webhook=webhook,
                    remind=remind,
                    dry_run=dry_run,
                )
            )
        except RollbackPmError as exc:
            run.problems.append(f"follow-up {followup.row_key} of {incident.id} not checked: {mask(str(exc))}")
    run.checks.sort(key=lambda c: (c.due is None, c.due or now, c.label))
    return run
