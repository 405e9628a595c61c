"""The facts stage: one Incident from the request, the evidence and what the ledger knows.

Reads smoke reports (or Woodpecker; both readers redact the steps' text), the running
containers' revision label and the git checkout; writes nothing. A malformed input raises here, before the ledger stage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from rollback_pm.errors import RollbackPmError, WoodpeckerError
from rollback_pm.evidence import BundleResult, Selection, docker_client, select_containers
from rollback_pm.facts import changes, containers, impact, shas, smoke, timeline
from rollback_pm.log import get_logger
from rollback_pm.models import ChangedFile, Commit, ContainerState, EvidenceFile, Incident, SmokeStep
from rollback_pm.stored_facts import build

log = get_logger(__name__)


@dataclass(frozen=True)
class WoodpeckerSource:
    """Where the pipeline's smoke steps can be read when no smoke report is given."""

    url: str
    token: str
    repo: str
    pipeline: int
    step_pattern: str


@dataclass(frozen=True)
class RunningContainers:
    """The containers running now (after the rollback), for their image's revision label."""

    selection: Selection
    docker_host: str | None
    service: str | None
    timeout: float = 30.0  # seconds for each Docker call: an engine that never answers is given up


@dataclass(frozen=True)
class FactsRequest:
    """Everything the facts stage reads besides the evidence and the ledger."""

    service: str
    environment: str
    deploy_sha: str
    pipeline_number: str | None
    rollback_sha: str | None
    rollback_sha_source: str  # flag | env
    prev_sha: str | None
    pipeline_url: str | None
    repo: str | None
    deployed_at: datetime | None
    mitigated_at: datetime | None
    severity: str
    detected_by: str | None
    deploy_ticket: str | None
    owner: str | None
    smoke_reports: tuple[Path, ...]
    smoke_format: str | None
    woodpecker: WoodpeckerSource | None
    running: RunningContainers | None
    repo_dir: Path | None


@dataclass
class Parked:
    """Evidence an earlier `--phase collect` left in the ledger for this rollback."""

    files: list[EvidenceFile] = field(default_factory=list)
    facts: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Gathered:
    incident: Incident  # not stored yet
    degraded: list[str] = field(default_factory=list)


def gather(
    request: FactsRequest, *, bundle: BundleResult | None, parked: Parked, last_good: str | None, now: datetime
) -> Gathered:
    degraded: list[str] = []
    if request.rollback_sha:
        resolution = shas.resolve_rollback_sha(
            explicit=request.rollback_sha, explicit_source=request.rollback_sha_source
        )
    else:
        resolution = shas.resolve_rollback_sha(
            explicit=None,
            image_revision=image_revision(bundle, request.running),
            last_good=last_good,
            ci_prev=request.prev_sha,
            deploy_sha=request.deploy_sha,
        )
    warnings = list(resolution.warnings)
    steps, deployed_at = smoke_steps(request, degraded)
    failed = [s for s in steps if s.failed and s.ts]
    detected_at = min(s.ts for s in failed if s.ts) if failed else None
    mitigated_at = request.mitigated_at or now
    states = container_states(bundle) + parked_states(parked)
    start = impact.bad_version_start(
        given=request.deployed_at,
        woodpecker=deployed_at,
        states=states,
        deploy_sha=request.deploy_sha,
        detected_at=detected_at or mitigated_at,
    )
    warnings += impact.contradictions(start, detected_at, mitigated_at)
    commits: list[Commit] = []
    files: list[ChangedFile] = []
    if request.repo_dir:
        commits, files, note = changes.suspect_changes(request.repo_dir, resolution.sha, request.deploy_sha)
        if note:
            warnings.append(note)
    incident = Incident(
        id="",
        service=request.service,
        environment=request.environment,
        deploy_sha=request.deploy_sha,
        rollback_sha=resolution.sha,
        rollback_sha_source=resolution.source,
        pipeline_number=request.pipeline_number,
        pipeline_url=request.pipeline_url,
        repo=request.repo,
        started_at=start.at if start else None,
        started_at_source=start.source if start else None,
        detected_at=detected_at,
        mitigated_at=mitigated_at,
        severity=request.severity,
        detected_by=request.detected_by or timeline.default_detected_by(steps),
        deploy_ticket=request.deploy_ticket,
        owner=request.owner,
        smoke_steps=steps,
        evidence=parked.files + (bundle.files if bundle else []),
        containers=states,
        commits=commits,
        changed_files=files,
        warnings=warnings,
    )
    return Gathered(incident, degraded)


def smoke_steps(request: FactsRequest, degraded: list[str]) -> tuple[list[SmokeStep], datetime | None]:
    """From the smoke reports, else from Woodpecker (with when the deploy went live)."""
    if request.smoke_reports:
        return smoke.parse_reports(list(request.smoke_reports), request.smoke_format), None
    if request.woodpecker is not None:
        try:
            return woodpecker_steps(request.woodpecker)
        except WoodpeckerError as exc:
            degraded.append(f"smoke steps not read from Woodpecker: {exc}")
    return [], None


def woodpecker_steps(source: WoodpeckerSource) -> tuple[list[SmokeStep], datetime | None]:
    from rollback_pm.facts.woodpecker import WoodpeckerClient

    client = WoodpeckerClient(source.url, source.token)
    return client.smoke_steps(source.repo, source.pipeline, source.step_pattern)  # redacted by the client


def image_revision(bundle: BundleResult | None, running: RunningContainers | None) -> str | None:
    """The revision label of what runs now (after the rollback) for the selected service."""
    service = running.service if running else None
    try:
        if bundle is not None:
            return shas.image_revision(bundle.inspect_docs, bundle.image_docs, service)
        if running is None:
            return None
        client = docker_client(running.docker_host, timeout=running.timeout)
        docs = [client.inspect_container(c["Id"]) for c in select_containers(client, running.selection)]
        images = {d["Image"]: client.inspect_image(d["Image"]) for d in docs}
        return shas.image_revision(docs, images, service)
    except RollbackPmError as exc:
        log.info("image revision not available", reason=str(exc))
        return None
    except Exception as exc:  # docker SDK errors: a missing label source is not fatal
        log.info("image revision not available", reason=str(exc))
        return None


def container_states(bundle: BundleResult | None) -> list[ContainerState]:
    if bundle is None:
        return []
    return [containers.container_state(doc, bundle.image_docs.get(doc.get("Image", ""))) for doc in bundle.inspect_docs]


def parked_states(parked: Parked) -> list[ContainerState]:
    """The container states stored with parked evidence (checked when the ledger read them)."""
    return [
        build(ContainerState, stored, f"parked containers[{n}]")
        for facts in parked.facts
        for n, stored in enumerate(facts.get("containers", []))
    ]
