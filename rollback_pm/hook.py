"""The rollback hook: collect -> record -> draft -> ticket.

`--phase collect` runs before the rollback replaces the failed containers and parks the
bundle in the ledger; `--phase finalize` runs after it, resolves the facts and adopts the
parked evidence; the default runs both. Every stage is idempotent for one rollback.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from filelock import FileLock

from rollback_pm import drafts
from rollback_pm.config import Settings
from rollback_pm.deadline import hours_for
from rollback_pm.errors import (
    DockerUnavailable,
    DraftEditedError,
    DraftError,
    LedgerError,
    RollbackPmError,
    TrackerError,
    UsageError,
    WoodpeckerError,
)
from rollback_pm.evidence import BundleResult, CollectOptions, Selection, collect, docker_client
from rollback_pm.facts import changes, containers, shas, smoke, timeline
from rollback_pm.ledger import Ledger, lock_file, open_state_dir, pending_key
from rollback_pm.log import get_logger
from rollback_pm.models import ContainerState, Incident, SmokeStep
from rollback_pm.safe_dirs import ensure_dir
from rollback_pm.tickets import TicketOutcome, open_ticket
from rollback_pm.timeutil import parse_ts, utcnow
from rollback_pm.trackers import make_tracker

log = get_logger(__name__)
PHASES = ("both", "collect", "finalize")


@dataclass
class HookResult:
    phase: str
    incident: Incident | None = None
    new_incident: bool = False
    bundle: BundleResult | None = None
    draft: drafts.DraftResult | None = None
    draft_note: str | None = None
    ticket: TicketOutcome | None = None
    pull_request: str | None = None
    degraded: list[str] = field(default_factory=list)


def selection_from(settings: Settings) -> Selection:
    selection = Selection(
        labels=list(settings.label),
        name_regex=settings.name,
        compose_project=settings.compose_project,
        containers=list(settings.container),
        all_states=settings.all_states,
    )
    if not (selection.labels or selection.name_regex or selection.compose_project or selection.containers):
        raise UsageError(
            "no containers selected: give --label K=V, --name REGEX, --compose-project P "
            "or --container ID (or the matching ROLLBACK_PM_* / PLUGIN_* settings)"
        )
    return selection


def collect_evidence(settings: Settings, *, now: datetime | None = None) -> BundleResult:
    """The evidence stage alone (`rollback-pm collect`)."""
    now = now or utcnow()
    selection = selection_from(settings)
    options = CollectOptions(
        evidence_dir=Path(settings.evidence_dir),
        since=settings.since.start(now) if settings.since else None,
        max_bytes_per_container=settings.max_bytes_per_container,
        max_total_bytes=settings.max_total_bytes,
        timeout=settings.timeout,
        min_free_mb=settings.min_free_mb,
    )
    return collect(selection, options, client=docker_client(settings.docker_host), now=now)


def _require(settings: Settings) -> tuple[str, str]:
    service = settings.service or settings.compose_project
    if not service:
        raise UsageError("service unknown: give --service (or ROLLBACK_PM_SERVICE; Woodpecker sets CI_REPO_NAME)")
    if not settings.deploy_sha:
        raise UsageError(
            "deploy SHA unknown: give --deploy-sha or ROLLBACK_PM_DEPLOY_SHA (Woodpecker sets CI_COMMIT_SHA)"
        )
    return service, shas.validate_sha(settings.deploy_sha, "deploy SHA")


def _states(bundle: BundleResult | None) -> list[ContainerState]:
    if bundle is None:
        return []
    return [containers.container_state(doc, bundle.image_docs.get(doc.get("Image", ""))) for doc in bundle.inspect_docs]


def _lock(settings: Settings, key: str) -> FileLock:
    locks = ensure_dir(
        open_state_dir(settings.state_dir) / "locks", "lock dir", "make it a real, writable directory", LedgerError
    )
    return FileLock(lock_file(locks, f"{hashlib.sha256(key.encode()).hexdigest()[:16]}.lock", "hook lock"), timeout=300)


def run_hook(settings: Settings, phase: str = "both", *, now: datetime | None = None) -> HookResult:
    """Run the stages of `phase`. Raises typed errors for bad input; degradations are listed."""
    if phase not in PHASES:
        raise UsageError(f"--phase must be one of {', '.join(PHASES)}, not {phase!r}")
    now = now or utcnow()
    result = HookResult(phase=phase)
    service, deploy_sha = _require(settings)
    pkey = pending_key(service, settings.environment, deploy_sha, settings.pipeline_number)

    if phase in ("both", "collect"):
        result.bundle = collect_evidence(settings, now=now)
        if result.bundle.degraded:
            result.degraded.append("evidence incomplete: " + "; ".join(result.bundle.errors or ["see manifest"]))
        if phase == "collect":
            with Ledger(settings.state_dir) as ledger:
                ledger.add_pending_evidence(
                    pkey, result.bundle.files, {"containers": [asdict(s) for s in _states(result.bundle)]}
                )
            return result

    with _lock(settings, pkey), Ledger(settings.state_dir) as ledger:
        incident = _record(settings, ledger, service, deploy_sha, pkey, result, now)
        _draft(settings, ledger, incident, result, now)
        tracker = make_tracker(settings)
        result.ticket = open_ticket(
            ledger,
            tracker,
            ledger.get(incident.id),
            deadline_hours=hours_for(settings, incident.environment),
        )
        if result.ticket.queued:
            result.degraded.append(result.ticket.message)
        if settings.open_pr and result.draft is not None:
            _open_pr(tracker, ledger, ledger.get(incident.id), result)
        result.incident = ledger.get(incident.id)
    return result


def _smoke_steps(
    settings: Settings, warnings: list[str], result: HookResult
) -> tuple[list[SmokeStep], datetime | None]:
    if settings.smoke_report:
        return smoke.parse_reports([Path(p) for p in settings.smoke_report], settings.smoke_format), None
    if settings.woodpecker_token and settings.woodpecker_url and settings.repo and settings.pipeline_number:
        from rollback_pm.facts.woodpecker import WoodpeckerClient

        try:
            client = WoodpeckerClient(settings.woodpecker_url, settings.woodpecker_token)
            steps, deployed_at = client.smoke_steps(
                settings.repo, int(settings.pipeline_number), settings.smoke_step_pattern
            )
            return steps, deployed_at
        except WoodpeckerError as exc:
            result.degraded.append(f"smoke steps not read from Woodpecker: {exc}")
    return [], None


def _image_revision(settings: Settings, result: HookResult) -> str | None:
    """The revision label of what runs now (after the rollback) for the selected service."""
    try:
        if result.bundle is not None:
            return shas.image_revision(result.bundle.inspect_docs, result.bundle.image_docs, settings.service)
        from rollback_pm.evidence import select_containers

        client = docker_client(settings.docker_host)
        docs = [client.inspect_container(c["Id"]) for c in select_containers(client, selection_from(settings))]
        images = {d["Image"]: client.inspect_image(d["Image"]) for d in docs}
        return shas.image_revision(docs, images, settings.service)
    except (RollbackPmError, DockerUnavailable) as exc:
        log.info("image revision not available", reason=str(exc))
        return None
    except Exception as exc:  # docker SDK errors: a missing label source is not fatal
        log.info("image revision not available", reason=str(exc))
        return None


def _record(
    settings: Settings, ledger: Ledger, service: str, deploy_sha: str, pkey: str, result: HookResult, now: datetime
) -> Incident:
    warnings: list[str] = []
    explicit_source = "flag" if settings.source("rollback_sha") == "flag" else "env"
    if settings.rollback_sha:
        resolution = shas.resolve_rollback_sha(explicit=settings.rollback_sha, explicit_source=explicit_source)
    else:
        resolution = shas.resolve_rollback_sha(
            explicit=None,
            image_revision=_image_revision(settings, result),
            last_good=ledger.last_good(service, settings.environment),
            ci_prev=settings.prev_sha,
            deploy_sha=deploy_sha,
        )
    warnings += resolution.warnings
    steps, deployed_at = _smoke_steps(settings, warnings, result)
    pending_files, pending_facts = ledger.take_pending_evidence(pkey)
    states = _states(result.bundle)
    for facts in pending_facts:
        states += [
            ContainerState(**{k: (parse_ts(v) if k in ("started_at", "finished_at") else v) for k, v in c.items()})
            for c in facts.get("containers", [])
        ]
    evidence = pending_files + (result.bundle.files if result.bundle else [])
    failed = [s for s in steps if s.failed and s.ts]
    commits, files, note = ([], [], None)
    if settings.repo_dir:
        commits, files, note = changes.suspect_changes(settings.repo_dir, resolution.sha, deploy_sha)
        if note:
            warnings.append(note)
    environment = settings.environment
    incident = Incident(
        id="",
        service=service,
        environment=environment,
        deploy_sha=deploy_sha,
        rollback_sha=resolution.sha,
        rollback_sha_source=resolution.source,
        pipeline_number=settings.pipeline_number,
        pipeline_url=settings.pipeline_url,
        repo=settings.repo,
        started_at=settings.deployed_at or deployed_at,
        detected_at=min(s.ts for s in failed) if failed else None,
        mitigated_at=settings.mitigated_at or now,
        severity=settings.for_environment(environment).severity or timeline.default_severity(environment),
        detected_by=settings.detected_by or timeline.default_detected_by(steps),
        deploy_ticket=settings.deploy_ticket,
        owner=settings.owner,
        smoke_steps=steps,
        evidence=evidence,
        containers=states,
        commits=commits,
        changed_files=files,
        warnings=warnings,
    )
    stored, result.new_incident = ledger.upsert_incident(incident)
    ledger.drop_pending_evidence(pkey)
    return stored


def _open_pr(tracker: Any, ledger: Ledger, incident: Incident, result: HookResult) -> None:
    """Commit the draft to postmortem/<id> and open a pull request, once per incident."""
    if not hasattr(tracker, "open_pr"):
        result.degraded.append(f"--open-pr needs a gitea or forgejo tracker, not {tracker.name}")
        return
    if ledger.notified(incident.id, "pull-request", "forge"):
        return
    draft = result.draft
    assert draft is not None
    try:
        url = tracker.open_pr(
            branch=f"postmortem/{incident.id}",
            path=f"_docs/06_metrics/{draft.path.name}",
            content=draft.path.read_text(encoding="utf-8"),
            title=f"Postmortem: {incident.service} {incident.environment} rollback",
            body=f"The postmortem draft for incident `{incident.id}`"
            + (f" ({incident.ticket.key})" if incident.ticket else "")
            + ".",
        )
    except TrackerError as exc:
        result.degraded.append(f"pull request not opened: {exc}")
        return
    ledger.record_notification(incident.id, "pull-request", "forge")
    result.pull_request = url


def drafts_dir(settings: Settings) -> Path:
    if settings.drafts_dir:
        return Path(settings.drafts_dir)
    if settings.repo_dir and (Path(settings.repo_dir) / "_docs" / "06_metrics").is_dir():
        return Path(settings.repo_dir) / "_docs" / "06_metrics"
    return Path(settings.state_dir) / "drafts"


def write_incident_draft(
    settings: Settings,
    ledger: Ledger,
    incident: Incident,
    *,
    now: datetime,
    force: bool = False,
    template: str | None = None,
) -> drafts.DraftResult:
    """(Re)render an incident's draft, refusing to clobber human edits unless forced."""
    previous_path, previous_sha, previous_template = ledger.draft_record(incident.id)
    template = template or previous_template or settings.template
    directory = Path(previous_path).parent if previous_path and not settings.drafts_dir else drafts_dir(settings)
    ensure_dir(directory, "drafts dir", "pass a real, writable --drafts-dir", DraftError)
    draft = drafts.write_draft(
        incident,
        drafts_dir=directory,
        template=template,
        previous_sha256=previous_sha,
        previous_path=Path(previous_path) if previous_path else None,
        force=force,
        now=now,
        timeline=timeline.build_timeline(incident),
        deadline_hours=hours_for(settings, incident.environment),
    )
    ledger.set_draft(incident.id, draft.path, draft.sha256, template)
    return draft


def _draft(settings: Settings, ledger: Ledger, incident: Incident, result: HookResult, now: datetime) -> None:
    try:
        result.draft = write_incident_draft(settings, ledger, incident, now=now)
    except DraftEditedError as exc:
        # A human is already writing it: their words win; the facts are in the ledger and ticket.
        result.draft_note = f"draft kept as edited ({exc})"
