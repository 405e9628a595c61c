"""What a Swarm service says about a rollback: the versions, Swarm's account, the failed tasks.

Versions come from ``Spec`` against ``PreviousSpec``. After Swarm's own rollback
(``update_config.failure_action: rollback``) ``PreviousSpec`` is empty on Engine 20.10: the
bad version is then in the ``rollback_started`` event (``image.old``) and in the failed
tasks' specs, which is where it is looked for next. A manual ``docker service rollback``
swaps the two specs, so ``PreviousSpec`` holds the bad version.

A rollback is identified by its service's id and ``UpdateStatus.StartedAt``: Swarm keeps
that time from ``rollback_started`` to ``rollback_completed`` (for an automatic rollback it
is the start of the update that failed, for a manual one the time it was asked for), and
every process that looks at the service then, watcher or pipeline, finds the same key.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Any

from rollback_pm.errors import UsageError
from rollback_pm.evidence.lines import normalize_ts
from rollback_pm.facts.shas import REVISION_LABEL, SHA_RE
from rollback_pm.models import ContainerState, SwarmFacts, SwarmFailures, SwarmImage, SwarmUpdate, TimelineEvent
from rollback_pm.swarm.events import ROLLBACK_STATES, ServiceEvent
from rollback_pm.swarm.snapshot import (
    FAILED_STATES,
    ServiceSnapshot,
    spec_image,
    task_image,
    task_slot,
    task_state,
)
from rollback_pm.timeutil import parse_ts

SOURCE = "Docker Swarm"
MANUAL_MESSAGE = "manually requested rollback"
AUTOMATIC_MESSAGE = "update rolled back due to"
GENERIC_MESSAGES = ("rollback completed", "update completed", "update in progress", "")
# An event is at most this much earlier than the StartedAt it belongs to (clock of one manager).
EVENT_SLACK = timedelta(seconds=2)
ENVIRONMENT_LABEL = "rollback-pm.environment"
ERROR_CHARS = 300
_NEVER = datetime.max.replace(tzinfo=timezone.utc)


def _time(value: Any) -> datetime | None:
    try:
        return parse_ts(value) if isinstance(value, str) else None
    except UsageError:  # a garbled time in outside input: unknown, not fatal
        return None


def update_status(service: dict[str, Any]) -> SwarmUpdate | None:
    status = service.get("UpdateStatus")
    if not isinstance(status, dict) or not status.get("State"):
        return None
    return SwarmUpdate(
        state=str(status.get("State")),
        started_at=_time(status.get("StartedAt")),
        completed_at=_time(status.get("CompletedAt")),
        message=str(status.get("Message") or ""),
    )


def rollback_key(service: dict[str, Any]) -> str | None:
    """The rollback's identity while the service is in a rollback state, else None."""
    status = service.get("UpdateStatus") or {}
    started = status.get("StartedAt")
    if status.get("State") not in ROLLBACK_STATES or not isinstance(started, str) or not started:
        return None
    return f"swarm\x1f{service.get('ID', '')}\x1f{normalize_ts(started)}"


def event_key(event: ServiceEvent) -> str:
    """The identity of a rollback known only from its event (the service had moved on)."""
    return f"swarm\x1f{event.service_id}\x1fevent\x1f{event.time_ns}"


def belongs_to_current(service: dict[str, Any], event: ServiceEvent) -> bool:
    """Whether ``event`` is about the rollback the service is in now (not an older one replayed)."""
    update = update_status(service)
    if update is None or update.state not in ROLLBACK_STATES or update.started_at is None:
        return False
    return update.started_at <= event.time + EVENT_SLACK


def trigger(update: SwarmUpdate | None, snap: ServiceSnapshot | None = None, event: ServiceEvent | None = None) -> str:
    """automatic (Swarm's failure_action), manual (``docker service rollback``) or pipeline (no Swarm rollback).

    Swarm says it in its message while the rollback runs ("manually requested rollback",
    "update rolled back due to failure ..."), but replaces both with "rollback completed".
    Then: a rollback that began from a completed update was asked for; Engine 20.10 clears
    PreviousSpec only on its own rollback; and only its own follows failed tasks.
    """
    if update is None or update.state not in ROLLBACK_STATES:
        return "pipeline"
    message = update.message.strip().lower()
    if message == MANUAL_MESSAGE:
        return "manual"
    if message.startswith(AUTOMATIC_MESSAGE):
        return "automatic"
    if event is not None and event.state == "rollback_started" and event.old_state == "completed":
        return "manual"
    if snap is None:
        return "automatic"
    if not snap.service.get("PreviousSpec"):
        return "automatic"
    since = update.started_at
    failed = [t for t in snap.tasks if task_state(t) in FAILED_STATES]
    return "automatic" if any(since is None or (_status_time(t) or since) >= since for t in failed) else "manual"


