"""The signals stage's result: plain dataclasses that render, and round-trip through JSON.

Times are Docker's log timestamps as written in the bundle (``2026-05-13T08:47:21.123456789Z``:
fixed width, UTC, so they compare as strings). Line numbers are 1-based lines of the
bundle log, so a draft can cite ``rollback-<ts>.log:1234-1251``.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from rollback_pm.evidence.lines import normalize_ts
from rollback_pm.facts.containers import container_state, mib
from rollback_pm.signals.traces import HEAD_KEEP

SIGNATURE_TEMPLATES = 3


@dataclass(frozen=True)
class LineRef:
    """Where in the evidence a signal is: the bundle log's path and a 1-based line span."""

    path: str
    first: int
    last: int

    @property
    def file(self) -> str:
        return os.path.basename(self.path)

    def cite(self) -> str:
        """``rollback-20260513T084721Z.log:1234-1251`` (one line: ``...log:1234``)."""
        span = str(self.first) if self.last == self.first else f"{self.first}-{self.last}"
        return f"{self.file}:{span}"


@dataclass
class Signal:
    """One thing the failing software said: an error line, or a whole multi-line block.

    Repeats of the same template are one Signal: ``count`` occurrences, the excerpt and
    ``ref`` of the first, ``last_line``/``last_ts`` of the last.
    """

    container: str
    kind: str  # "trace" (a stack trace) | "line" (an error line, with PostgreSQL's DETAIL/HINT if any)
    level: str  # error | critical | fatal
    format: str  # how it was recognised: json, logfmt, nginx, postgresql, klog, ruby, plain, exception, trace
    language: str | None  # python, java, go, node, ruby (traces); postgresql (a line with details)
    text: str  # the line that says what went wrong (for a trace: its cause line)
    template: str  # ``text`` with numbers, ids, times, addresses and quoted strings masked
    excerpt: list[str]  # the lines as logged (a long block: its first and last lines)
    elided: int  # lines left out of the excerpt's middle
    ref: LineRef  # the first occurrence, all its lines
    stream: str
    first_ts: str
    last_ts: str
    count: int = 1
    last_line: int = 0  # where the last occurrence starts
    header: str | None = None  # the log line that introduced a trace, if one did
    new: bool | None = None  # template absent from the replacing version's logs; None: not compared
    after_start: bool = True  # logged after the bad version started
    near_exit: bool = False  # logged among the last lines before the container exited or was killed
    score: float = 0.0
    reasons: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        """What makes two signals the same: kind, trace language and template."""
        return f"{self.kind}:{self.language or ''}:{self.template}"

    def excerpt_text(self) -> str:
        """The excerpt as one text, with a marker where a long block's middle was left out."""
        if not self.elided:
            return "\n".join(self.excerpt)
        # A long block keeps its first HEAD_KEEP lines and its last ones; one cut to its
        # header and cause line (the excerpt budget) keeps the cause line last.
        gap = min(HEAD_KEEP, len(self.excerpt) - 1)
        head, tail = self.excerpt[:gap], self.excerpt[gap:]
        return "\n".join([*head, f"… {self.elided} lines left out …", *tail])

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Signal:
        values = {f.name: data[f.name] for f in fields(cls) if f.name in data}
        values["ref"] = LineRef(**data["ref"])
        return cls(**values)


@dataclass
class ContainerContext:
    """What the bundle's inspect document says about a container, as the signals need it."""

    name: str
    status: str = ""
    exit_code: int | None = None
    oom_killed: bool = False
    restart_count: int = 0
    health_status: str | None = None
    image: str = ""
    created: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    memory_limit: int | None = None  # bytes; None: no limit

    @classmethod
    def from_inspect(cls, doc: dict[str, Any]) -> ContainerContext:
        state = container_state(doc)
        memory = ((doc.get("HostConfig") or {}).get("Memory")) or None
        return cls(
            name=state.name,
            status=state.status,
            exit_code=state.exit_code,
            oom_killed=state.oom_killed,
            restart_count=state.restart_count,
            health_status=state.health_status,
            image=state.image,
            created=_docker_ts(doc.get("Created")),
            started_at=_docker_ts((doc.get("State") or {}).get("StartedAt")),
            finished_at=_docker_ts((doc.get("State") or {}).get("FinishedAt")),
            memory_limit=int(memory) if isinstance(memory, int) else None,
        )

    @property
    def failing(self) -> bool:
        """Crashed, OOM-killed, restarting or unhealthy."""
        return (
            self.oom_killed
            or self.status in ("restarting", "dead")
            or self.restart_count > 0
            or self.exit_code not in (None, 0)
            or self.health_status == "unhealthy"
        )

    def describe(self) -> str:
        """The container's state in one line: ``OOM-killed (memory limit 32 MiB), exit code 137``."""
        parts: list[str] = []
        if self.oom_killed:
            limit = f" (memory limit {mib(self.memory_limit)})" if self.memory_limit else ""
            parts.append(f"OOM-killed{limit}")
        if self.status == "restarting":
            parts.append("restarting")
        if self.restart_count:
            parts.append(f"restarted {self.restart_count} time{'' if self.restart_count == 1 else 's'}")
        if self.exit_code not in (None, 0):
            parts.append(f"exit code {self.exit_code}")
        if self.health_status == "unhealthy":
            parts.append("unhealthy")
        if not parts:
            parts.append(self.status or "state unknown")
        elif self.status and self.status not in ("restarting",):
            parts.append(f"status {self.status}")
        return ", ".join(parts)

    def start(self) -> str | None:
        """When this container's version went live: created (a crash loop's first start), else started."""
        return self.created or self.started_at


