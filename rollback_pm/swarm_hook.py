"""The hook for Docker Swarm services: ``hook``/``collect`` with ``--swarm-service`` or ``--stack``,
and what ``rollback-pm watch`` runs for each rollback it sees.

The stages are the container hook's (``rollback_pm.hook``: evidence -> facts -> signals ->
ledger -> draft -> ticket -> repeats, over one ``HookState``) with a Swarm source: the
evidence stage reads every task through the manager (``swarm.evidence``; nothing to freeze,
the logs are not on this host), the facts stage reads the service (``swarm.facts``) besides
the run's settings (``inputs.facts_request``), and the signals stage reads the Swarm bundle
with its tasks as the containers (``swarm_signals``). When Swarm itself rolled a service back (``update_config.failure_action:
rollback`` or ``docker service rollback``), the incident's identity is the rollback's own
(service id + ``UpdateStatus.StartedAt``, see ``swarm.facts``): the watcher at
``rollback_started``, the watcher again at ``rollback_completed`` and a pipeline's
``rollback-pm hook --swarm-service`` for the same rollback all land on one incident and one
ticket. Each rollback's work runs under a file lock keyed by that identity, and the ledger
says what is done, so two watchers sharing a state dir (or a watcher restarted mid-way)
repeat nothing. When no Swarm rollback is in sight (the pipeline rolls back by deploying
the previous version again) the incident is the pipeline's, keyed as for containers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

import docker
from filelock import FileLock

from rollback_pm import drafts, hook, inputs, stored_facts, swarm_signals
from rollback_pm.config import Settings
from rollback_pm.deadline import hours_for
from rollback_pm.errors import DockerUnavailable, IncidentNotFound, UsageError
from rollback_pm.evidence import BundleResult, docker_client
from rollback_pm.facts import changes, shas
from rollback_pm.facts.incident import FactsRequest, Parked, parked_states, smoke_steps
from rollback_pm.ledger import Ledger, incident_id
from rollback_pm.log import get_logger, known_secrets
from rollback_pm.models import ChangedFile, Commit, ContainerState, Incident, SwarmFacts
from rollback_pm.placement import DraftPolicy, draft_policy
from rollback_pm.redact import Redactor
from rollback_pm.swarm import api, facts, snapshot
from rollback_pm.swarm.events import ServiceEvent, parse_event
from rollback_pm.swarm.evidence import collect_services
from rollback_pm.swarm.select import SwarmSelection, resolve_services
from rollback_pm.timeutil import utcnow
from rollback_pm.trackers import Tracker, make_tracker

log = get_logger(__name__)
TERMINAL = ("rollback_completed", "rollback_paused")
LOCK_TIMEOUT = 600.0  # another process collecting the same rollback: its --timeout and then some
DETECTED_BY_SWARM = "Swarm update monitor"


def selection_of(settings: Settings) -> SwarmSelection | None:
    """The Swarm selection the settings ask for, or None for a container selection.

    Swarm services or containers: one kind of selection per run (UsageError for both).
    """
    services = [s for s in settings.swarm_service if s.strip()]
    if not services and not settings.stack:
        return None
    if settings.label or settings.name or settings.compose_project or settings.container:
        raise UsageError(
            "select either Swarm services (--swarm-service, --stack) or containers "
            "(--label, --name, --compose-project, --container), not both in one run"
        )
    return SwarmSelection(services=services, stack=settings.stack or None)


def connect(settings: Settings, timeout: float = 30.0) -> tuple[docker.APIClient, dict[str, Any]]:
    """A client for the manager the settings name (DOCKER_HOST by default), and its Swarm info."""
    client = docker_client(settings.docker_host, timeout=timeout)
    return client, api.require_manager(client, timeout=timeout)


@dataclass
class _Selected:
    """The selected services as the manager shows them now, and the manager."""

    selection: SwarmSelection
    snaps: list[snapshot.ServiceSnapshot]
    client: docker.APIClient
    manager: dict[str, Any]

    def collect(self, settings: Settings, now: datetime) -> BundleResult:
        """One bundle of every selected service."""
        options = inputs.collect_options(settings, now)
        return collect_services(self.selection, self.snaps, options, client=self.client, manager=self.manager, now=now)


def _selected(settings: Settings) -> _Selected:
    selection = selection_of(settings)
    if selection is None:
        raise UsageError("no Swarm service selected: give --swarm-service NAME or --stack NAME")
    client, info = connect(settings)
    timeout = min(30.0, settings.timeout)
    snaps = snapshot.take(client, resolve_services(client, selection, timeout=timeout), timeout=timeout)
    return _Selected(selection, snaps, client, info)


def collect_evidence(settings: Settings, *, now: datetime | None = None) -> BundleResult:
    """`rollback-pm collect --swarm-service/--stack`: the evidence stage alone."""
    return _selected(settings).collect(settings, now or utcnow())


# --- one rollback --------------------------------------------------------------------------


@dataclass
class Rollback:
    """One rollback to record: the service as the manager showed it, and how to name it."""

    snap: snapshot.ServiceSnapshot
    key: str | None  # the Swarm rollback's identity; None: the pipeline's incident
    event: ServiceEvent | None = None
    stale: bool = False  # known from a replayed event only: the service has moved on since
    extra_warnings: list[str] = field(default_factory=list)


def lock(settings: Settings, key: str) -> FileLock:
    """The rollback's lock: the hook's run lock for the same key, waited on longer (LOCK_TIMEOUT)."""
    return hook.run_lock(settings.state_dir, key, timeout=LOCK_TIMEOUT)


def find_incident(ledger: Ledger, key: str) -> Incident | None:
    try:
        return ledger.get(incident_id(key))
    except IncidentNotFound:
        return None


def finalized(incident: Incident | None) -> bool:
    """Whether the ledger already holds this rollback's end (nothing left for a watcher to do)."""
    if incident is None or incident.swarm is None or incident.swarm.update is None:
        return False
    return incident.swarm.update.state in TERMINAL and bool(incident.evidence) and bool(incident.draft_path)