def _labels(spec: dict[str, Any] | None) -> list[dict[str, Any]]:
    spec = spec or {}
    container = (spec.get("TaskTemplate") or {}).get("ContainerSpec") or spec.get("ContainerSpec") or {}
    return [container.get("Labels") or {}, spec.get("Labels") or {}]


def image_version(ref: str, images: dict[str, dict[str, Any] | None], spec: dict[str, Any] | None = None) -> SwarmImage:
    """The version a spec (or a task's spec) runs: reference, digest, revision label."""
    image = images.get(ref) or {}
    digest = ref.split("@", 1)[1] if "@" in ref else (str(image.get("Id")) if image.get("Id") else None)
    revision = None
    for labels in [(image.get("Config") or {}).get("Labels") or {}, *_labels(spec)]:
        value = labels.get(REVISION_LABEL)
        if isinstance(value, str) and value.strip():
            revision = value.strip()
            break
    return SwarmImage(image=ref, digest=digest, revision=revision)


def revision_sha(version: SwarmImage | None) -> str | None:
    """The revision as a full commit SHA, or None when it is not one."""
    value = (version.revision or "").lower() if version else ""
    return value if SHA_RE.match(value) else None


def _bad_from_tasks(snap: ServiceSnapshot, good: str) -> tuple[str, dict[str, Any] | None] | None:
    """The image (and a task spec) most of the failed tasks ran, other than the good one."""
    failed = [t for t in snap.tasks if task_state(t) in FAILED_STATES and task_image(t) and task_image(t) != good]
    if not failed:
        failed = [t for t in snap.tasks if task_image(t) and task_image(t) != good]
    if not failed:
        return None
    image = Counter(task_image(t) for t in failed).most_common(1)[0][0]
    spec = next(t.get("Spec") for t in failed if task_image(t) == image)
    return image, spec


def versions(
    snap: ServiceSnapshot,
    event: ServiceEvent | None = None,
    *,
    deploy_sha: str | None = None,
    before_rollback: bool = False,
    stale: bool = False,
) -> tuple[SwarmImage | None, SwarmImage | None, list[str]]:
    """(deploy = the bad version, rollback = the good one, warnings).

    ``stale``: the service has moved on since ``event``; only the event names the versions.
    """
    warnings: list[str] = []
    if stale:
        bad = image_version(event.image_old, snap.images) if event and event.image_old else None
        good = image_version(event.image_new, snap.images) if event and event.image_new else None
        return bad, good, warnings
    spec, previous = snap.service.get("Spec"), snap.service.get("PreviousSpec")
    current = image_version(spec_image(spec), snap.images, spec) if spec_image(spec) else None
    former = image_version(spec_image(previous), snap.images, previous) if spec_image(previous) else None
    update = update_status(snap.service)
    if update is not None and update.state in ROLLBACK_STATES:
        good = current
        bad = former if trigger(update, snap, event) == "manual" else None
        if bad is None and event is not None and event.image_old and event.state == "rollback_started":
            bad = image_version(event.image_old, snap.images)
        if bad is None:
            found = _bad_from_tasks(snap, good.image if good else "")
            if found:
                bad = image_version(found[0], snap.images, found[1])
                warnings.append(
                    f"Swarm keeps no PreviousSpec after its own rollback: the bad version {bad.image} "
                    "was read from the failed tasks' specs"
                )
        if bad is None and good is not None:
            warnings.append(
                "the rolled-back update did not change the image (a configuration change?): "
                "deploy and rollback run the same image"
            )
            bad = good
        return bad, good, warnings
    # No Swarm rollback: a pipeline is rolling back (or has) by deploying again.
    if deploy_sha and current and revision_sha(current) == deploy_sha:
        return current, former, warnings
    if deploy_sha and former and revision_sha(former) == deploy_sha:
        return former, current, warnings
    return (current, former, warnings) if before_rollback else (former, current, warnings)


