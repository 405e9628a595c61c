"""The bundle's manifest: what was collected, how, and what went wrong (never a secret value)."""

from __future__ import annotations

import platform
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import rollback_pm
from rollback_pm.evidence.types import CollectOptions, ContainerResult, Selection
from rollback_pm.models import EvidenceFile
from rollback_pm.timeutil import iso, utcnow

MANIFEST_SCHEMA = 1


@dataclass
class Outcome:
    """How the collection as a whole went."""

    partial: bool
    deadline_hit: bool
    errors: list[str]
    counts: dict[str, int]  # redaction counts per rule, documents and logs together
    timings: dict[str, float]


def limits_dict(options: CollectOptions) -> dict[str, Any]:
    """The caps and limits of a collection, as the manifest and the freeze spool record them."""
    return {
        "max_bytes_per_container": options.max_bytes_per_container,
        "max_total_bytes": options.max_total_bytes,
        "timeout_s": options.timeout,
        "min_free_mb": options.min_free_mb,
        "parallel": options.parallel,
        "fast_path": options.fast_path,
    }


def build_manifest(
    bundle: str,
    now: datetime,
    selection: Selection,
    options: CollectOptions,
    files: list[EvidenceFile],
    results: list[ContainerResult],
    outcome: Outcome,
    engine: str,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``extra`` adds sections (the finalize phase's ``freeze``: when and which byte ranges)."""
    return {
        "schema": MANIFEST_SCHEMA,
        "tool": {"name": "rollback-pm", "version": rollback_pm.__version__, "python": platform.python_version()},
        "bundle": bundle,
        "created_at": iso(now),
        "finished_at": iso(utcnow()),
        "host": platform.node(),
        "engine": engine,
        "selection": selection.to_dict(),
        "options": {"since": iso(options.since) if options.since else None, **limits_dict(options)},
        "complete": not outcome.partial,
        "partial": outcome.partial,
        "deadline_reached": outcome.deadline_hit,
        "errors": outcome.errors,
        "files": [
            {"name": f.path.rsplit("/", 1)[-1], "kind": f.kind, "sha256": f.sha256, "bytes": f.bytes} for f in files
        ],
        "containers": [r.to_dict() for r in results],
        "redaction": {"counts": dict(sorted(outcome.counts.items())), "rules": "see rollback_pm.redact"},
        "timings_s": {k: round(v, 3) for k, v in outcome.timings.items()},
        **(extra or {}),
    }
