"""`rollback-pm incidents list|show`: what the ledger knows."""

from __future__ import annotations

from typing import Any

import click

from rollback_pm.commands import emit
from rollback_pm.config import Settings, Since
from rollback_pm.errors import EXIT_DEGRADED, EXIT_OK, LedgerError
from rollback_pm.ledger import Ledger, Unreadable
from rollback_pm.models import Followup, Incident
from rollback_pm.timeutil import iso, to_jsonable, utcnow


def incidents_list(
    settings: Settings,
    *,
    service: str | None = None,
    environment: str | None = None,
    status: str | None = None,
    since: Since | None = None,
    as_json: bool = False,
) -> int:
    """Incidents, newest first; 3 when some could not be read (each is named, the others listed)."""
    with Ledger(settings.state_dir) as ledger:
        found, damaged = ledger.read_each(
            service=service, environment=environment, status=status, since=since.start(utcnow()) if since else None
        )
    emit(as_json, lambda: [brief(i) for i in found], lambda: table_lines(found, damaged))
    for record in damaged:
        click.echo(f"rollback-pm: degraded: {record.problem}", err=True)
    return EXIT_DEGRADED if damaged else EXIT_OK


def table_lines(found: list[Incident], damaged: list[Unreadable] = ()) -> list[str]:  # type: ignore[assignment]
    if not found and not damaged:
        return ["no incidents"]
    lines = [
        f"{'ID':<12}  {'SERVICE':<16} {'ENV':<11} {'DEPLOY':<7} {'ROLLBACK':<8} {'MITIGATED':<20} {'STATUS':<6} TICKET"
    ]
    for i in found:
        lines.append(
            f"{i.id:<12}  {i.service[:16]:<16} {i.environment[:11]:<11} {i.deploy_sha[:7]:<7} "
            f"{(i.rollback_sha or '-')[:7]:<8} {iso(i.mitigated_at) or '-':<20} {i.status:<6} "
            f"{i.ticket.key if i.ticket else '-'}"
        )
    for u in damaged:
        lines.append(
            f"{u.ident[:12]:<12}  {u.service[:16]:<16} {u.environment[:11]:<11} {'?':<7} {'?':<8} {'?':<20} damaged"
        )
    return lines


def brief(i: Incident) -> dict[str, Any]:
    return to_jsonable(
        {
            "id": i.id,
            "service": i.service,
            "environment": i.environment,
            "deploy_sha": i.deploy_sha,
            "rollback_sha": i.rollback_sha,
            "mitigated_at": i.mitigated_at,
            "status": i.status,
            "ticket": i.ticket.key if i.ticket else None,
            "draft": i.draft_path,
        }
    )


def incidents_show(settings: Settings, incident_id: str, *, as_json: bool = False) -> int:
    """Every fact recorded for one incident (a unique id prefix works). A damaged one shows its
    columns as stored and what is wrong (exit 3)."""
    with Ledger(settings.state_dir) as ledger:
        try:
            incident = ledger.get(incident_id)
        except LedgerError as exc:
            row, problem = ledger.row(incident_id), str(exc)
        else:
            followups, damaged = ledger.read_followups(incident.id)
            emit(
                as_json,
                lambda: {
                    **incident.to_dict(),
                    "followups": [followup_json(f) for f in followups],
                    "damaged": damaged,
                },
                lambda: show_lines(incident) + followup_lines(followups, damaged),
            )
            return EXIT_OK
    emit(
        as_json,
        lambda: {"id": str(row["id"]), "damaged": problem, "stored": {k: _stored(v) for k, v in row.items()}},
        lambda: [f"{k + ':':<20}{_stored(v)}" for k, v in row.items()],
    )
    click.echo(f"rollback-pm: degraded: {problem}", err=True)
    return EXIT_DEGRADED


def _stored(value: Any) -> Any:
    """A column as stored, printable: text and numbers as they are, anything else as its repr."""
    if value is None or isinstance(value, (int, float, str)):
        return value
    return repr(value)[:200]


def followup_json(f: Followup) -> dict[str, Any]:
    """A follow-up as `incidents show --json` gives it; its status as last read back from the tracker."""
    return to_jsonable(
        {
            "row_key": f.row_key,
            "action": f.action,
            "owner": f.owner,
            "target_date": f.target_date,
            "tracker": f.tracker,
            "ticket": f.key,
            "ticket_url": f.url,
            "status": f.status,
            "closed_at": f.closed_at,
            "updated_at": f.updated_at,
        }
    )


def followup_lines(followups: list[Followup], damaged: list[str]) -> list[str]:
    """The incident's follow-ups, each with its status as last read back (check-deadlines,
    `followups sync`)."""
    if not followups and not damaged:
        return []
    lines = ["follow-ups:"]
    for f in followups:
        due = f"due {f.target_date}" if f.target_date else "no target date"
        ticket = f"{f.key} {f.url or ''}".rstrip() if f.key else "no ticket"
        lines.append(f"  {f.status:<6} {due:<14} {f.owner or '-'}: {f.action} ({ticket})")
    lines += [f"  unreadable: {line}" for line in damaged]
    return lines


def show_lines(i: Incident) -> list[str]:
    rows = [
        ("id", i.id),
        ("service", i.service),
        ("environment", i.environment),
        ("status", i.status),
        ("deploy sha", i.deploy_sha),
        ("rollback sha", f"{i.rollback_sha or '-'} ({i.rollback_sha_source or '-'})"),
        ("pipeline", f"{i.pipeline_number or '-'} {i.pipeline_url or ''}".rstrip()),
        ("started", iso(i.started_at) or "-"),
        ("detected", iso(i.detected_at) or "-"),
        ("mitigated", iso(i.mitigated_at) or "-"),
        ("severity", i.severity),
        ("detected by", i.detected_by),
        ("draft", i.draft_path or "-"),
        ("ticket", f"{i.ticket.key} {i.ticket.status} {i.ticket.url}" if i.ticket else "-"),
    ]
    lines = [f"{label + ':':<14}{value}" for label, value in rows]
    if i.smoke_steps:
        lines.append("smoke steps:")
        lines += [
            f"  {s.step if s.step is not None else '-':>2} {s.status:<7} {s.name}{': ' + s.message if s.message else ''}"
            for s in i.smoke_steps
        ]
    if i.evidence:
        lines.append("evidence:")
        lines += [f"  {e.path} {e.bytes} bytes sha256 {e.sha256}" for e in i.evidence]
    lines += [f"warning: {w}" for w in i.warnings]
    return lines
