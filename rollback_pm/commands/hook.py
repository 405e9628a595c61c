"""`rollback-pm hook`: every stage for one rollback, and how its result is printed."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from rollback_pm.commands import emit
from rollback_pm.config import Settings
from rollback_pm.errors import EXIT_DEGRADED, EXIT_OK
from rollback_pm.hook import HookState, run_hook
from rollback_pm.markdown import clean


def hook(settings: Settings, *, phase: str = "both", as_json: bool = False) -> int:
    result = run_hook(settings, phase)
    emit(as_json, lambda: result_json(result), lambda: summary_lines(result))
    return EXIT_DEGRADED if result.degraded else EXIT_OK


def summary_lines(result: HookState) -> list[str]:
    """What the hook prints for a human."""
    lines: list[str] = []
    if result.bundle:
        lines.append(f"evidence: {len(result.bundle.containers)} container(s) -> bundle {result.bundle.bundle_id}")
        lines += [f"  {f.path}" for f in result.bundle.files]
    if result.phase == "collect":
        lines.append("parked for `rollback-pm hook --phase finalize` after the rollback")
    inc = result.incident
    if inc:
        lines.append(
            f"incident: {inc.id} ({'new' if result.new_incident else 'updated'}) "
            f"{inc.service} {inc.environment} deploy {inc.deploy_sha[:7]} -> rollback "
            f"{(inc.rollback_sha or 'unknown')[:7]}"
        )
        failed = inc.failed_step
        if failed:
            lines.append(f"failed smoke step: {failed.step if failed.step is not None else '-'} {failed.name}")
    cause = result.signals.suspected_cause if result.signals else None
    if cause is not None:
        text = " ".join(clean(cause.text).split())
        lines.append(f"suspected cause (verify): {text[:200]} ({cause.container}, {cause.ref.cite()})")
    if result.draft:
        lines.append(f"draft: {result.draft.path} ({result.draft.reason})")
    elif result.draft_note:
        lines.append(result.draft_note)
    if result.ticket:
        if result.ticket.ticket:
            lines.append(f"ticket: {result.ticket.ticket.key} {result.ticket.ticket.url}".rstrip())
        elif result.ticket.message:
            lines.append(f"ticket: {result.ticket.message}")
    if result.pull_request:
        lines.append(f"pull request: {result.pull_request}")
    for r in result.repeats:
        ticket = f", ticket {r.ticket.key}" if r.ticket else ""
        lines.append(f"seen before: incident {r.incident_id} of {r.day}{ticket} failed the same way")
    for reason in result.degraded:
        lines.append(f"degraded: {reason}")
    return lines


def _cause_json(result: HookState) -> dict[str, Any] | None:
    cause = result.signals.suspected_cause if result.signals else None
    if cause is None:
        return None
    return {"container": cause.container, "text": cause.text, "cite": cause.ref.cite(), "rationale": cause.rationale}


def result_json(result: HookState) -> dict[str, Any]:
    return {
        "phase": result.phase,
        "incident": result.incident.to_dict() if result.incident else None,
        "bundle": result.bundle.bundle_id if result.bundle else None,
        "evidence": [asdict(f) for f in result.bundle.files] if result.bundle else [],
        "draft": str(result.draft.path) if result.draft else None,
        "ticket": asdict(result.ticket.ticket) if result.ticket and result.ticket.ticket else None,
        "queued": bool(result.ticket and result.ticket.queued),
        "seen_before": [
            {"incident": r.incident_id, "day": r.day, "ticket": r.ticket.key if r.ticket else None}
            for r in result.repeats
        ],
        "suspected_cause": _cause_json(result),
        "baseline": result.baseline_note,
        "degraded": result.degraded,
    }