def incident_for_event(ledger: Ledger, event: ServiceEvent) -> Incident | None:
    """An incident that already covers the rollback ``event`` belongs to (a replayed event)."""
    for incident in ledger.list(service=event.name):
        swarm = incident.swarm
        if swarm is None or swarm.service_id != event.service_id or swarm.update is None:
            continue
        update = swarm.update
        if update.rollback_started_at is not None and abs(update.rollback_started_at - event.time) <= facts.EVENT_SLACK:
            return incident
        start = update.started_at
        end = update.completed_at or (
            update.rollback_started_at + timedelta(hours=1) if update.rollback_started_at else None
        )
        if start is not None and end is not None and start - facts.EVENT_SLACK <= event.time <= end + facts.EVENT_SLACK:
            return incident
    return None


def _parked_swarm(parked: Parked) -> SwarmFacts | None:
    """The Swarm facts parked with evidence at rollback_started, merged."""
    earlier: SwarmFacts | None = None
    for entry in parked.facts:
        earlier = facts.merged(earlier, stored_facts.swarm_facts(entry))
    return earlier


@dataclass(frozen=True)
class _Finalizing:
    """What the finalize stages take, checked before the ledger is opened (as the hook does)."""

    request: FactsRequest
    policy: DraftPolicy
    tracker: Tracker
    hours: float


def _finalizing(settings: Settings, env: str, service: str, deploy_sha: str | None) -> _Finalizing:
    """The run's settings for ``env`` translated once: a bad template, tracker or smoke setting
    stops the run (exit 2) before it leaves a trace in the ledger."""
    settings = settings.for_environment(env)
    who = inputs.Identity(service, env, deploy_sha or "", settings.pipeline_number)
    request = inputs.facts_request(settings, who)
    policy = draft_policy(settings)
    drafts.resolve_template(policy.template)
    return _Finalizing(request, policy, make_tracker(settings), hours_for(settings, env))


@dataclass
class _Found:
    """What the Swarm source says about one rollback, before the ledger is read."""

    rollback: Rollback
    key: str
    pipeline_key: str | None
    current: SwarmFacts
    warnings: list[str]
    states: list[ContainerState]
    env: str


