"""What the collected containers' inspect documents say about how they died.

A container that crash-looped, was OOM-killed or failed its health check is usually
the first lead to the root cause, so these become timeline events and the top lines
of the draft's Detection section.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rollback_pm.errors import UsageError
from rollback_pm.facts.shas import REVISION_LABEL
from rollback_pm.log import mask
from rollback_pm.models import ContainerState, TimelineEvent
from rollback_pm.timeutil import parse_ts

SOURCE = "container state"
CRASH_LOOP_RESTARTS = 3  # this many restarts (or status "restarting") is a crash loop
HEALTH_LOG_KEEP = 5  # Docker keeps the last 5 probes; so do we
HEALTH_OUTPUT_CHARS = 500
PROBE_QUOTE_CHARS = 80  # the probe output quoted in a one-line event


def container_state(inspect_doc: dict[str, Any], image_doc: dict[str, Any] | None = None) -> ContainerState:
    """The facts of one ``docker inspect`` document (the image's for its revision label)."""
    state = inspect_doc.get("State") or {}
    config = inspect_doc.get("Config") or {}
    status = str(state.get("Status") or "")
    restarting = bool(state.get("Restarting")) or status == "restarting"
    finished = _time(state.get("FinishedAt"))
    # A running container's ExitCode is reset to 0 on start: it says nothing. A restarting
    # one carries the exit code of the run that just ended.
    ever_exited = finished is not None or status in ("exited", "dead")
    exit_code = state.get("ExitCode") if ever_exited and (restarting or not state.get("Running")) else None
    health = state.get("Health") or {}
    revision = None
    for labels in (((image_doc or {}).get("Config") or {}).get("Labels") or {}, config.get("Labels") or {}):
        if labels.get(REVISION_LABEL):
            revision = str(labels[REVISION_LABEL]).strip()
            break
    return ContainerState(
        name=str(inspect_doc.get("Name") or "").lstrip("/") or str(inspect_doc.get("Id", ""))[:12],
        id=str(inspect_doc.get("Id") or ""),
        image=str(config.get("Image") or inspect_doc.get("Image") or ""),
        status="restarting" if restarting else status,
        exit_code=int(exit_code) if isinstance(exit_code, int) else None,
        oom_killed=bool(state.get("OOMKilled")),
        restart_count=int(inspect_doc.get("RestartCount") or 0),
        started_at=_time(state.get("StartedAt")),
        finished_at=finished,
        health_status=health.get("Status") or None,
        health_log=[_probe(entry) for entry in (health.get("Log") or [])[-HEALTH_LOG_KEEP:]],
        image_revision=revision,
    )


def _time(value: Any) -> datetime | None:
    try:
        return parse_ts(value)  # Docker's zero time "0001-01-01T00:00:00Z" is None
    except UsageError:
        return None


def _iso_ms(value: datetime | None) -> str | None:
    """Milliseconds kept: a probe's duration against its timeout is often the clue."""
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z") if value else None


def _probe(entry: dict[str, Any]) -> dict[str, Any]:
    """One health probe, JSON-ready (times as ISO strings), output masked and truncated."""
    output = mask(str(entry.get("Output") or "")).strip()
    if len(output) > HEALTH_OUTPUT_CHARS:
        output = output[: HEALTH_OUTPUT_CHARS - 1] + "…"
    return {
        "Start": _iso_ms(_time(entry.get("Start"))),
        "End": _iso_ms(_time(entry.get("End"))),
        "ExitCode": entry.get("ExitCode"),
        "Output": output,
    }


def crash_looping(state: ContainerState) -> bool:
    return state.status == "restarting" or state.restart_count >= CRASH_LOOP_RESTARTS


def _last_failed_probe(state: ContainerState) -> dict[str, Any] | None:
    failed = [p for p in state.health_log if p.get("ExitCode") not in (0, None)]
    return failed[-1] if failed else None


def _probe_text(probe: dict[str, Any]) -> str:
    first = next((line.strip() for line in str(probe.get("Output") or "").splitlines() if line.strip()), "")
    if len(first) > PROBE_QUOTE_CHARS:
        first = first[: PROBE_QUOTE_CHARS - 1] + "…"
    text = f"probe exit {probe.get('ExitCode')}"
    return f'{text} "{first}"' if first else text


def _restarts(count: int) -> str:
    return f"restarted {count} time{'' if count == 1 else 's'}"


def notable_events(states: list[ContainerState]) -> list[TimelineEvent]:
    """Timeline events: OOM kills, non-zero exits, restarts, failing health checks.

    Each is placed at the time Docker recorded for it; one without any time is left to
    the summary lines (a timeline entry needs a time).
    """
    events: list[TimelineEvent] = []

    def add(ts: datetime | None, text: str) -> None:
        if ts is not None:
            events.append(TimelineEvent(ts=ts, text=text, source=SOURCE))

    for state in states:
        ended = state.finished_at or state.started_at
        exited = f"exit code {state.exit_code}" if state.exit_code not in (None, 0) else ""
        if crash_looping(state):  # one line for the whole loop: it is the lead
            facts = [_restarts(state.restart_count) if state.restart_count else "restarting"]
            facts += ["OOM-killed"] if state.oom_killed else []
            facts += [f"last {exited}"] if exited else []
            add(ended, f"{state.name} crash loop: {', '.join(facts)}")
        else:
            if state.oom_killed:
                add(ended, f"{state.name} OOM-killed" + (f" ({exited})" if exited else ""))
            elif exited:
                add(ended, f"{state.name} exited with code {state.exit_code}")
            if state.restart_count:
                add(state.started_at or ended, f"{state.name} {_restarts(state.restart_count)}")
        if state.health_status == "unhealthy":
            probe = _last_failed_probe(state)
            when = _time(probe.get("End") or probe.get("Start")) if probe else None
            add(when or ended, f"{state.name} unhealthy: {_probe_text(probe)}" if probe else f"{state.name} unhealthy")
    return sorted(events, key=lambda e: e.ts)


def _rank(state: ContainerState) -> int:
    if crash_looping(state):
        return 0
    if state.oom_killed:
        return 1
    if state.health_status == "unhealthy":
        return 2
    if state.exit_code not in (None, 0) or state.status == "dead":
        return 3
    if state.restart_count:
        return 4
    return 5


def summary_lines(states: list[ContainerState]) -> list[str]:
    """One line per notable container, crash loops first and flagged; the rest in one line."""
    lines: list[str] = []
    quiet: list[str] = []
    for state in sorted(states, key=_rank):  # sorted() is stable: ties keep collection order
        rank = _rank(state)
        if rank == 5:
            quiet.append(state.name)
            continue
        facts: list[str] = []
        if rank == 0:
            facts.append("CRASH LOOP (likely root-cause lead)")
        if state.oom_killed:
            facts.append("OOM-killed")
        if state.restart_count:
            facts.append(_restarts(state.restart_count))
        if state.exit_code not in (None, 0):
            facts.append(f"last exit code {state.exit_code}")
        if state.health_status == "unhealthy":
            probe = _last_failed_probe(state)
            facts.append(f"unhealthy: {_probe_text(probe)}" if probe else "unhealthy")
        facts.append(f"status {state.status or 'unknown'}")
        image = f" ({state.image})" if state.image else ""
        lines.append(f"{state.name}{image}: {', '.join(facts)}")
    if quiet:
        lines.append(f"no trouble seen in: {', '.join(quiet)}")
    return lines
