"""The real impact window: from the bad version going live to the rollback.

Users were hurt from the moment the bad version went live, not from the moment a smoke
test noticed. That moment is, best first:

1. ``given``: the deploy time handed to the hook (``--deployed-at``);
2. ``woodpecker``: when the pipeline's deploy step finished (Woodpecker's API);
3. ``containers``: the earliest creation (a crash loop's first start; else its start)
   of the bad version's containers in the evidence. Those are the containers whose image
   carries the deploy SHA as its revision label; without such labels, the failing ones
   (crashed, OOM-killed, restarting, unhealthy). A container created more than
   ``MAX_LEAD`` before the detection is not taken: it was running before this deploy.

Else the window starts at the detection, and the draft says that it is a lower bound.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from rollback_pm.facts.containers import crash_looping
from rollback_pm.models import ContainerState, Incident
from rollback_pm.timeutil import as_utc, iso

GIVEN, WOODPECKER, CONTAINERS = "given", "woodpecker", "containers"
MAX_LEAD = timedelta(hours=24)


@dataclass(frozen=True)
class Start:
    at: datetime
    source: str  # given | woodpecker | containers
    containers: tuple[str, ...] = ()  # for ``containers``: the ones it was taken from, earliest first


def _revision_matches(state: ContainerState, deploy_sha: str) -> bool:
    revision = (state.image_revision or "").strip().lower()
    return len(revision) >= 7 and (deploy_sha.lower().startswith(revision) or revision.startswith(deploy_sha.lower()))


def _failing(state: ContainerState) -> bool:
    return (
        crash_looping(state)
        or state.oom_killed
        or state.restart_count > 0
        or state.exit_code not in (None, 0)
        or state.status == "dead"
        or state.health_status == "unhealthy"
    )


def bad_version_containers(states: list[ContainerState], deploy_sha: str) -> list[ContainerState]:
    """The containers that ran the bad version: by revision label, else the failing ones."""
    labelled = [s for s in states if _revision_matches(s, deploy_sha)]
    if labelled:
        return labelled
    others = {s.name for s in states if s.image_revision and not _revision_matches(s, deploy_sha)}
    return [s for s in states if _failing(s) and s.name not in others]


def containers_start(states: list[ContainerState], deploy_sha: str, detected_at: datetime | None) -> Start | None:
    """The earliest Created (else StartedAt) of the bad version's containers, within MAX_LEAD of detection."""
    found: list[tuple[datetime, str]] = []
    for state in bad_version_containers(states, deploy_sha):
        when = state.created_at or state.started_at
        if when is None:
            continue
        when = as_utc(when)
        if detected_at is not None and not (as_utc(detected_at) - MAX_LEAD <= when <= as_utc(detected_at)):
            continue
        found.append((when, state.name))
    if not found:
        return None
    found.sort()
    return Start(found[0][0], CONTAINERS, tuple(dict.fromkeys(name for _, name in found)))


def bad_version_start(
    *,
    given: datetime | None,
    woodpecker: datetime | None,
    states: list[ContainerState],
    deploy_sha: str,
    detected_at: datetime | None,
) -> Start | None:
    """When the bad version went live, and where that came from (best source first)."""
    if given is not None:
        return Start(given, GIVEN)
    if woodpecker is not None:
        return Start(woodpecker, WOODPECKER)
    return containers_start(states, deploy_sha, detected_at)


def describe_start(incident: Incident) -> str | None:
    """Where the impact window's start was taken from, in words, for the draft (None: no window)."""
    source = incident.started_at_source
    if incident.started_at is None:
        if incident.detected_at is not None:
            return (
                "the detection, since when the bad version went live is unknown (give --deployed-at): "
                "the real window was longer"
            )
        return None
    if source == GIVEN:
        return "the deploy time given to the hook (--deployed-at)"
    if source == WOODPECKER:
        return "the Woodpecker pipeline's deploy step"
    if source == CONTAINERS:
        start = containers_start(incident.containers, incident.deploy_sha, incident.detected_at)
        which = ""
        if start is not None and start.containers:
            first = next(s for s in incident.containers if s.name == start.containers[0])
            which = f" ({first.name}, {'created' if first.created_at else 'started'} {iso(start.at)})"
        return f"the earliest start of the bad version's containers{which}, as no deploy time was given"
    return None  # recorded before its source was: the time stands on its own


_START_FROM = {GIVEN: "--deployed-at", WOODPECKER: "the Woodpecker deploy step"}


def contradictions(start: Start | None, detected_at: datetime | None, mitigated_at: datetime) -> list[str]:
    """Times that cannot all be right: warned about, not refused (a wrong clock somewhere
    must not cost the postmortem), each naming where the time came from."""
    found: list[str] = []
    if start is not None and start.source != CONTAINERS:  # that one is chosen to fit the detection
        source = _START_FROM.get(start.source, start.source)
        if as_utc(mitigated_at) < as_utc(start.at):
            found.append(
                f"the mitigation ({iso(mitigated_at)}) is before the deploy ({iso(start.at)}, from {source}); "
                "check --mitigated-at and --deployed-at"
            )
        if detected_at is not None and as_utc(detected_at) < as_utc(start.at):
            found.append(
                f"the first failed smoke step ({iso(detected_at)}) is before the deploy ({iso(start.at)}, "
                f"from {source}); check the smoke report's times and --deployed-at"
            )
    if detected_at is not None and as_utc(detected_at) > as_utc(mitigated_at):
        found.append(
            f"the first failed smoke step ({iso(detected_at)}) is after the mitigation ({iso(mitigated_at)}); "
            "check the smoke report's times and --mitigated-at"
        )
    return found
