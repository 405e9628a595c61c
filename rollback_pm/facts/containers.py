"""What the collected containers' inspect documents say about how they died.

A container that crash-looped, was OOM-killed or failed its health check is usually
the first lead to the root cause, so these become timeline events and the top lines
of the draft's Detection section. What the container itself logged (a ``LogNote`` from
the signals stage: its last line before the exit, a crash loop's repeated last words)
goes into the same events when it is known.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from rollback_pm.errors import UsageError
from rollback_pm.facts.shas import REVISION_LABEL
from rollback_pm.log import mask
from rollback_pm.models import ContainerState, LogNote, TimelineEvent
from rollback_pm.timeutil import parse_ts

SOURCE = "container state"
CRASH_LOOP_RESTARTS = 3  # this many restarts (or status "restarting") is a crash loop
HEALTH_LOG_KEEP = 5  # Docker keeps the last 5 probes; so do we
HEALTH_OUTPUT_CHARS = 500
PROBE_QUOTE_CHARS = 80  # the probe output quoted in a one-line event
LOG_QUOTE_CHARS = 120  # a logged line quoted in a one-line event
DEFAULT_HEALTH_INTERVAL_S = 30.0  # Docker's, when a health check sets none


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
    check = config.get("Healthcheck") or {}
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
        created_at=_time(inspect_doc.get("Created")),
        memory_limit=_positive_int((inspect_doc.get("HostConfig") or {}).get("Memory")),
        health_failing_streak=_positive_int(health.get("FailingStreak")) or 0,
        health_interval_s=_interval(check) if health else None,
    )


def _positive_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _interval(check: dict[str, Any]) -> float | None:
    """The health check's interval in seconds (Docker's default when unset); None: no check."""
    if (check.get("Test") or [None])[0] == "NONE":
        return None
    nanoseconds = _positive_int(check.get("Interval"))
    return nanoseconds / 1e9 if nanoseconds else DEFAULT_HEALTH_INTERVAL_S


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


def _failing_run(state: ContainerState) -> list[dict[str, Any]]:
    """The kept probes of the current failing streak (the trailing failures), oldest first."""
    run: list[dict[str, Any]] = []
    for probe in reversed(state.health_log):
        if probe.get("ExitCode") in (0, None):
            break
        run.append(probe)
    return run[::-1]


def _probe_text(probe: dict[str, Any]) -> str:
    lines = [line.strip() for line in str(probe.get("Output") or "").splitlines() if line.strip()]
    # A probe that died of an exception: its last line names it, the first only says "Traceback".
    first = lines[-1] if lines and lines[0].startswith("Traceback (most recent call last)") else next(iter(lines), "")
    if len(first) > PROBE_QUOTE_CHARS:
        first = first[: PROBE_QUOTE_CHARS - 1] + "…"
    text = f"probe exit {probe.get('ExitCode')}"
    return f'{text} "{first}"' if first else text


def _restarts(count: int) -> str:
    return f"restarted {count} time{'' if count == 1 else 's'}"


def _quote(line: str) -> str:
    line = " ".join(line.split())
    return f'"{line if len(line) <= LOG_QUOTE_CHARS else line[: LOG_QUOTE_CHARS - 1] + "…"}"'


def mib(value: int) -> str:
    """Bytes as MiB the way Docker's --memory is written: ``32 MiB``, ``1.5 MiB``."""
    amount = value / 2**20
    return f"{amount:.0f} MiB" if amount == int(amount) or amount >= 10 else f"{amount:.1f} MiB"


def _last_words(note: LogNote | None) -> str:
    if note is None or not note.last_line:
        return ""
    cite = f" ({note.last_cite})" if note.last_cite else ""
    return f"; last line logged: {_quote(note.last_line)}{cite}"


def exits(state: ContainerState) -> int:
    """How many times it has exited: each restart followed an exit, and a stopped one exited once more."""
    return state.restart_count + (0 if state.status == "running" else 1)


def first_failing_probe(state: ContainerState) -> tuple[datetime | None, str] | None:
    """When its health probes began failing, and how that is known (None: not failing).

    Docker keeps the last 5 probes; its ``FailingStreak`` counts all the failures in a
    row. When the streak is longer than the failures kept, its start is estimated back
    from the first one kept at the check's interval, and the text says so.
    """
    run = _failing_run(state)
    if not run:
        return None
    first = run[0]
    when = _time(first.get("Start") or first.get("End"))
    streak = max(state.health_failing_streak, len(run))
    how = f"{streak} failing in a row" if streak > 1 else ""
    if streak > len(run) and when is not None and state.health_interval_s:
        when -= timedelta(seconds=(streak - len(run)) * state.health_interval_s)
        how = (
            f"estimated: {streak} failing in a row at a {state.health_interval_s:g}s interval, "
            f"Docker keeps the last {len(state.health_log)}"
        )
    return when, f"{_probe_text(first)} ({how})" if how else _probe_text(first)


def notable_events(states: list[ContainerState], notes: Iterable[LogNote] = ()) -> list[TimelineEvent]:
    """Timeline events: OOM kills (with the memory limit), exits, a crash loop's first and
    last exit, restarts, the first failing health probe.

    Each is placed at the time Docker recorded for it, or (a crash loop's first exit)
    when its last words were first logged; one without any time is left to the summary
    lines (a timeline entry needs a time). ``notes`` add what the containers logged.
    """
    events: list[TimelineEvent] = []
    by_name = {note.container: note for note in notes}

    def add(ts: datetime | None, text: str, source: str = SOURCE) -> None:
        if ts is not None:
            events.append(TimelineEvent(ts=ts, text=text, source=source))

    for state in states:
        note = by_name.get(state.name)
        ended = state.finished_at or state.started_at
        exited = f"exit code {state.exit_code}" if state.exit_code not in (None, 0) else ""
        limit = f"memory limit {mib(state.memory_limit)}" if state.memory_limit else ""
        if crash_looping(state):  # its first and its last exit
            if note is not None and note.crash_first_at is not None and note.crash_line:
                cite = f"; {note.crash_cite}" if note.crash_cite else ""
                times = f"{note.crash_count} time{'' if note.crash_count == 1 else 's'}"
                add(
                    note.crash_first_at,
                    f"{state.name} crash loop began: first exit after {_quote(note.crash_line)} (logged {times}{cite})",
                    "container logs",
                )
            elif state.created_at is not None:
                add(state.created_at, f"{state.name} created: the crash loop's first run")
            count = exits(state)
            facts = [
                f"last of {count} exits ({_restarts(state.restart_count)})" if state.restart_count else "restarting"
            ]
            facts += [f"OOM-killed ({limit})" if limit else "OOM-killed"] if state.oom_killed else []
            facts += [exited] if exited else []
            add(ended, f"{state.name} crash loop: {', '.join(facts)}{_last_words(note)}")
        else:
            if state.oom_killed:
                detail = ", ".join(part for part in (limit, exited) if part)
                add(ended, f"{state.name} OOM-killed" + (f" ({detail})" if detail else "") + _last_words(note))
            elif exited:
                add(ended, f"{state.name} exited with code {state.exit_code}{_last_words(note)}")
            if state.restart_count:
                add(state.started_at or ended, f"{state.name} {_restarts(state.restart_count)}")
        if state.health_status == "unhealthy":
            first = first_failing_probe(state)
            if first is not None and first[0] is not None:
                add(first[0], f"{state.name} first failing health probe: {first[1]}")
            else:
                add(ended, f"{state.name} unhealthy")
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
            facts.append(f"OOM-killed (memory limit {mib(state.memory_limit)})" if state.memory_limit else "OOM-killed")
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
