"""`rollback-pm check-deadlines`: the cron's run of the clock, and how it reports."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import click

from rollback_pm.commands.followups import run_json, status_lines, sync_lines
from rollback_pm.config import Settings
from rollback_pm.deadlines import CheckResult, run_check, span
from rollback_pm.errors import EXIT_OK
from rollback_pm.timeutil import iso


def check_deadlines(
    settings: Settings,
    *,
    now: datetime | None = None,
    dry_run: bool = False,
    quiet: bool = False,
    as_json: bool = False,
) -> int:
    """0 nothing overdue, 1 something overdue, 3 the check was degraded (each line says which)."""
    result = run_check(settings, now=now, dry_run=dry_run)
    if result is None:  # another run holds the lock and does the work
        return EXIT_OK
    if as_json:
        click.echo(json.dumps(result_json(result), indent=2))
    else:
        lines = event_lines(result)
        if not quiet:
            lines = table_lines(result) + lines
        for line in lines:
            click.echo(line)
    for line in result.degraded:
        click.echo(f"rollback-pm: degraded: {line}", err=True)
    return result.exit_code


def table_lines(result: CheckResult) -> list[str]:
    if not result.checks and not result.unreadable:
        return ["no open incidents"]
    lines = [f"{'ID':<12}  {'SERVICE':<16} {'ENV':<11} {'DUE':<20}  {'LEFT':>7}  {'STATE':<8} {'TICKET':<16} OWNER"]
    for c in result.checks:
        i = c.incident
        left = "-"
        if c.due is not None and c.state != "done":
            left = ("-" if result.now > c.due else "") + span(c.due - result.now)
        state = c.state + ("?" if c.unchecked else "")
        lines.append(
            f"{i.id:<12}  {i.service[:16]:<16} {i.environment[:11]:<11} {iso(c.due) or '-':<20}  "
            f"{left:>7}  {state:<8} {(i.ticket.key if i.ticket else '-')[:16]:<16} {i.owner or '-'}"
        )
    for u in result.unreadable:
        lines.append(f"{u.ident[:12]:<12}  {u.service[:16]:<16} {u.environment[:11]:<11} {'?':<20}  {'?':>7}  damaged")
    if any(c.unchecked for c in result.checks):
        lines.append("?: the tracker could not be asked; state from the last known ticket status")
    pressing = [c for c in result.followups.checks if c.state in ("due-soon", "overdue") or c.unchecked]
    if pressing:
        lines += ["", *status_lines(pressing)]
    return lines


def event_lines(result: CheckResult) -> list[str]:
    """What this run did (or, with --dry-run, would do): the lines cron should mail."""
    lines = [f"outbox: sent {line}" for line in (result.flushed.sent if result.flushed else [])]
    for c in result.checks:
        if c.state == "done":
            lines.append(f"{c.incident.id}: {'done' if c.newly_done else 'would mark done'} ({c.reason})")
        for n in c.notices:
            if n.result == "sent":
                lines.append(f"{c.incident.id}: sent {n.describe()}")
            elif n.result == "would-send":
                lines.append(f"{c.incident.id}: would send {n.describe()}")
    run = result.followups
    lines += [f"follow-ups: {line}" for line in sync_lines(run.syncs, verbose=False)]
    lines += [f"repeat: {line}" for line in run.linked]
    for f in run.checks:
        what = f"{f.incident.id} follow-up {f.followup.key or f.followup.row_key}"
        for n in f.notices:
            if n.result == "sent":
                lines.append(f"{what}: sent {n.describe()}")
            elif n.result == "would-send":
                lines.append(f"{what}: would send {n.describe()}")
    return lines


def result_json(result: CheckResult) -> dict[str, Any]:
    return {
        "now": iso(result.now),
        "dry_run": result.dry_run,
        "incidents": [
            {
                "id": c.incident.id,
                "service": c.incident.service,
                "env": c.incident.environment,
                "due": iso(c.due),
                "state": c.state,
                "reason": c.reason,
                "checked": c.unchecked is None,
                "ticket": c.incident.ticket.key if c.incident.ticket else None,
                "ticket_url": c.incident.ticket.url if c.incident.ticket else None,
                "draft": c.incident.draft_path,
                "owner": c.incident.owner,
                "notifications": [
                    {
                        "kind": n.kind,
                        "channel": n.channel,
                        "result": n.result,
                        **({"detail": n.detail} if n.detail else {}),
                    }
                    for n in c.notices
                ],
            }
            for c in result.checks
        ],
        "outbox": {
            "sent": result.flushed.sent if result.flushed else [],
            "failed": result.flushed.failed if result.flushed else [],
        },
        "followups": {
            k: v
            for k, v in run_json(result.followups, dry_run=result.dry_run).items()
            if k not in ("dry_run", "degraded")
        },
        "unreadable": [{"id": u.ident, "problem": u.problem} for u in result.unreadable],
        "degraded": result.degraded,
        "exit_code": result.exit_code,
    }
