"""`rollback-pm followups sync [ID]`: the postmortems' action rows as tickets, and how that is printed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import click
from filelock import FileLock
from filelock import Timeout as FileLockTimeout

from rollback_pm.config import Settings
from rollback_pm.deadlines import LOCK_NAME
from rollback_pm.errors import EXIT_DEGRADED, EXIT_OK, LedgerError
from rollback_pm.followups import FollowupCheck, FollowupsRun, SyncResult, run_followups
from rollback_pm.ledger import Ledger, lock_file, open_state_dir
from rollback_pm.timeutil import iso, utcnow
from rollback_pm.trackers import make_tracker

LOCK_WAIT_S = 15.0  # a cron run holding the lock may take longer: then say so rather than hang


@contextmanager
def cron_lock(state_dir: Path) -> Iterator[None]:
    """The lock check-deadlines holds: two runs syncing at once could each find no ticket for
    a row and both create one."""
    path = state_dir / LOCK_NAME
    lock = FileLock(lock_file(open_state_dir(state_dir), LOCK_NAME, "check-deadlines lock"))
    try:
        lock.acquire(timeout=LOCK_WAIT_S)
    except FileLockTimeout:
        raise LedgerError(
            f"a check-deadlines or followups sync run has held {path} for {LOCK_WAIT_S:.0f}s; it syncs the "
            "follow-ups itself: run this again when it is done"
        ) from None
    except OSError as exc:  # a link planted after the check, or no permission
        raise LedgerError(f"lock {path} cannot be taken ({exc.strerror or exc})") from None
    try:
        yield
    finally:
        lock.release()


def followups_sync(
    settings: Settings, incident_id: str | None = None, *, dry_run: bool = False, as_json: bool = False
) -> int:
    """0 done, 3 degraded (a row, a draft or the tracker could not be handled; each is named).
    Only one run syncs at a time (check-deadlines' lock); --dry-run changes nothing and needs none."""
    now = utcnow()
    state_dir = Path(settings.state_dir)
    with nullcontext() if dry_run else cron_lock(state_dir), Ledger(state_dir) as ledger:
        run = run_followups(
            ledger, make_tracker(settings), settings, now=now, incident_id=incident_id, remind=False, dry_run=dry_run
        )
    if as_json:
        click.echo(json.dumps(run_json(run, dry_run=dry_run), indent=2))
    else:
        for line in sync_lines(run.syncs, verbose=True) + [f"repeat: {line}" for line in run.linked]:
            click.echo(line)
        for line in status_lines(run.checks):
            click.echo(line)
    for line in run.degraded:
        click.echo(f"rollback-pm: degraded: {line}", err=True)
    return EXIT_DEGRADED if run.degraded else EXIT_OK


def sync_lines(syncs: list[SyncResult], *, verbose: bool) -> list[str]:
    """What the sync did per incident (``verbose``: also rows left as they were, and why)."""
    lines: list[str] = []
    for sync in syncs:
        rows = sync.rows if verbose else sync.changed
        if not rows and not sync.written and not sync.commented:
            if verbose:
                lines.append(f"{sync.incident_id}: {sync.note or 'no action rows to track'}")
            continue
        lines.append(f"{sync.incident_id}: {sync.draft}")
        lines += [f"  {row.describe()}" for row in rows]
        if sync.written:
            lines.append("  ticket keys written into the draft")
        if sync.commented:
            lines.append(
                f"  the draft changed meanwhile: keys {', '.join(sync.commented)} commented on the incident's ticket"
            )
    return lines


def status_lines(checks: list[FollowupCheck]) -> list[str]:
    if not checks:
        return []
    lines = [f"{'FOLLOW-UP':<20} {'INCIDENT':<12}  {'DUE':<10}  {'STATE':<9} {'OWNER':<16} ACTION"]
    for c in checks:
        f = c.followup
        state = c.state + ("?" if c.unchecked else "")
        lines.append(
            f"{(f.key or '-')[:20]:<20} {c.incident.id:<12}  {f.target_date or '-':<10}  {state:<9} "
            f"{(f.owner or '-')[:16]:<16} {f.action}"
        )
    if any(c.unchecked for c in checks):
        lines.append("?: the tracker could not be asked; state from the last known status")
    return lines


def check_json(c: FollowupCheck) -> dict[str, Any]:
    f = c.followup
    return {
        "incident": c.incident.id,
        "row_key": f.row_key,
        "action": f.action,
        "owner": f.owner,
        "target_date": f.target_date,
        "due": iso(c.due),
        "ticket": f.key,
        "ticket_url": f.url,
        "status": f.status,
        "state": c.state,
        "checked": c.unchecked is None,
        "notifications": [
            {"kind": n.kind, "channel": n.channel, "result": n.result, **({"detail": n.detail} if n.detail else {})}
            for n in c.notices
        ],
    }


def run_json(run: FollowupsRun, *, dry_run: bool) -> dict[str, Any]:
    return {
        "dry_run": dry_run,
        "synced": [
            {
                "incident": s.incident_id,
                "draft": s.draft,
                "rows": [
                    {
                        "line": r.line,
                        "action": r.action,
                        "result": r.result,
                        "row_key": r.row_key,
                        "ticket": r.key,
                        "ticket_url": r.url,
                        **({"detail": r.detail} if r.detail else {}),
                    }
                    for r in s.rows
                ],
                "keys_written": s.written,
                "keys_commented": s.commented,
                **({"note": s.note} if s.note else {}),
            }
            for s in run.syncs
        ],
        "repeats_linked": run.linked,
        "followups": [check_json(c) for c in run.checks],
        "degraded": run.degraded,
    }