def handle(
    settings: Settings,
    client: docker.APIClient,
    manager: dict[str, Any],
    rollback: Rollback,
    phase: str,
    *,
    now: datetime | None = None,
    bundle: BundleResult | None = None,
    skip_done: bool = False,
) -> hook.HookState | None:
    """Collect (and park) and/or finalize one rollback; None when ``skip_done`` found it done.

    ``phase``: collect (before Swarm replaces the failed tasks: at ``rollback_started``),
    finalize (after: the incident, draft and ticket; evidence is collected now too if none
    was parked) or both. ``bundle``: evidence already collected for this run.
    """
    if phase not in hook.PHASES:
        raise UsageError(f"--phase must be one of {', '.join(hook.PHASES)}, not {phase!r}")
    now = now or utcnow()
    snap = rollback.snap
    before = phase == "collect"
    given_sha = _valid(settings.deploy_sha)
    if rollback.key and rollback.event is None and not rollback.stale:
        rollback.event = rollback_event(client, snap, now)
    current, warnings = facts.service_facts(
        snap, rollback.event, deploy_sha=given_sha, before_rollback=before, stale=rollback.stale
    )
    warnings = rollback.extra_warnings + warnings
    env = facts.environment(snap, settings.environment)
    service = snap.name if rollback.key else (settings.service or snap.name)
    pipeline_key = _pipeline_pending_key(settings, snap, env, current)
    key = rollback.key or pipeline_key
    if key is None:
        raise UsageError(
            f"service {snap.name} is not in a Swarm rollback, so this is the pipeline's rollback: "
            "give --deploy-sha (Woodpecker sets CI_COMMIT_SHA) or label the image with "
            "org.opencontainers.image.revision"
        )
    state = hook.HookState(phase=phase)
    with lock(settings, key):
        with Ledger(settings.state_dir) as ledger:
            existing = find_incident(ledger, key) if rollback.key else None
            parked_files, _ = ledger.take_pending_evidence(key)
            if skip_done and (finalized(existing) or (before and (parked_files or (existing and existing.evidence)))):
                return None
            have_evidence = bool(parked_files or (existing and existing.evidence))
        if bundle is None and (phase in ("collect", "both") or not have_evidence):
            options = inputs.collect_options(settings, now)
            selection = SwarmSelection(services=[snap.id])
            bundle = collect_services(selection, [snap], options, client=client, manager=manager, now=now)
        state.bundle = bundle
        _mask(current)  # after the collection: its documents' secrets are known by now
        if bundle is not None:
            state.degraded += hook.evidence_problems(bundle)
        states = facts.task_states(snap)
        if before:
            assert bundle is not None
            with Ledger(settings.state_dir) as ledger:  # the park stage, with the Swarm facts seen now
                ledger.add_pending_evidence(
                    key, bundle.files, {"swarm": asdict(current), "containers": [asdict(s) for s in states]}
                )
            return state
        # Evidence first (it is what disappears), then every finalize input checked before the ledger stage.
        finalizing = _finalizing(settings, env, service, given_sha)
        found = _Found(rollback, key, pipeline_key, current, warnings, states, env)
        with Ledger(settings.state_dir) as ledger:
            _finalize(ledger, finalizing, found, state, now)
    return state


def _mask(swarm: SwarmFacts) -> None:
    """Swarm's messages and the tasks' errors are free text from outside: the redaction rules
    and every secret known so far apply before they reach the ledger, a draft or a ticket."""
    redactor = Redactor(set(known_secrets()))
    swarm.failures.errors = [redactor.text(e) for e in swarm.failures.errors]
    if swarm.update is not None:
        swarm.update.message = redactor.text(swarm.update.message)


def rollback_event(client: docker.APIClient, snap: snapshot.ServiceSnapshot, now: datetime) -> ServiceEvent | None:
    """The ``rollback_started`` event of the service's current rollback, if the engine still holds it.

    It says when the rollback began and, after Swarm's own rollback, which image was the bad
    one. Best effort: the engine keeps only its last events.
    """
    update = facts.update_status(snap.service)
    if update is None or update.started_at is None:
        return None
    try:
        found = api.service_events(
            client, since=update.started_at - facts.EVENT_SLACK, until=now, service_id=snap.id, timeout=10.0
        )
    except (DockerUnavailable, api.SwarmApiError) as exc:
        log.info("swarm.rollback_event_unavailable", service=snap.name, reason=str(exc))
        return None
    events = [e for e in (parse_event(raw) for raw in found) if e is not None and e.service_id == snap.id]
    started = [e for e in events if e.state == "rollback_started" and facts.belongs_to_current(snap.service, e)]
    return started[-1] if started else None


def _valid(sha: str | None) -> str | None:
    return shas.validate_sha(sha, "deploy SHA") if sha else None


def _pipeline_pending_key(
    settings: Settings, snap: snapshot.ServiceSnapshot, env: str, current: SwarmFacts
) -> str | None:
    """Where a pipeline's `hook --phase collect` parked this service's evidence, if it could have."""
    deploy = _valid(settings.deploy_sha) or facts.revision_sha(current.deploy)
    if not deploy:
        return None
    return inputs.Identity(settings.service or snap.name, env, deploy, settings.pipeline_number).pending_key


