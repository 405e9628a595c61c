"""Which signals are strongest, and which one line is the suspected cause.

A signal's score adds up what makes it likely to say why the version failed:

=========================================  ======
a stack trace                               +60
a fatal line (FATAL, PANIC, [emerg])        +50
a critical line (CRITICAL, [crit], alert)   +40
an error line                               +30
new: absent from the replacing version      +20
seen in the replacing version too (noise)   -25
the container's first signal after start    +10
among its last lines before exit / kill     +10
logged before the bad version started       -40
=========================================  ======

Ties go to the earlier signal. The suspected cause is chosen by these rules, in order,
and the rule that chose it is its rationale:

1. Among failing containers (crashed, OOM-killed, restarting, unhealthy; every container
   when no state is known), each container's representative is its first new stack
   trace (the trace's cause line: Python's last line, Java's root ``Caused by:``, Go's
   ``panic:``), else its first new fatal/critical line, else its first new error line.
   Of those, the earliest wins: when the database's ``FATAL:`` comes before the API's
   connection-refused trace, the database failed first and explains the rest.
2. Else an OOM-killed container's last line before the kill.
3. Else the same as 1 for signals the replacing version logs too (flagged as such).
4. Else a crashed container's last line before it exited.

"New" means "not known to be old": without a baseline every signal counts as new.
"""

from __future__ import annotations

from rollback_pm.signals.levels import CRITICAL, FATAL, RANK
from rollback_pm.signals.model import ContainerSignals, LineRef, Signal, SuspectedCause

TRACE, FATAL_LINE, CRITICAL_LINE, ERROR_LINE = 60, 50, 40, 30
NEW, NOISE, FIRST, NEAR_EXIT, BEFORE_START = 20, -25, 10, 10, -40
_CAUSE_LINE = {
    "python": "its last line names the exception",
    "java": "its last 'Caused by:' is the root exception",
    "go": "its 'panic:' line says what failed",
    "node": "its first line is the error thrown",
    "ruby": "its first line is the exception raised",
}


def score(signal: Signal, first: Signal | None) -> None:
    """Set the signal's score and the reasons behind it."""
    reasons: list[str] = []
    if signal.kind == "trace":
        total = TRACE
        reasons.append(f"{signal.language} stack trace")
    else:
        total = {FATAL: FATAL_LINE, CRITICAL: CRITICAL_LINE}.get(signal.level, ERROR_LINE)
        reasons.append(f"{signal.level} line ({signal.format})")
    if signal.new is True:
        total += NEW
        reasons.append("new: not in the replacing version's logs")
    elif signal.new is False:
        total += NOISE
        reasons.append("also logged by the replacing version")
    if first is not None and signal.key == first.key:
        total += FIRST
        reasons.append("first signal after the bad version started")
    if signal.near_exit:
        total += NEAR_EXIT
        reasons.append("among the last lines before exit")
    if not signal.after_start:
        total += BEFORE_START
        reasons.append("logged before the bad version started")
    if signal.count > 1:
        reasons.append(f"logged {signal.count} times")
    signal.score = float(total)
    signal.reasons = reasons


def rank(signals: list[Signal]) -> list[Signal]:
    return sorted(signals, key=lambda s: (-s.score, s.first_ts, s.ref.first))


def _tier(signal: Signal) -> tuple[int, int]:
    """Traces first, then fatal/critical lines, then error lines; within each, the worse level."""
    kind = 0 if signal.kind == "trace" else 1 if signal.level in (FATAL, CRITICAL) else 2
    return kind, -RANK[signal.level]


def _representative(container: ContainerSignals, new: bool) -> Signal | None:
    pool = [s for s in container.signals if s.after_start and (s.new is not False) == new]
    return min(pool, key=lambda s: (_tier(s), s.first_ts, s.ref.first), default=None)


def _describe(signal: Signal) -> tuple[str, str]:
    """What the signal is, and why its quoted line is the one to read."""
    if signal.kind == "trace":
        return f"{signal.language} stack trace", _CAUSE_LINE.get(signal.language or "", "its cause line is quoted")
    return f"{signal.level.upper()} line ({signal.format})", ""


def _state(container: ContainerSignals) -> str:
    return f" ({container.context.describe()})" if container.context else ""


def suspected_cause(containers: list[ContainerSignals]) -> SuspectedCause | None:
    failing = [c for c in containers if c.failing] or containers
    for new in (True, False):
        candidates = [(rep, c) for c in failing if (rep := _representative(c, new)) is not None]
        if candidates:
            signal, container = min(candidates, key=lambda pair: (pair[0].first_ts, _tier(pair[0])))
            first = "first new" if new and signal.new else "first"
            what, why = _describe(signal)
            rationale = (
                f"the {first} {what} logged by {container.name}{_state(container)} after the bad version started"
            )
            if not new:
                rationale += ", though the replacing version logs it too"
            if why:
                rationale += f"; {why}"
            others = sorted({c.name for _, c in candidates} - {container.name})
            if others:
                rationale += f"; it came before the signals of {', '.join(others)}"
            return SuspectedCause(container.name, signal.text, signal.ref, rationale, signal)
        if new:
            oom = [c for c in failing if c.context and c.context.oom_killed]
            for container in oom:
                cause = _last_words(container, "the last line it logged before the kill")
                if cause is not None:
                    return cause
    for container in failing:
        if container.context and container.context.exit_code not in (None, 0):
            cause = _last_words(container, "it logged no error; this is its last line")
            if cause is not None:
                return cause
    return None


def _last_words(container: ContainerSignals, why: str) -> SuspectedCause | None:
    tail, context = container.tail, container.context
    if tail is None or tail.ref is None or not tail.lines or context is None:
        return None
    last = tail.lines[-1]
    rationale = f"{container.name} ended {context.describe()}: {why}"
    return SuspectedCause(
        container.name, last.text, LineRef(tail.ref.path, last.last_line, last.last_line), rationale, None
    )