def _failed_tasks(snap: ServiceSnapshot, bad: SwarmImage | None, good: SwarmImage | None) -> list[dict[str, Any]]:
    failed = [t for t in snap.tasks if task_state(t) in FAILED_STATES]
    if bad is not None and (good is None or bad.image != good.image):
        return [t for t in failed if task_image(t) == bad.image]
    update = update_status(snap.service)
    if update is not None and update.started_at is not None:
        return [t for t in failed if (_status_time(t) or update.started_at) >= update.started_at]
    return failed


def _status_time(task: dict[str, Any]) -> datetime | None:
    return _time((task.get("Status") or {}).get("Timestamp"))


def _error(task: dict[str, Any]) -> str:
    status = task.get("Status") or {}
    text = " ".join(str(status.get("Err") or status.get("Message") or "").split())
    return text if len(text) <= ERROR_CHARS else text[: ERROR_CHARS - 1] + "…"


def _exit_code(task: dict[str, Any]) -> int | None:
    code = ((task.get("Status") or {}).get("ContainerStatus") or {}).get("ExitCode")
    return code if isinstance(code, int) and not isinstance(code, bool) else None


def failures(snap: ServiceSnapshot, bad: SwarmImage | None, good: SwarmImage | None) -> SwarmFailures:
    tasks = sorted(_failed_tasks(snap, bad, good), key=lambda t: _status_time(t) or _NEVER)
    if not tasks:
        return SwarmFailures()
    times = [t for t in (_status_time(task) for task in tasks) if t is not None]
    errors = Counter(e for e in (_error(t) for t in tasks) if e)
    return SwarmFailures(
        count=len(tasks),
        first_at=min(times) if times else None,
        last_at=max(times) if times else None,
        nodes=sorted({snap.hostname(str(t.get("NodeID") or "")) for t in tasks}),
        errors=[text for text, _ in errors.most_common()],
        exit_codes=sorted({c for c in (_exit_code(t) for t in tasks) if c is not None}),
        first_task=task_slot(snap, tasks[0]),
    )


def service_facts(
    snap: ServiceSnapshot,
    event: ServiceEvent | None = None,
    *,
    deploy_sha: str | None = None,
    before_rollback: bool = False,
    stale: bool = False,
) -> tuple[SwarmFacts, list[str]]:
    """The typed facts of one service (and the warnings met reading them).

    ``stale``: ``event`` is a rollback the service has moved on from (a replayed event):
    its UpdateStatus is about something later, so the event alone says what happened.
    """
    deploy, rollback, warnings = versions(
        snap, event, deploy_sha=deploy_sha, before_rollback=before_rollback, stale=stale
    )
    update = update_status(snap.service)
    if stale and event is not None:
        update = SwarmUpdate(state=event.state or "rollback_started", rollback_started_at=event.time)
        warnings.append(
            f"{snap.name} had moved on (another update) before this rollback was examined: "
            "its versions come from the rollback_started event, its failures from the task history"
        )
    elif update is not None and event is not None and event.state == "rollback_started":
        update.rollback_started_at = event.time
    elif update is not None and update.state in ROLLBACK_STATES and trigger(update, snap, event) == "manual":
        update.rollback_started_at = update.started_at
    facts = SwarmFacts(
        service=snap.name,
        service_id=snap.id,
        stack=snap.stack,
        trigger="automatic" if stale else trigger(update, snap, event),
        deploy=deploy,
        rollback=rollback,
        update=update,
        failures=failures(snap, deploy, rollback),
        tasks_seen=len(snap.tasks),
    )
    return facts, warnings


def merged(*reads: SwarmFacts | None) -> SwarmFacts | None:
    """``merge`` over several reads, oldest first; None ones are skipped."""
    result: SwarmFacts | None = None
    for read in reads:
        if read is not None:
            result = merge(result, read)
    return result