def _finalize(ledger: Ledger, finalizing: _Finalizing, found: _Found, state: hook.HookState, now: datetime) -> None:
    """The facts, ledger, draft and ticket stages for one rollback (under its lock)."""
    rollback, key = found.rollback, found.key
    keys = [key] + ([found.pipeline_key] if found.pipeline_key and found.pipeline_key != key else [])
    parked = Parked()
    for pkey in keys:
        files, entries = ledger.take_pending_evidence(pkey)
        parked.files += files
        parked.facts += entries
    existing = find_incident(ledger, key) if rollback.key else None
    swarm = facts.merged(existing.swarm if existing else None, _parked_swarm(parked), found.current)
    assert swarm is not None
    states = found.states
    if parked.facts and not any(s.status in ("failed", "rejected") for s in states):
        states = (
            parked_states(parked) or states
        )  # the history was trimmed since rollback_started: the earlier view says more
    last_good = ledger.last_good(rollback.snap.name, found.env)
    incident = _incident(finalizing.request, rollback, swarm, found.warnings, states, last_good, state, now)
    incident.evidence = parked.files + (state.bundle.files if state.bundle else [])
    # The signals stage, as the container hook's: the logs this run brings, read from the bundle.
    reports, problems, state.baseline_note = swarm_signals.signals_stage(
        hook.new_logs(state.bundle, parked), swarm, bad_since=hook.bad_since(incident)
    )
    state.degraded += problems
    if rollback.key:
        incident.id = incident_id(key)
        state.incident, state.new_incident = ledger.upsert_incident(incident, idem_key=key)
    else:
        state.incident, state.new_incident = ledger.upsert_incident(incident)
    for pkey in keys:
        ledger.drop_pending_evidence(pkey)
    stored = state.incident
    state.signals = hook.store_signals_stage(ledger, stored, reports)
    state.draft, state.draft_note, state.draft_problem = hook.draft_stage(
        ledger, finalizing.policy, stored, finalizing.hours, now
    )
    if state.draft_problem:
        state.degraded.append(f"draft not written: {state.draft_problem}")
    state.ticket = hook.ticket_stage(
        ledger, finalizing.tracker, stored, finalizing.hours, draft_problem=state.draft_problem
    )
    if state.ticket.queued:
        state.degraded.append(state.ticket.message)
    state.repeats, problems = hook.repeats_stage(ledger, finalizing.tracker, ledger.get(stored.id))
    state.degraded += problems
    state.incident = ledger.get(stored.id)
    log.info(
        "swarm.rollback_recorded",
        incident=stored.id,
        service=rollback.snap.name,
        new=state.new_incident,
        state=swarm.update.state if swarm.update else None,
    )


