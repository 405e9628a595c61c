"""`rollback-pm collect`: the evidence stage alone, for an operator on a host."""

from __future__ import annotations

from typing import Any

from rollback_pm.commands import emit
from rollback_pm.commands.hook import what
from rollback_pm.config import Settings
from rollback_pm.errors import EXIT_DEGRADED, EXIT_OK
from rollback_pm.evidence import BundleResult
from rollback_pm.hook import evidence_stage
from rollback_pm.inputs import collect_options, selection
from rollback_pm.memory import bound_heap
from rollback_pm.swarm_hook import collect_evidence as collect_swarm_evidence
from rollback_pm.swarm_hook import selection_of
from rollback_pm.timeutil import utcnow


def collect(settings: Settings, *, as_json: bool = False) -> int:
    bound_heap()  # as for the hook: big buffers leave the process when freed
    now = utcnow()
    if selection_of(settings) is not None:  # Swarm services: every task's logs through a manager
        bundle = collect_swarm_evidence(settings, now=now)
    else:
        bundle = evidence_stage(selection(settings), collect_options(settings, now), now)
    emit(as_json, lambda: bundle_json(bundle), lambda: bundle_lines(bundle))
    return EXIT_DEGRADED if bundle.degraded else EXIT_OK


def bundle_lines(bundle: BundleResult) -> list[str]:
    lines = [f"bundle {bundle.bundle_id}: {len(bundle.containers)} {what(bundle)}(s)"]
    lines += [f"  {f.path}" for f in bundle.files]
    lines += [f"  missing {c.name}: {c.error}" for c in bundle.containers if not c.ok]
    return lines


def bundle_json(bundle: BundleResult) -> dict[str, Any]:
    return {
        "bundle": bundle.bundle_id,
        "files": [{"path": f.path, "kind": f.kind, "sha256": f.sha256, "bytes": f.bytes} for f in bundle.files],
        "containers": [
            {"name": c.name, "ok": c.ok, "error": c.error, "truncated": c.truncated} for c in bundle.containers
        ],
        "partial": bundle.partial,
    }
