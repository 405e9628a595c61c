"""What a report says to a reader: the containers worth a section, their excerpts, and
what their logs add to the timeline.

Plain data for the draft (``drafts`` turns it into its template context), the ticket's
short version and the timeline (``facts.containers.notable_events`` takes ``LogNote``s).
"""

from __future__ import annotations

from dataclasses import dataclass

from rollback_pm.facts.containers import CRASH_LOOP_RESTARTS
from rollback_pm.models import LogNote
from rollback_pm.signals.model import ContainerSignals, LineRef, Signal, SignalReport, Tail, TailLine
from rollback_pm.timeutil import parse_ts

EXCERPT_SIGNALS = 3  # signals quoted per container (the first one and the strongest), besides its last lines
STREAM_RACE_S = 0.05  # stdout and stderr lines stamped this close may be in either order (Docker's copiers race)


@dataclass(frozen=True)
class Excerpt:
    """One fenced excerpt of a container's log, with where it is in the evidence."""

    kind: str  # first | signal | tail
    title: str  # what it is, in a few words
    detail: str  # how often, when, new or not
    text: str  # the lines as logged (a long trace's middle left out, said so in the text)
    ref: LineRef  # where: the bundle log and its lines

    @property
    def cite(self) -> str:
        """``rollback-<ts>.log:12-19``"""
        return self.ref.cite()


@dataclass(frozen=True)
class Listed:
    """A container that gets its own "What the logs say" section, and why."""

    container: ContainerSignals
    why: str  # crashed, OOM-killed, restarting, unhealthy, new error templates


def _new_errors(container: ContainerSignals) -> list[Signal]:
    return [s for s in container.signals if s.new is not False and s.after_start]


def listed(report: SignalReport) -> list[Listed]:
    """The containers that failed (crashed, OOM-killed, restarting, unhealthy) or logged
    errors the replacing version does not log (without a baseline: any error after the
    bad version started), failing ones first."""
    chosen: list[Listed] = []
    for container in report.containers:
        if container.failing:
            chosen.append(Listed(container, "failing"))
        elif _new_errors(container):
            what = "new error templates" if report.baseline else "error lines (not compared with the replacing version)"
            chosen.append(Listed(container, what))
    return sorted(chosen, key=lambda item: item.why != "failing")


def state_line(container: ContainerSignals) -> str:
    """Its state in one line, with how many signals it logged."""
    state = container.context.describe() if container.context else "state not recorded"
    if container.context and (
        container.context.restart_count >= CRASH_LOOP_RESTARTS or container.context.status == "restarting"
    ):
        state = f"crash loop: {state}"
    errors = len(container.signals)
    new = sum(1 for s in container.signals if s.new is True)
    counted = f"{errors} distinct error{'' if errors == 1 else 's'} logged" if errors else "no error lines logged"
    if new:
        counted += f", {new} new in the bad version"
    return f"{state}; {counted}"


def _when(ts: str) -> str:
    return ts[11:19] if len(ts) >= 19 else ts  # HH:MM:SS of a bundle timestamp (UTC)


def _signal_title(signal: Signal) -> str:
    if signal.kind == "trace":
        return f"{(signal.language or 'stack').capitalize()} stack trace"
    return f"{signal.level.upper()} line ({signal.format})"


def _signal_detail(signal: Signal) -> str:
    parts = [f"logged {signal.count} times, {_when(signal.first_ts)} to {_when(signal.last_ts)} UTC"]
    if signal.count == 1:
        parts = [f"logged once at {_when(signal.first_ts)} UTC"]
    if signal.new is True:
        parts.append("new: the replacing version does not log it")
    elif signal.new is False:
        parts.append("the replacing version logs it too")
    if not signal.after_start:
        parts.append("logged before the bad version started")
    if signal.near_exit:
        parts.append("among its last lines")
    return "; ".join(parts)


def _tail_title(tail: Tail, container: ContainerSignals) -> str:
    context = container.context
    if context is not None and context.oom_killed:
        return "Last lines before the OOM kill"
    if tail.reason == "end of log":
        return "Last lines logged"
    if tail.reason in ("restarting", "last exit before a restart"):
        return "Last lines before its last exit"
    return "Last lines before it exited"