def _incident(
    request: FactsRequest,
    rollback: Rollback,
    swarm: SwarmFacts,
    warnings: list[str],
    states: list[ContainerState],
    last_good: str | None,
    state: hook.HookState,
    now: datetime,
) -> Incident:
    """The Swarm facts stage: the deploy SHA from the bad image's revision label (a given one is
    checked against it), detection from the first failed task, mitigation from UpdateStatus."""
    snap = rollback.snap
    warnings = list(warnings)
    deploy_sha = facts.revision_sha(swarm.deploy)
    given = request.deploy_sha or None
    if given and deploy_sha and given != deploy_sha:
        warnings.append(
            f"the deploy SHA given ({given[:7]}) differs from the bad image's revision label ({deploy_sha[:7]}); "
            "the label is what Swarm ran"
        )
    deploy_sha = deploy_sha or given
    if not deploy_sha:
        warnings.append(
            f"deploy SHA unknown: the bad version ({swarm.deploy.image if swarm.deploy else 'unknown image'}) "
            "has no org.opencontainers.image.revision label; label images at build time or pass --deploy-sha"
        )
    if request.rollback_sha:
        resolution = shas.resolve_rollback_sha(
            explicit=request.rollback_sha, explicit_source=request.rollback_sha_source, deploy_sha=deploy_sha
        )
    else:
        resolution = shas.resolve_rollback_sha(
            explicit=None,
            image_revision=facts.revision_sha(swarm.rollback),
            last_good=last_good,
            ci_prev=request.prev_sha,
            deploy_sha=deploy_sha,
        )
    warnings += resolution.warnings
    steps, deployed_at = smoke_steps(request, state.degraded)
    failed_steps = [s.ts for s in steps if s.failed and s.ts]
    detected = [t for t in [swarm.failures.first_at, *failed_steps] if t is not None]
    update = swarm.update
    mitigated = request.mitigated_at
    if mitigated is None and update is not None and update.state == "rollback_completed":
        mitigated = update.completed_at
    if mitigated is None and update is not None and update.state == "rollback_paused":
        warnings.append(f"Swarm paused the rollback ({update.message}): the service may still run the bad version")
    if mitigated is None and rollback.key is None:
        mitigated = now  # the pipeline's rollback: done when its hook finalizes, as for containers
    if failed_steps:
        detected_by = "smoke test"
    elif swarm.trigger == "automatic":
        detected_by = DETECTED_BY_SWARM
    else:
        detected_by = "operator"
    commits: list[Commit] = []
    files: list[ChangedFile] = []
    if request.repo_dir and deploy_sha:
        commits, files, note = changes.suspect_changes(request.repo_dir, resolution.sha, deploy_sha)
        if note:
            warnings.append(note)
    _mask(swarm)
    return Incident(
        id="",
        service=request.service,
        environment=request.environment,
        deploy_sha=deploy_sha or "",
        rollback_sha=resolution.sha,
        rollback_sha_source=resolution.source,
        pipeline_number=request.pipeline_number,
        pipeline_url=request.pipeline_url,
        repo=request.repo,
        started_at=request.deployed_at or deployed_at or facts.bad_version_live_at(snap, swarm),
        detected_at=min(detected) if detected else None,
        mitigated_at=mitigated,
        severity=request.severity,
        detected_by=request.detected_by or detected_by,
        deploy_ticket=request.deploy_ticket,
        owner=request.owner,
        smoke_steps=steps,
        events=facts.timeline_events(swarm),
        containers=states,
        commits=commits,
        changed_files=files,
        warnings=warnings,
        swarm=swarm,
    )


# --- the hook command ----------------------------------------------------------------------


def run_swarm_hook(settings: Settings, phase: str = "both", *, now: datetime | None = None) -> list[hook.HookState]:
    """`rollback-pm hook --swarm-service/--stack`: one result per incident.

    Every selected service that Swarm rolled back is its own incident (the watcher sees them
    one by one, and both must agree); when none was, the pipeline rolled back and the
    incident is the pipeline's, for --service (or the one selected service).
    """
    if phase not in hook.PHASES:
        raise UsageError(f"--phase must be one of {', '.join(hook.PHASES)}, not {phase!r}")
    now = now or utcnow()
    selected = _selected(settings)
    snaps, client, info = selected.snaps, selected.client, selected.manager
    bundle = selected.collect(settings, now) if phase in ("collect", "both") else None
    rolled = [s for s in snaps if facts.rollback_key(s.service)]
    if rolled:
        return [
            _checked(
                handle(
                    settings, client, info, Rollback(s, facts.rollback_key(s.service)), phase, now=now, bundle=bundle
                )
            )
            for s in rolled
        ]
    return [_checked(handle(settings, client, info, _primary(settings, snaps), phase, now=now, bundle=bundle))]


def _checked(result: hook.HookState | None) -> hook.HookState:
    assert result is not None  # only skip_done returns None
    return result


def _primary(settings: Settings, snaps: list[snapshot.ServiceSnapshot]) -> Rollback:
    """The pipeline's incident (no Swarm rollback): for --service, with the Swarm facts of the
    selected service of that name, else the only one, else the one updated last (what the
    pipeline's deploy changed most recently)."""
    wanted = settings.service
    for snap in snaps:
        if wanted and (snap.name == wanted or (snap.stack and snap.name == f"{snap.stack}_{wanted}")):
            return Rollback(snap, None)
    if len(snaps) == 1:
        return Rollback(snaps[0], None)
    if not wanted:
        names = ", ".join(s.name for s in snaps)
        raise UsageError(
            f"no selected service was rolled back by Swarm, so this is the pipeline's rollback, and its "
            f"service is not clear among {names}: give --service NAME (Woodpecker sets CI_REPO_NAME)"
        )

    def updated(snap: snapshot.ServiceSnapshot) -> str:
        return str((snap.service.get("UpdateStatus") or {}).get("StartedAt") or snap.service.get("UpdatedAt") or "")

    chosen = max(snaps, key=updated)
    return Rollback(
        chosen,
        None,
        extra_warnings=[
            f"the Swarm facts are those of {chosen.name}, the stack's service updated last "
            f"(no service is named {wanted}); the evidence holds every selected service"
        ],
    )
