"""The incident's timeline, duration and default severity / detected-by.

Every timeline entry says where it came from (pipeline, smoke report, container state,
evidence collection), so the postmortem can be checked without re-asking the operator.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path

from rollback_pm.errors import ConfigError
from rollback_pm.facts.containers import notable_events
from rollback_pm.facts.impact import CONTAINERS, WOODPECKER
from rollback_pm.models import Incident, LogNote, SmokeStep, TimelineEvent
from rollback_pm.timeutil import STAMP_FORMAT, as_utc

SEVERITIES = ("Critical", "High", "Medium", "Low")
DEFAULT_SEVERITY_RULES = {"production": "High", "prod": "High", "staging": "Medium", "stage": "Medium"}
FALLBACK_SEVERITY = "Medium"
EVIDENCE_SOURCE = "evidence collection"


def build_timeline(incident: Incident, notes: Iterable[LogNote] = ()) -> list[TimelineEvent]:
    """All events with a time, sorted by time; ties keep the order of the story.

    ``notes``: what the containers logged (the signals stage), added to their events.
    """
    events: list[TimelineEvent] = []

    def add(ts: datetime | None, text: str, source: str) -> None:
        if ts is not None:
            events.append(TimelineEvent(ts=as_utc(ts), text=text, source=source))

    # A rollback Swarm made by itself (or was asked to) is its story, not a pipeline's.
    by = "Docker Swarm" if incident.swarm is not None and incident.swarm.trigger != "pipeline" else "pipeline"
    add(incident.started_at, *_went_live(incident, by))
    for step in incident.smoke_steps:
        add(step.ts or step.started_at, _step_text(step), step_source(step))
    add(incident.detected_at, *_detection(incident))
    events.extend(notable_events(incident.containers, notes))
    recorded = {(as_utc(e.ts), e.source) for e in incident.events}
    for bundle, names in _bundles(incident).items():
        when = bundle_time(bundle)
        if when is not None and (when, EVIDENCE_SOURCE) not in recorded:  # the hook may have recorded it already
            add(when, f"evidence collected: {', '.join(names)}", EVIDENCE_SOURCE)
    rolled_back = f"rolled back to {_short(incident.rollback_sha)}" if incident.rollback_sha else "rollback finished"
    add(incident.mitigated_at, f"mitigated: {rolled_back}", by)
    for event in incident.events:
        add(event.ts, event.text, event.source)
    return sorted(events, key=lambda e: e.ts)


def _went_live(incident: Incident, by: str) -> tuple[str, str]:
    """The first entry, with where its time came from (facts.impact); ``by`` when given."""
    text = f"deploy {_short(incident.deploy_sha)} of {incident.service} went live in {incident.environment}"
    if incident.started_at_source == CONTAINERS:
        return f"{text} (the earliest start of its containers)", "container state"
    if incident.started_at_source == WOODPECKER:
        return text, "Woodpecker pipeline"
    return text, by


def duration_seconds(incident: Incident) -> float | None:
    """Mitigation minus start (deploy went live, else detection); None when unknown or negative.

    A negative span means the inputs disagree (a wrong --deployed-at, a skewed clock):
    better a placeholder the reader fills than a silent 00:00.
    """
    start = incident.started_at or incident.detected_at
    if start is None or incident.mitigated_at is None:
        return None
    seconds = (as_utc(incident.mitigated_at) - as_utc(start)).total_seconds()
    return seconds if seconds >= 0 else None


def default_severity(environment: str, rules: dict[str, str] | None = None) -> str:
    """production -> High, staging -> Medium, anything else Medium; ``rules`` (env -> severity,
    "*" for every other env) override, matched case-insensitively."""
    env = (environment or "").strip().lower()
    merged = {**DEFAULT_SEVERITY_RULES, **{k.strip().lower(): v for k, v in (rules or {}).items()}}
    value = merged.get(env, merged.get("*", FALLBACK_SEVERITY))
    for severity in SEVERITIES:
        if str(value).strip().lower() == severity.lower():
            return severity
    raise ConfigError(f"severity rule for {environment!r} is {value!r}; use one of {', '.join(SEVERITIES)}")


def default_detected_by(incident_or_steps: Incident | Iterable[SmokeStep]) -> str:
    """ "smoke test" when any smoke step failed, else "operator"."""
    steps = incident_or_steps.smoke_steps if isinstance(incident_or_steps, Incident) else incident_or_steps
    return "smoke test" if any(step.failed for step in steps) else "operator"


def step_source(step: SmokeStep) -> str:
    if step.source == "woodpecker":
        return "Woodpecker pipeline step"
    return f"smoke report {Path(step.source).name}" if step.source else "smoke report"


def bundle_time(bundle: str) -> datetime | None:
    """The time in a bundle id (20260513T084721Z, maybe with a -N suffix)."""
    try:
        return datetime.strptime(bundle[:16], STAMP_FORMAT).replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def step_label(step: SmokeStep) -> str:
    """'smoke step 3 "api health"' — the form the Detection section uses too."""
    number = f" {step.step}" if step.step is not None else ""
    return f'smoke step{number} "{step.name}"'


def _step_text(step: SmokeStep) -> str:
    text = f"{step_label(step)} {step.status}"
    first = next((line.strip() for line in step.message.splitlines() if line.strip()), "")
    if step.failed and first:
        text += f": {first[:120]}"
    return text


def _detection(incident: Incident) -> tuple[str, str]:
    failed = incident.failed_step
    detected = incident.detected_at
    if failed is not None and (failed.ts is None or detected is None or as_utc(failed.ts) == as_utc(detected)):
        return f"detected by {incident.detected_by}: {step_label(failed)} failed", step_source(failed)
    return f"detected by {incident.detected_by}", incident.detected_by


def _bundles(incident: Incident) -> dict[str, list[str]]:
    bundles: dict[str, list[str]] = {}
    for evidence in incident.evidence:
        bundles.setdefault(evidence.bundle, []).append(Path(evidence.path).name)
    return bundles


def _short(sha: str | None) -> str:
    return sha[:7] if sha else "unknown"