def excerpts(container: ContainerSignals, signals: int = EXCERPT_SIGNALS) -> list[Excerpt]:
    """Its strongest signals, strongest first (a stack trace kept whole), the first error
    after the bad version started always among them, then its last lines before it exited;
    each quoted once."""
    first = container.first_signal
    # one Signal per template already, strongest first; the first error keeps a place
    missing = first is not None and first.key not in {s.key for s in container.signals[:signals]}
    chosen = container.signals[: signals - 1 if missing else signals]
    if missing and first is not None:
        chosen = [*chosen, first]  # however weak: it says when the trouble began
    out: list[Excerpt] = []
    for candidate in chosen:
        is_first = first is not None and candidate.key == first.key
        signal = first if is_first and first is not None else candidate  # the first: its first occurrence
        title = _signal_title(signal)
        if is_first:
            title = f"First error after the bad version started: {title}"
        out.append(
            Excerpt("first" if is_first else "signal", title, _signal_detail(signal), signal.excerpt_text(), signal.ref)
        )
    tail = container.tail
    if tail is not None and tail.ref is not None and tail.lines:
        # What an excerpt above already quotes is not quoted again: the last lines start after it.
        covered = max(
            (e.ref.last for e in out if e.ref.first <= tail.ref.last and e.ref.last >= tail.ref.first), default=0
        )
        lines = [line for line in tail.lines if line.line > covered]
        if lines:
            folded = any(line.repeat > 1 for line in lines)
            detail = f"{len(lines)} line{'' if len(lines) == 1 else 's'}"
            detail += " after the excerpt above" if covered else ""
            detail += ", repeated lines folded into one with [× N]" if folded else ""
            text = "\n".join(Tail(lines, None, tail.until, tail.reason).excerpt())
            ref = LineRef(tail.ref.path, lines[0].line, lines[-1].last_line or lines[-1].line)
            out.append(Excerpt("tail", _tail_title(tail, container), detail, text, ref))
    return out


def _crash_signal(container: ContainerSignals) -> Signal | None:
    """What a crash loop said before each exit: the signal among its last lines that it logged
    most often (each run ends with it), else its first error."""
    near = [s for s in container.signals if s.near_exit]
    if near:
        return max(near, key=lambda s: (s.count, s.score))
    return container.first_signal


def _last_words(container: ContainerSignals, tail: Tail) -> TailLine:
    """Its last line; but when a process dies right after an error, Docker's stdout and stderr
    copiers can stamp a stdout line after the stderr traceback it printed first: then the
    error's cause line, stamped within STREAM_RACE_S of the end, is the one to quote."""
    last = tail.lines[-1]
    causes = {s.text for s in container.signals if s.near_exit}
    end = parse_ts(last.ts)
    for line in reversed(tail.lines):
        stamped = parse_ts(line.ts)
        if end is None or stamped is None or (end - stamped).total_seconds() > STREAM_RACE_S:
            break
        if line.text in causes:
            return line
    return last


def log_notes(report: SignalReport) -> list[LogNote]:
    """What each container's log adds to its timeline entries."""
    notes: list[LogNote] = []
    for container in report.containers:
        note = LogNote(container.name)
        tail = container.tail
        if tail is not None and tail.ref is not None and tail.lines and tail.reason != "end of log":
            last = _last_words(container, tail)
            note.last_line = last.text
            note.last_at = parse_ts(last.ts)
            note.last_cite = LineRef(tail.ref.path, last.last_line or last.line, last.last_line or last.line).cite()
        context = container.context
        if context is not None and (context.restart_count >= CRASH_LOOP_RESTARTS or context.status == "restarting"):
            signal = _crash_signal(container)
            if signal is not None:
                note.crash_line = signal.text
                note.crash_first_at = parse_ts(signal.first_ts)
                note.crash_count = signal.count
                note.crash_cite = signal.ref.cite()
        if note.last_line or note.crash_line:
            notes.append(note)
    return notes
