"""The evidence stage's public data: what to select, how to collect, what came out."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from rollback_pm.models import EvidenceFile


@dataclass
class Selection:
    """Which containers to collect. Every given criterion must match (AND)."""

    labels: list[str] = field(default_factory=list)  # "K=V" (or "K": label present), ANDed
    name_regex: str | None = None  # anchored: must match the whole container name
    compose_project: str | None = None
    containers: list[str] = field(default_factory=list)  # ids, id prefixes or names
    all_states: bool = True  # include exited/dead containers: the crashed ones matter most

    def is_empty(self) -> bool:
        return not (self.labels or self.name_regex or self.compose_project or self.containers)

    def describe(self) -> str:
        parts = [f"label {label}" for label in self.labels]
        if self.name_regex:
            parts.append(f"name /{self.name_regex}/")
        if self.compose_project:
            parts.append(f"compose project {self.compose_project}")
        parts.extend(f"container {c}" for c in self.containers)
        text = ", ".join(parts) if parts else "no criteria"
        return text if self.all_states else f"{text} (running only)"

    def to_dict(self) -> dict[str, Any]:
        return {
            "labels": list(self.labels),
            "name_regex": self.name_regex,
            "compose_project": self.compose_project,
            "containers": list(self.containers),
            "all_states": self.all_states,
            "description": self.describe(),
        }


@dataclass
class CollectOptions:
    evidence_dir: Path
    since: datetime | None = None
    max_bytes_per_container: int = 64 * 1024 * 1024
    max_total_bytes: int | None = None
    timeout: float = 120.0  # whole-run budget in seconds; past it the bundle is written partial
    min_free_mb: int = 256
    parallel: int = 4
    fast_path: str = "auto"  # auto | never | always
    docker_host: str | None = None  # the engine's address (default: DOCKER_HOST, else the local socket)


@dataclass
class ContainerResult:
    """One container's outcome. Byte counts are of the bundle's log lines (prefix included)."""

    name: str
    id: str
    ok: bool
    error: str | None
    truncated: bool  # a byte cap cut the oldest lines
    original_bytes: int  # what the log would hold without caps
    kept_bytes: int  # what it holds
    path_used: str  # "json-file" | "local" | "api" | "" (logs not read)
    image: str = ""
    state: str = ""
    log_driver: str = ""
    notes: list[str] = field(default_factory=list)
    redaction: dict[str, int] = field(default_factory=dict)  # rule -> count in this container's log

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "id": self.id,
            "ok": self.ok,
            "error": self.error,
            "truncated": self.truncated,
            "original_bytes": self.original_bytes,
            "kept_bytes": self.kept_bytes,
            "path_used": self.path_used,
            "image": self.image,
            "state": self.state,
            "log_driver": self.log_driver,
            "notes": list(self.notes),
            "redaction": dict(sorted(self.redaction.items())),
        }


@dataclass
class BundleResult:
    bundle_id: str  # the <ts> part of the file names (with its -N suffix if any)
    files: list[EvidenceFile]  # log, inspect, manifest
    containers: list[ContainerResult]
    inspect_docs: list[dict[str, Any]]  # redacted container inspect documents
    image_docs: dict[str, dict[str, Any]]  # image id -> redacted summary (Id, RepoTags, Labels)
    partial: bool  # deadline hit or some container failed
    errors: list[str]
    redaction_counts: dict[str, int]
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def degraded(self) -> bool:
        return self.partial or any(not c.ok for c in self.containers)

    def file(self, kind: str) -> EvidenceFile | None:
        return next((f for f in self.files if f.kind == kind), None)


@dataclass
class Frozen:
    """What the collect phase froze into the private spool, for the finalize phase to process."""

    spool: Path  # the spool directory (0700, unredacted bytes: never show its contents)
    spool_id: str
    key: str  # the caller's tag (the hook's rollback key): its finalize processes this spool
    frozen_at: datetime
    containers: list[ContainerResult]  # kept_bytes: raw log bytes frozen; error when something was not
    frozen_bytes: int
    seconds: float
    errors: list[str] = field(default_factory=list)

    @property
    def degraded(self) -> bool:
        return bool(self.errors) or any(c.error for c in self.containers)
