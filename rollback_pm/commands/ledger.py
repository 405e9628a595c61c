"""`rollback-pm ledger check|rebuild`: the ledger against the files around it, and how that reads."""

from __future__ import annotations

from functools import partial

from rollback_pm import ledger_repair
from rollback_pm.commands import emit
from rollback_pm.config import Settings
from rollback_pm.deadline import hours_for
from rollback_pm.errors import EXIT_DEGRADED, EXIT_FAILED, EXIT_OK
from rollback_pm.ledger import SCHEMA_VERSION
from rollback_pm.ledger_repair import UNKNOWN, CheckReport, RebuildReport
from rollback_pm.placement import draft_policy


def ledger_check(settings: Settings, *, as_json: bool = False) -> int:
    """Changes nothing. 0 clean, 1 problems found."""
    report = ledger_repair.check(
        settings.state_dir, drafts_dirs=[draft_policy(settings).directory], evidence_dir=settings.evidence_dir
    )
    emit(as_json, report.to_json, lambda: check_lines(report))
    return EXIT_OK if report.clean else EXIT_FAILED


def ledger_rebuild(settings: Settings, *, force: bool = False, as_json: bool = False) -> int:
    """The old ledger is moved aside, never deleted. 0 when every file found was used, 3 when some
    could not be attributed (they are listed)."""
    report = ledger_repair.rebuild(
        settings.state_dir,
        drafts_dirs=[draft_policy(settings).directory],
        evidence_dir=settings.evidence_dir,
        deadline_hours=partial(hours_for, settings),
        force=force,
    )
    emit(as_json, report.to_json, lambda: rebuild_lines(report))
    return EXIT_DEGRADED if report.not_recovered else EXIT_OK


def check_lines(report: CheckReport) -> list[str]:
    version = (
        "-"
        if report.schema_version is None
        else f"{report.schema_version}{' (current)' if report.schema_version == SCHEMA_VERSION else ''}"
    )
    lines = [
        f"ledger {report.ledger}: schema version {version}, integrity {report.integrity}, "
        f"{report.incidents} incident{'s' if report.incidents != 1 else ''}"
    ]
    lines += [f"problem: {p.message}" for p in report.problems]
    lines += [f"note: {n}" for n in report.notes]
    count = len(report.problems)
    lines.append(f"{count} problem{'s' if count != 1 else ''} found" if count else "no problems found")
    return lines


def rebuild_lines(report: RebuildReport) -> list[str]:
    lines = [f"moved aside: {p}" for p in report.moved_aside]
    if report.moved_aside:
        lines.append(f"  (kept, never deleted; `sqlite3 {report.moved_aside[0]} .recover` may get more out of it)")
    lines.append(f"ledger {report.ledger}: {len(report.recovered)} incident(s) recovered")
    for r in report.recovered:
        lines.append(f"recovered {r.id} ({r.status}) from {', '.join(r.sources)}")
        if r.unknown:
            lines.append(f"  unknown: {', '.join(r.unknown)} (recorded as '{UNKNOWN}' or empty)")
        if r.estimated:
            lines.append(f"  estimated: {', '.join(r.estimated)}")
    lines += [f"not recovered: {n}" for n in report.not_recovered]
    return lines
