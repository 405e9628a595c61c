"""`rollback-pm hook`: every stage for one rollback, and how its result is printed."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from rollback_pm.commands import emit
from rollback_pm.config import Settings
from rollback_pm.errors import EXIT_DEGRADED, EXIT_OK
from rollback_pm.evidence import BundleResult
from rollback_pm.hook import HookState, run_hook
from rollback_pm.markdown import clean
from rollback_pm.memory import bound_heap
from rollback_pm.swarm_hook import run_swarm_hook, selection_of


def hook(settings: Settings, *, phase: str = "both", as_json: bool = False) -> int:
    bound_heap()  # the hook's big buffers leave the process when freed: its peak stays what it holds
    if selection_of(settings) is not None:  # Swarm services: one result per rollback
        return _swarm_hook(settings, phase=phase, as_json=as_json)
    result = run_hook(settings, phase)
    emit(as_json, lambda: result_json(result), lambda: summary_lines(result))
    return EXIT_DEGRADED if result.degraded else EXIT_OK


def _swarm_hook(settings: Settings, *, phase: str, as_json: bool) -> int:
    results = run_swarm_hook(settings, phase)

    def data() -> Any:
        shown = [result_json(r) for r in results]
        return shown[0] if len(shown) == 1 else shown

    def lines() -> list[str]:
        out: list[str] = []
        for index, result in enumerate(results):
            out += ([""] if index else []) + summary_lines(result)
        return out

    emit(as_json, data, lines)
    return EXIT_DEGRADED if any(r.degraded for r in results) else EXIT_OK


def summary_lines(result: HookState) -> list[str]:
    """What the hook prints for a human."""
    lines: list[str] = []
    if result.frozen:
        frozen = result.frozen
        lines.append(
            f"evidence: {len(frozen.containers)} container(s) frozen ({frozen.frozen_bytes / 2**20:.1f} MiB "
            f"in {frozen.seconds:.2f}s) into {frozen.spool}"
        )
    for bundle in bundles(result):
        lines.append(f"evidence: {len(bundle.containers)} {what(bundle)}(s) -> bundle {bundle.bundle_id}")
        lines += [f"  {f.path}" for f in bundle.files]
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


def what(bundle: BundleResult) -> str:
    """What a bundle's entries are: Swarm tasks, or containers."""
    return "task" if bundle.manifest.get("source") == "swarm" else "container"


def bundles(result: HookState) -> list[BundleResult]:
    """The bundles this run wrote: collected in one pass, or made from this rollback's freezes."""
    return ([result.bundle] if result.bundle else []) + result.processed


def result_json(result: HookState) -> dict[str, Any]:
    written = bundles(result)
    frozen = result.frozen
    return {
        "phase": result.phase,
        "incident": result.incident.to_dict() if result.incident else None,
        "bundle": written[0].bundle_id if written else None,
        "evidence": [asdict(f) for b in written for f in b.files],
        "frozen": (
            {
                "spool": str(frozen.spool),
                "containers": [c.name for c in frozen.containers],
                "bytes": frozen.frozen_bytes,
                "seconds": round(frozen.seconds, 3),
            }
            if frozen
            else None
        ),
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
