"""The report's figures for machines: JSON (every figure the page shows) and CSV (one row
per incident). The HTML marks each figure it shows with the JSON value it came from."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from typing import Any

from rollback_pm import __version__
from rollback_pm.report.metrics import DEFINITIONS, DurationMetric, Report, WeekStat
from rollback_pm.timeutil import iso

JSON_SCHEMA = 1
CSV_COLUMNS = (
    "id",
    "service",
    "environment",
    "severity",
    "deploy_sha",
    "rolled_back_at",
    "started_at",
    "detected_at",
    "mitigated_at",
    "mttd_seconds",
    "mttr_seconds",
    "postmortem",
    "due_at",
    "done_at",
    "time_to_done_seconds",
    "owner",
    "ticket_key",
    "ticket_url",
    "ticket_status",
    "draft",
    "evidence",
    "signature",
    "failed_step",
    "followups_open",
    "followups_past_due",
    "followups_closed",
)
# A spreadsheet runs a cell starting with one of these as a formula; names are outside input.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _day(value: date) -> str:
    return value.isoformat()


def _weeks(stats: list[WeekStat]) -> list[dict[str, Any]]:
    return [{"week": _day(w.week), "count": w.count, "median_seconds": w.median, "p90_seconds": w.p90} for w in stats]


def _duration(metric: DurationMetric) -> dict[str, Any]:
    return {
        "median_seconds": metric.median,
        "p90_seconds": metric.p90,
        "measured": metric.measured,
        "excluded": {
            "unknown_start": metric.unknown_start,
            "unknown_end": metric.unknown_end,
            "inconsistent": metric.inconsistent,
        },
        "weeks": _weeks(metric.weeks),
    }


def _time_to_done(metric: DurationMetric) -> dict[str, Any]:
    return {
        "median_seconds": metric.median,
        "p90_seconds": metric.p90,
        "measured": metric.measured,
        "excluded": {"done_time_unknown": metric.unknown_end, "inconsistent": metric.inconsistent},
    }


def incident_rows(report: Report) -> list[dict[str, Any]]:
    """One dict per incident, newest rollback first (the JSON's incidents and the CSV's rows)."""
    rows = []
    followups = report.followups.per_incident
    for i in report.data.incidents:
        counts = followups.get(i.id, {"open": 0, "past_due": 0, "closed": 0})
        rows.append(
            {
                "id": i.id,
                "service": i.service,
                "environment": i.environment,
                "severity": i.severity,
                "deploy_sha": i.deploy_sha,
                "rolled_back_at": iso(i.rolled_back_at),
                "started_at": iso(i.started_at),
                "detected_at": iso(i.detected_at),
                "mitigated_at": iso(i.mitigated_at),
                "mttd_seconds": report.mttd.per_incident.get(i.id),
                "mttr_seconds": report.mttr.per_incident.get(i.id),
                "postmortem": report.postmortems.per_incident[i.id],
                "due_at": iso(i.due_at),
                "done_at": iso(i.done_at),
                "time_to_done_seconds": report.time_to_done.per_incident.get(i.id),
                "owner": i.owner,
                "ticket": {"key": i.ticket_key, "url": i.ticket_url, "status": i.ticket_status}
                if i.ticket_key
                else None,
                "draft": i.draft_path,
                "evidence": [{"bundle": e.bundle, "kind": e.kind, "path": e.path} for e in i.evidence],
                "signature": i.signature,
                "failed_step": i.failed_step,
                "followups": dict(counts),
            }
        )
    return rows


def as_json(report: Report, *, generated_at: datetime) -> dict[str, Any]:
    scope = report.data.scope
    rollbacks = report.rollbacks
    f = report.followups
    return {
        "schema": JSON_SCHEMA,
        "generator": f"rollback-pm {__version__}",
        "generated_at": iso(generated_at),
        "scope": {
            "since": iso(scope.since),
            "until": iso(scope.until),
            "service": scope.service,
            "environment": scope.environment,
        },
        "definitions": DEFINITIONS,
        "rollbacks": {
            "count": rollbacks.count,
            "services": rollbacks.services,
            "weeks": [{"week": _day(w.week), "total": w.total, "by_service": w.by_service} for w in rollbacks.weeks],
        },
        "mttd": _duration(report.mttd),
        "mttr": _duration(report.mttr),
        "postmortems": {
            "states": report.postmortems.counts,
            "time_to_done": _time_to_done(report.time_to_done),
        },
        "followups": {
            "total": f.total,
            "open": f.open,
            "past_due": f.past_due,
            "no_target_date": f.no_target_date,
            "closed": f.closed,
        },
        "repeat_signatures": [
            {
                "signature": r.signature,
                "count": r.count,
                "services": r.services,
                "environments": r.environments,
                "failed_step": r.failed_step,
                "first_seen": iso(r.first_seen),
                "last_seen": iso(r.last_seen),
                "incidents": r.incidents,
            }
            for r in report.repeats
        ],
        "incidents": incident_rows(report),
        "skipped": [{"record": s.record, "id": s.ident, "reason": s.reason} for s in report.data.skipped],
    }


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def as_csv(report: Report) -> str:
    """One row per incident; text a spreadsheet would run as a formula is prefixed with '."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in incident_rows(report):
        ticket = row.pop("ticket") or {}
        evidence = row.pop("evidence")
        counts = row.pop("followups")
        flat = {
            **row,
            "ticket_key": ticket.get("key"),
            "ticket_url": ticket.get("url"),
            "ticket_status": ticket.get("status"),
            "evidence": "\n".join(e["path"] for e in evidence),  # one path a line in the cell
            "followups_open": counts["open"],
            "followups_past_due": counts["past_due"],
            "followups_closed": counts["closed"],
        }
        writer.writerow([_cell(flat[c]) for c in CSV_COLUMNS])
    return out.getvalue()