def _docker_ts(value: Any) -> str | None:
    if not isinstance(value, str) or not value or value.startswith("0001-01-01"):
        return None
    normalized = normalize_ts(value)
    return normalized if re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", normalized) else None


@dataclass
class TailLine:
    """One line of a container's last words; consecutive repeats of a template folded in."""

    line: int
    ts: str
    stream: str
    text: str
    repeat: int = 1
    last_line: int = 0


@dataclass
class Tail:
    """The last lines a container logged before it exited or was killed (or, running, at all)."""

    lines: list[TailLine]
    ref: LineRef | None
    until: str | None  # the cut-off used: its FinishedAt; None: the end of the log
    reason: str  # "exited" | "OOM-killed" | "restarting" | "dead" | "end of log"

    def excerpt(self) -> list[str]:
        return [t.text if t.repeat == 1 else f"{t.text}  [× {t.repeat}]" for t in self.lines]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Tail:
        return cls(
            lines=[TailLine(**line) for line in data["lines"]],
            ref=LineRef(**data["ref"]) if data.get("ref") else None,
            until=data.get("until"),
            reason=data["reason"],
        )


@dataclass
class ContainerSignals:
    """Everything found for one container, its signals ranked strongest first."""

    name: str
    context: ContainerContext | None
    signals: list[Signal]
    first_signal: Signal | None  # the first signal logged after the bad version started
    start: str | None  # that start time
    tail: Tail | None
    templates_dropped: int = 0  # distinct templates over the per-container cap: counted, not kept

    @property
    def failing(self) -> bool:
        return self.context.failing if self.context else False

    def strongest(self, n: int = 3) -> list[Signal]:
        return self.signals[:n]

    @property
    def new_templates(self) -> list[Signal]:
        return [s for s in self.signals if s.new]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ContainerSignals:
        return cls(
            name=data["name"],
            context=ContainerContext(**data["context"]) if data.get("context") else None,
            signals=[Signal.from_dict(s) for s in data["signals"]],
            first_signal=Signal.from_dict(data["first_signal"]) if data.get("first_signal") else None,
            start=data.get("start"),
            tail=Tail.from_dict(data["tail"]) if data.get("tail") else None,
            templates_dropped=data.get("templates_dropped", 0),
        )


@dataclass
class SuspectedCause:
    """The one line most likely to say why: machine-suggested, for a human to verify."""

    container: str
    text: str  # the line to quote
    ref: LineRef
    rationale: str  # why this line, in one sentence
    signal: Signal | None  # None when it is a last line before an OOM kill or exit
    machine_suggested: bool = True

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SuspectedCause:
        return cls(
            container=data["container"],
            text=data["text"],
            ref=LineRef(**data["ref"]),
            rationale=data["rationale"],
            signal=Signal.from_dict(data["signal"]) if data.get("signal") else None,
            machine_suggested=data.get("machine_suggested", True),
        )


@dataclass(frozen=True)
class FailureSignature:
    """What makes two failures "the same again": the failed smoke step and the top error templates."""

    step: str | None
    templates: tuple[str, ...]
    key: str  # sha256 of the normalised step and the sorted templates

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "templates": list(self.templates), "key": self.key}


@dataclass
class ScanStats:
    bytes: int = 0
    lines: int = 0
    candidates: int = 0  # lines that held a trigger word and were looked at closely
    malformed: int = 0  # lines not in the bundle format (skipped)
    seconds: float = 0.0
    exact_lines: bool = True  # False: a container missing from the manifest appeared; earlier line numbers may be off


@dataclass
class SignalReport:
    """The signals of one bundle log."""

    log: str
    containers: list[ContainerSignals]
    suspected_cause: SuspectedCause | None
    baseline: str | None  # where the "new in the bad version" comparison came from; None: not compared
    stats: ScanStats = field(default_factory=ScanStats)

    def container(self, name: str) -> ContainerSignals | None:
        return next((c for c in self.containers if c.name == name), None)

    def signature(self, failed_step: str | None = None, top: int = SIGNATURE_TEMPLATES) -> FailureSignature:
        """The failure's signature for repeat detection (issue 19).

        Templates: the suspected cause's first, then the strongest new signals of failing
        containers (all containers when none is known to fail), ``top`` at most, each once.
        Sorted inside the key, so the same failure gives the same key whatever the order.
        """
        chosen: list[str] = []
        if self.suspected_cause and self.suspected_cause.signal:
            chosen.append(self.suspected_cause.signal.key)
        pool = [c for c in self.containers if c.failing] or self.containers
        ranked = sorted(
            (s for c in pool for s in c.signals if s.new is not False and s.after_start),
            key=lambda s: (-s.score, s.key),
        )
        for signal in ranked:
            if len(chosen) >= top:
                break
            if signal.key not in chosen:
                chosen.append(signal.key)
        step = " ".join(re.sub(r"\d+", "<NUM>", failed_step.lower()).split()) if failed_step else None
        digest = hashlib.sha256("\n".join([step or "", *sorted(chosen)]).encode()).hexdigest()
        return FailureSignature(step=step, templates=tuple(chosen), key=digest)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SignalReport:
        cause = data.get("suspected_cause")
        return cls(
            log=data["log"],
            containers=[ContainerSignals.from_dict(c) for c in data["containers"]],
            suspected_cause=SuspectedCause.from_dict(cause) if cause else None,
            baseline=data.get("baseline"),
            stats=ScanStats(**data.get("stats", {})),
        )