def merge(earlier: SwarmFacts | None, later: SwarmFacts) -> SwarmFacts:
    """Facts read at ``rollback_completed`` over those read at ``rollback_started``.

    The later read wins, except where it knows less: Swarm replaces its message ("update
    rolled back due to failure ... of task X") by "rollback completed", the rollback's start
    is only known from its event, and the task history may have been trimmed.
    """
    if earlier is None:
        return later
    update = later.update or earlier.update
    if update is not None and earlier.update is not None and update is not earlier.update:
        if update.message.strip().lower() in GENERIC_MESSAGES and earlier.update.message:
            update.message = earlier.update.message
        update.rollback_started_at = update.rollback_started_at or earlier.update.rollback_started_at
    return SwarmFacts(
        service=later.service,
        service_id=later.service_id,
        stack=later.stack or earlier.stack,
        # Read while Swarm's message still said which kind it was, the earlier trigger is the sure one.
        trigger=earlier.trigger if earlier.trigger != "pipeline" and _definite(earlier) else later.trigger,
        deploy=later.deploy or earlier.deploy,
        rollback=later.rollback or earlier.rollback,
        update=update,
        failures=later.failures if later.failures.count >= earlier.failures.count else earlier.failures,
        tasks_seen=max(later.tasks_seen, earlier.tasks_seen),
    )


def _definite(read: SwarmFacts) -> bool:
    message = (read.update.message if read.update else "").strip().lower()
    return message == MANUAL_MESSAGE or message.startswith(AUTOMATIC_MESSAGE)


def bad_version_live_at(snap: ServiceSnapshot, facts: SwarmFacts) -> datetime | None:
    """When the bad version went live: the failed update's start, else its first task's creation."""
    if facts.trigger == "automatic" and facts.update is not None:
        return facts.update.started_at
    if facts.deploy is None or (facts.rollback is not None and facts.deploy.image == facts.rollback.image):
        return None
    created = [_time(t.get("CreatedAt")) for t in snap.tasks if task_image(t) == facts.deploy.image]
    known = [c for c in created if c is not None]
    return min(known) if known else None


def timeline_events(facts: SwarmFacts) -> list[TimelineEvent]:
    """Swarm's side of the story: the failures and the rollback's start (the rest is the incident's)."""
    events: list[TimelineEvent] = []
    fail = facts.failures
    bad = facts.deploy.short if facts.deploy else "the new version"
    if fail.count and fail.first_at:
        error = f": {fail.errors[0]}" if fail.errors else ""
        events.append(TimelineEvent(fail.first_at, f"first failed task of {bad}: {fail.first_task}{error}", SOURCE))
    if fail.count > 1 and fail.last_at and fail.last_at != fail.first_at:
        nodes = ", ".join(fail.nodes)
        events.append(
            TimelineEvent(fail.last_at, f"{fail.count} tasks of {bad} failed in all (nodes: {nodes})", SOURCE)
        )
    update = facts.update
    if update is not None and update.rollback_started_at is not None:
        who = "on request (docker service rollback)" if facts.trigger == "manual" else "by itself"
        message = f": {update.message}" if update.message.lower() not in GENERIC_MESSAGES else ""
        target = f" to {facts.rollback.short}" if facts.rollback else ""
        events.append(
            TimelineEvent(
                update.rollback_started_at, f"Swarm began rolling {facts.service} back{target} {who}{message}", SOURCE
            )
        )
    if update is not None and update.state == "rollback_paused":
        when = update.completed_at or update.rollback_started_at or update.started_at
        if when is not None:
            events.append(
                TimelineEvent(when, f"Swarm paused the rollback of {facts.service}: {update.message}", SOURCE)
            )
    return events


def task_states(snap: ServiceSnapshot, image: str | None = None) -> list[ContainerState]:
    """The tasks as the draft's container table shows them (those of ``image`` when given)."""
    states = []
    for task in snap.tasks:
        if image is not None and task_image(task) != image:
            continue
        state = task_state(task)
        status_time = _status_time(task)
        states.append(
            ContainerState(
                name=f"{task_slot(snap, task)}.{str(task.get('ID') or '')[:12]}@{snap.hostname(str(task.get('NodeID') or ''))}",
                id=str(task.get("ID") or ""),
                image=task_image(task),
                status=state,
                exit_code=_exit_code(task) if state in (*FAILED_STATES, "complete") else None,
                started_at=_time(task.get("CreatedAt")),
                finished_at=status_time if state not in ("running", "starting", "preparing", "assigned") else None,
            )
        )
    return states


def environment(snap: ServiceSnapshot, default: str) -> str:
    """The environment a service belongs to: its ``rollback-pm.environment`` label, else ``default``."""
    for labels in _labels(snap.service.get("Spec")):
        value = labels.get(ENVIRONMENT_LABEL)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return default
