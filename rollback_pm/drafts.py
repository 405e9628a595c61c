"""Render postmortem drafts from an Incident with jinja2, and write them without losing edits.

The context a template sees is built in one place (``build_context``) and documented in
docs/templates.md. Values are raw; templates put each one through the filter for its
place (``cell``, ``code``, ``codeblock``, ``text``, ``link``), and anything printed
without one is escaped as running text. Unknowns render as ``[TODO: ...]``.
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from rollback_pm import __version__, markdown
from rollback_pm.atomic import write_atomic
from rollback_pm.config import REPO_DRAFTS_DIR
from rollback_pm.deadline import due_at
from rollback_pm.errors import DraftEditedError, DraftError, TemplateError
from rollback_pm.facts.containers import mib
from rollback_pm.facts.impact import describe_start
from rollback_pm.facts.timeline import build_timeline
from rollback_pm.log import get_logger
from rollback_pm.markdown import PLACEHOLDER_RE, todo
from rollback_pm.models import ContainerState, Incident, Repeat, SmokeStep, SwarmFacts, SwarmImage, TimelineEvent
from rollback_pm.signals import SignalReport
from rollback_pm.signals.summary import excerpts, listed, log_notes, state_line
from rollback_pm.timeutil import as_utc, iso, mmss, utcnow

__all__ = [
    "PLACEHOLDER_RE",
    "TEMPLATE_NAMES",
    "DraftResult",
    "build_context",
    "draft_filename",
    "render",
    "resolve_template",
    "write_draft",
]

log = get_logger(__name__)

TEMPLATE_NAMES = ("azaion", "blameless", "sev", "finance")

# The azaion scale (Incident.severity) mapped to each template's scale.
SEVERITY_SCALES: dict[str, dict[str, str]] = {
    "azaion": {"Critical": "Critical", "High": "High", "Medium": "Medium", "Low": "Low"},
    "blameless": {"Critical": "P0", "High": "P1", "Medium": "P2", "Low": "P2"},
    "sev": {"Critical": "SEV1", "High": "SEV2", "Medium": "SEV3", "Low": "SEV4"},
    "finance": {"Critical": "P0", "High": "P1", "Medium": "P2", "Low": "P3"},
}

CRASH_LOOP_RESTARTS = 3  # restarts at which a container counts as crash-looping
SLUG_MAX = 40
DRAFT_MODE = 0o640
DIR_MODE = 0o750


# --------------------------------------------------------------------------- context


def build_context(
    incident: Incident,
    *,
    now: datetime,
    timeline: list[TimelineEvent] | None = None,
    deadline_hours: float = 24.0,
    seq: int = 1,
    template: str | None = None,
    seen_before: list[Repeat] | None = None,
    signals: SignalReport | None = None,
) -> dict[str, Any]:
    """Everything a template can use (reference: docs/templates.md).

    ``seq`` is the NNN of INC-YYYY-MM-DD-NNN: the incident's number that day (1 unless known).
    ``template`` (the built-in's name) goes into the hidden marker comment that lint reads.
    ``seen_before``: earlier incidents that failed the same way (``repeats``); None when the
    incident has no failure signature to compare.
    ``signals``: the incident's signal report (what the failing software logged), if any.
    """
    deadline = due_at(incident, deadline_hours)  # the same clock as the ticket and check-deadlines
    if timeline is None:
        timeline = build_timeline(incident, log_notes(signals) if signals else ())
    return {
        **_header_context(incident, now=now, seq=seq),
        **_time_context(incident),
        **_sha_context(incident),
        **_smoke_context(incident),
        **_container_and_change_context(incident),
        "evidence": _evidence_context(incident),
        "timeline": _timeline_context(timeline),
        **_logs_context(incident, signals),
        **_link_context(incident),
        "warnings": _warnings(incident),
        "deadline": iso(deadline),
        "deadline_hours": deadline_hours,
        "template": template,
        "filename": draft_filename(incident, template or "azaion", seq=seq),
        "repo_drafts_dir": REPO_DRAFTS_DIR,
        "marker": markdown.Md(_marker(incident, deadline, template)),
        "seen_before": None if seen_before is None else [_repeat_context(r) for r in seen_before],
    }


def _repeat_context(r: Repeat) -> dict[str, Any]:
    return {
        "incident_id": r.incident_id,
        "day": r.day,
        "rolled_back_at": iso(r.rolled_back_at),
        "service": r.service,
        "environment": r.environment,
        "failed_step": r.failed_step,
        "shared_templates": list(r.shared_templates),
        "draft": r.draft_path,
        "ticket": {"key": r.ticket.key, "url": r.ticket.url, "href": _web(r.ticket.url), "status": r.ticket.status}
        if r.ticket
        else None,
        "open_followups": [
            {
                "key": f.key,
                "url": f.url,
                "href": _web(f.url),
                "action": f.action,
                "owner": f.owner,
                "target_date": f.target_date,
            }
            for f in r.open_followups
        ],
    }


def _web(url: str | None) -> str | None:
    """A ticket's URL when it is a web page to link to (a file tracker's file:// is not)."""
    return url if url and re.match(r"(?i)https?://", url) else None


def _header_context(incident: Incident, *, now: datetime, seq: int) -> dict[str, Any]:
    """Who and what: names, the incident's reference and date, and its severity on every scale."""
    day = incident_day(incident, now)
    severity = (incident.severity or "").strip().capitalize()
    return {
        "incident": incident,
        "tool": {"name": "rollback-pm", "version": __version__},
        "now": now,
        "title": incident_title(incident),
        "slug": slugify(_slug_source(incident)),
        "incident_ref": f"INC-{day}-{seq:03d}",
        "incident_date": day,
        "service": incident.service,
        "environment": incident.environment,
        "repo": incident.repo,
        "owner": incident.owner,
        "detected_by": incident.detected_by,
        # None (-> placeholder) when the ledger holds a value off the azaion scale
        "severity": {scale: table.get(severity) for scale, table in SEVERITY_SCALES.items()},
    }


def _time_context(incident: Incident) -> dict[str, Any]:
    """When it started, was detected and mitigated, and the spans between."""
    start, detected, mitigated = incident.started_at, incident.detected_at, incident.mitigated_at
    impact_seconds = _seconds(start or detected, mitigated)
    return {
        "times": {
            "started": iso(start),
            "detected": iso(detected),
            "mitigated": iso(mitigated),
            "started_source": incident.started_at_source if start else None,
            "start_note": describe_start(incident),
            "started_hhmm": _hhmm(start),
            "detected_hhmm": _hhmm(detected),
            "mitigated_hhmm": _hhmm(mitigated),
        },
        "durations": {
            "impact_seconds": impact_seconds,
            "impact_mmss": mmss(impact_seconds),
            "impact_human": human_duration(impact_seconds),
            "ttd_minutes": _minutes(start, detected),
            "ttm_minutes": _minutes(start, mitigated),
            "detect_to_mitigate_minutes": _minutes(detected, mitigated),
        },
    }


def _sha_context(incident: Incident) -> dict[str, Any]:
    return {
        "deploy_sha": incident.deploy_sha,
        "deploy_sha7": incident.deploy_sha[:7],
        "rollback_sha": incident.rollback_sha,
        "rollback_sha7": incident.rollback_sha[:7] if incident.rollback_sha else None,
        "rollback_sha_source": incident.rollback_sha_source,
    }


def _smoke_context(incident: Incident) -> dict[str, Any]:
    failed = incident.failed_step
    return {
        "failed_step": step_context(failed) if failed else None,
        "smoke_steps": [step_context(s) for s in sorted(incident.smoke_steps, key=_step_order)],
        "smoke_total": max([s.step or 0 for s in incident.smoke_steps], default=0) or None,
    }


def _container_and_change_context(incident: Incident) -> dict[str, Any]:
    """What the containers went through, and what changed between the two SHAs."""
    containers = [container_context(c) for c in incident.containers]
    return {
        "containers": containers,
        "swarm": swarm_context(incident.swarm) if incident.swarm else None,
        "crash_looping": [c for c in containers if c["crash_looping"]],
        "unhealthy_containers": [c for c in containers if c["problems"]],
        "commits": [
            {"sha": c.sha, "sha7": c.sha[:7], "author": c.author, "subject": c.subject, "date": iso(c.date)}
            for c in incident.commits
        ],
        "changed_files": [{"path": f.path, "added": f.added, "deleted": f.deleted} for f in incident.changed_files],
    }


def _evidence_context(incident: Incident) -> dict[str, list[dict[str, Any]]]:
    return {
        "all": [_evidence(e) for e in incident.evidence],
        "log": [_evidence(e) for e in incident.evidence if e.kind == "log"],
        "inspect": [_evidence(e) for e in incident.evidence if e.kind == "inspect"],
        "manifest": [_evidence(e) for e in incident.evidence if e.kind == "manifest"],
    }


def _timeline_context(events: list[TimelineEvent]) -> list[dict[str, Any]]:
    """Events with their time as HH:MM, or with the date too when the incident spans days."""
    multi_day = len({as_utc(e.ts).date() for e in events}) > 1
    return [
        {
            "ts": e.ts,
            "iso": iso(e.ts),
            "time": as_utc(e.ts).strftime("%Y-%m-%d %H:%M" if multi_day else "%H:%M"),
            "text": e.text,
            "source": e.source,
        }
        for e in events
    ]


def _logs_context(incident: Incident, report: SignalReport | None) -> dict[str, Any]:
    """What the failing software said (the signals stage), the suspected cause, and the
    log excerpt: the failed step's own log, else the logs' strongest signal."""
    cause = report.suspected_cause if report else None
    suspected = None
    if cause is not None:
        suspected = {
            "text": cause.text,
            "container": cause.container,
            "cite": cause.ref.cite(),
            "path": cause.ref.path,
            "rationale": cause.rationale,
        }
    failed = incident.failed_step
    excerpt = None
    if failed is not None and failed.log_excerpt:
        number = f" {failed.step}" if failed.step is not None else ""
        excerpt = {"text": failed.log_excerpt, "source": f"the log of smoke step{number} ({failed.name})", "cite": None}
    elif report is not None:
        excerpt = _cause_excerpt(report)
    return {"logs": _logs(incident, report), "suspected_cause": suspected, "log_excerpt": excerpt}


def _logs(incident: Incident, report: SignalReport | None) -> dict[str, Any]:
    if report is None:
        logged = any(e.kind == "log" for e in incident.evidence)
        note = (
            "The evidence log was not read for signals (see the hook's output); the full logs are in the bundle."
            if logged
            else "No evidence log was collected, so there is nothing the containers said to quote."
        )
        return {"available": False, "note": note, "log": None, "baseline": None, "containers": [], "quiet": []}
    chosen = listed(report)
    names = {item.container.name for item in chosen}
    return {
        "available": True,
        "note": None,
        "log": os.path.basename(report.log),
        "baseline": report.baseline,
        "containers": [
            {
                "name": item.container.name,
                "why": item.why,
                "state": state_line(item.container),
                "excerpts": [
                    {"kind": e.kind, "title": e.title, "detail": e.detail, "text": e.text, "cite": e.cite}
                    for e in excerpts(item.container)
                ],
            }
            for item in chosen
        ],
        "quiet": [c.name for c in report.containers if c.name not in names],
    }


def _cause_excerpt(report: SignalReport) -> dict[str, Any] | None:
    """The suspected cause's lines (a whole stack trace), else the failing container's last lines."""
    cause = report.suspected_cause
    if cause is None:
        return None
    if cause.signal is not None:
        text, cite = cause.signal.excerpt_text(), cause.signal.ref.cite()
    else:
        container = report.container(cause.container)
        tail = container.tail if container else None
        if tail is None or tail.ref is None:
            return None
        text, cite = "\n".join(tail.excerpt()), tail.ref.cite()
    return {"text": text, "source": f"the log of {cause.container}", "cite": cite}


def _link_context(incident: Incident) -> dict[str, Any]:
    ticket = incident.ticket
    return {
        "pipeline": {"number": incident.pipeline_number, "url": incident.pipeline_url},
        "deploy_ticket": incident.deploy_ticket,
        "ticket": {"tracker": ticket.tracker, "key": ticket.key, "url": ticket.url} if ticket else None,
    }


def _warnings(incident: Incident) -> list[str]:
    """The incident's warnings, first among them a caution when the rollback SHA is a guess."""
    warnings = list(incident.warnings)
    if incident.rollback_sha and incident.rollback_sha_source == "ci-prev":
        note = (
            "The rollback SHA came from CI_PREV_COMMIT_SHA: the previous pipeline on the branch, "
            "not necessarily the version that was deployed before. Check it against the running image."
        )
        if not any("CI_PREV_COMMIT_SHA" in w for w in warnings):
            warnings.insert(0, note)
    return warnings


def step_context(step: SmokeStep) -> dict[str, Any]:
    return {
        "number": step.step,
        "name": step.name,
        "status": step.status,
        "failed": step.failed,
        "message": step.message,
        "ts": iso(step.ts),
        "hhmm": _hhmm(step.ts),
        "source": step.source,
        "log_excerpt": step.log_excerpt,
    }


def container_context(c: ContainerState) -> dict[str, Any]:
    """A container plus the plain-words list of what is wrong with it."""
    problems: list[str] = []
    crash_looping = c.restart_count >= CRASH_LOOP_RESTARTS or c.status == "restarting"
    if c.restart_count and not crash_looping:
        problems.append(f"{c.restart_count} restart{'s' if c.restart_count != 1 else ''}")
    if c.oom_killed:
        problems.append(f"OOM-killed (memory limit {mib(c.memory_limit)})" if c.memory_limit else "OOM-killed")
    if c.exit_code not in (None, 0):
        problems.append(f"exit code {c.exit_code}{_signal_hint(c.exit_code)}")
    if c.status in ("dead",):
        problems.append("dead")
    last_probe = c.health_log[-1] if c.health_log else None
    probe_output = ""
    if last_probe is not None:
        probe_output = " ".join(str(last_probe.get("Output", "")).split())[:200]
    if c.health_status == "unhealthy":
        problems.append("unhealthy" + (f": {probe_output}" if probe_output else ""))
    return {
        "name": c.name,
        "id": c.id,
        "id12": c.id[:12],
        "image": c.image,
        "status": c.status,
        "exit_code": c.exit_code,
        "oom_killed": c.oom_killed,
        "memory_limit": c.memory_limit,
        "created_at": iso(c.created_at),
        "restart_count": c.restart_count,
        "started_at": iso(c.started_at),
        "finished_at": iso(c.finished_at),
        "health_status": c.health_status,
        "last_probe_output": probe_output,
        "image_revision": c.image_revision,
        "crash_looping": crash_looping,
        "problems": problems,
        "summary": ", ".join(([f"CRASH-LOOPING ({c.restart_count} restarts)"] if crash_looping else []) + problems)
        or "no problem recorded",
    }


SWARM_TRIGGERS = {
    "automatic": "Swarm rolled the service back by itself (update_config failure_action: rollback)",
    "manual": "rolled back with docker service rollback",
    "pipeline": "the pipeline deployed the previous version again",
}


def swarm_context(s: SwarmFacts) -> dict[str, Any]:
    """A Swarm service's versions, UpdateStatus and failed tasks (the ``_swarm`` partial)."""

    def version(v: SwarmImage | None) -> dict[str, Any] | None:
        return {"image": v.image, "digest": v.digest, "revision": v.revision} if v else None

    update = s.update
    fail = s.failures
    return {
        "service": s.service,
        "service_id": s.service_id,
        "stack": s.stack,
        "trigger": s.trigger,
        "trigger_text": SWARM_TRIGGERS.get(s.trigger, s.trigger),
        "deploy": version(s.deploy),
        "rollback": version(s.rollback),
        "status": (  # not "update": a dict's method of that name would win in the template
            {
                "state": update.state,
                "message": update.message,
                "started": iso(update.started_at),
                "completed": iso(update.completed_at),
                "rollback_started": iso(update.rollback_started_at),
            }
            if update
            else None
        ),
        "failures": {
            "count": fail.count,
            "first": iso(fail.first_at),
            "last": iso(fail.last_at),
            "nodes": list(fail.nodes),
            "errors": list(fail.errors),
            "exit_codes": list(fail.exit_codes),
            "first_task": fail.first_task,
        },
        "tasks_seen": s.tasks_seen,
    }


def _signal_hint(code: int) -> str:
    return {137: " (SIGKILL)", 139: " (SIGSEGV)", 143: " (SIGTERM)", 134: " (SIGABRT)"}.get(code, "")


def _evidence(e: Any) -> dict[str, Any]:
    return {"path": e.path, "kind": e.kind, "sha256": e.sha256, "bytes": e.bytes, "bundle": e.bundle}


def _marker(incident: Incident, deadline: datetime | None, template: str | None) -> str:
    """A hidden first line: which incident and template wrote the draft, and its deadline (if any)."""
    kind = f" template={template}" if template in TEMPLATE_NAMES else ""
    due = f" deadline={iso(deadline)}" if deadline else ""
    return f"<!-- rollback-pm incident={marker_id(incident.id)}{kind}{due} -->"


def marker_id(incident_id: str) -> str:
    """The incident id as it can sit in an HTML comment."""
    return re.sub(r"[^\w.:-]|-(?=-)", "", incident_id)


def incident_day(incident: Incident, now: datetime | None = None) -> str:
    """The incident's date: when the bad version went live, else when it was noticed."""
    for ts in (incident.started_at, incident.detected_at, incident.mitigated_at, incident.created_at):
        if ts is not None:
            return iso(ts)[:10]  # type: ignore[index]
    return iso(now or utcnow())[:10]  # type: ignore[index]


def incident_title(incident: Incident) -> str:
    failed = incident.failed_step
    if failed is None:
        return f"{incident.service} rollback on {incident.environment}"
    step = f"smoke step {failed.step} ({failed.name})" if failed.step is not None else f"smoke step {failed.name}"
    return f"{incident.service} rollback on {incident.environment}: {step} failed"


def _slug_source(incident: Incident) -> str:
    failed = incident.failed_step
    return f"{incident.service} {failed.name if failed else 'rollback'}"


def slugify(value: str, limit: int = SLUG_MAX) -> str:
    """ascii, lower case, hyphens; cut at a word edge to at most ``limit`` characters."""
    ascii_text = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    if len(slug) > limit:
        cut = slug[:limit]
        slug = cut.rsplit("-", 1)[0] if "-" in cut and slug[limit] != "-" else cut
        slug = slug.strip("-")
    return slug or "incident"


def human_duration(seconds: float | None) -> str | None:
    """'1 hour 5 minutes', '7 minutes', '40 seconds'."""
    if seconds is None:
        return None
    total = max(0, round(seconds))
    if total < 60:
        return f"{total} second{'s' if total != 1 else ''}"
    hours, minutes = divmod(total // 60, 60)
    parts = []
    if hours:
        parts.append(f"{hours} hour{'s' if hours != 1 else ''}")
    if minutes or not hours:
        parts.append(f"{minutes} minute{'s' if minutes != 1 else ''}")
    return " ".join(parts)


def _seconds(a: datetime | None, b: datetime | None) -> float | None:
    if a is None or b is None or b < a:
        return None
    return (b - a).total_seconds()


def _minutes(a: datetime | None, b: datetime | None) -> int | None:
    seconds = _seconds(a, b)
    return None if seconds is None else round(seconds / 60)


def _hhmm(ts: datetime | None) -> str | None:
    return as_utc(ts).strftime("%H:%M") if ts else None


def _step_order(s: SmokeStep) -> tuple[bool, int, bool, datetime]:
    return (s.step is None, s.step or 0, s.ts is None, s.ts or datetime.min)


# --------------------------------------------------------------------------- templates


def _filters() -> dict[str, Any]:
    def or_todo(value: Any, what: str = "") -> Any:
        return todo(what) if value is None or (isinstance(value, str) and not value.strip()) else value

    return {
        **markdown.FILTERS,
        "or_todo": or_todo,
        "iso": lambda v: iso(v) if isinstance(v, datetime) else v,
        "hhmm": lambda v: _hhmm(v) if isinstance(v, datetime) else v,
        "mmss": mmss,
        "sha7": lambda v: v[:7] if v else v,
        "human_duration": human_duration,
    }


class _Sandbox(ImmutableSandboxedEnvironment):
    """jinja2's sandbox, failing at the first unsafe attribute (rather than handing back an
    undefined whose later use names something else)."""

    def unsafe_undefined(self, obj: Any, attribute: str) -> jinja2.Undefined:
        raise SecurityError(f"access to attribute {attribute!r} of {type(obj).__name__!r} object is unsafe")


def _environment(loader: jinja2.BaseLoader) -> jinja2.Environment:
    # Sandboxed, built-ins too: a template reaches the context and the filters, never
    # Python internals (``__class__``, ``__globals__``, ...), and cannot change the context.
    env = _Sandbox(
        loader=loader,
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        finalize=markdown.finalize,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(_filters())
    env.globals["todo"] = todo
    return env


_PACKAGE_LOADER = jinja2.PackageLoader("rollback_pm", "templates")
_builtin_env: jinja2.Environment | None = None


def _builtins() -> jinja2.Environment:
    global _builtin_env
    if _builtin_env is None:
        _builtin_env = _environment(_PACKAGE_LOADER)
    return _builtin_env


def resolve_template(name_or_path: str) -> tuple[str, jinja2.Template]:
    """A built-in name, or a path to a user template (which may include the built-ins).

    Returns (name, template): the built-in's name, or the user file's absolute path.
    """
    valid = ", ".join(TEMPLATE_NAMES)
    if name_or_path in TEMPLATE_NAMES:
        try:
            return name_or_path, _builtins().get_template(f"{name_or_path}.md.j2")
        except jinja2.TemplateError as exc:  # a packaging bug, not the user's
            raise DraftError(f"built-in template {name_or_path} cannot be loaded: {exc}") from exc
    path = Path(name_or_path).expanduser()
    looks_like_path = os.sep in name_or_path or path.suffix in (".j2", ".md", ".jinja", ".jinja2")
    try:
        is_file = path.is_file()
        exists = is_file or path.exists()
    except OSError as exc:  # a name too long for the filesystem, a loop of links
        shown = name_or_path if len(name_or_path) <= 80 else name_or_path[:80] + "…"
        raise TemplateError(
            f"template {shown!r} cannot be looked up ({exc.strerror}); use one of {valid}, or a readable template file"
        ) from None
    if not is_file:
        if looks_like_path or exists:
            raise TemplateError(
                f"template file {path} not found or not a file; use one of {valid}, or a readable template file"
            )
        raise TemplateError(f"unknown template {name_or_path!r}: use one of {valid}, or a path to a template file")
    path = path.resolve()
    try:
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TemplateError(f"template file {path} cannot be read ({exc}); check its permissions and encoding") from exc
    env = _environment(jinja2.ChoiceLoader([_OwnDirLoader(path.parent), _PACKAGE_LOADER]))
    try:
        # compiled with its path, so a runtime error can name the file and line
        code = env.compile(source, name=path.name, filename=str(path))
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"template file {path}:{exc.lineno}: {exc.message}; fix the template syntax") from exc
    return str(path), env.template_class.from_code(env, code, env.make_globals(None), None)


class _OwnDirLoader(jinja2.FileSystemLoader):
    """A user template's includes, imports and extends: files in its own directory only.
    jinja2 already refuses ``..`` segments; absolute names and symlinks leading out of the
    directory are refused here."""

    def __init__(self, directory: Path) -> None:
        super().__init__(str(directory))
        self.root = os.path.realpath(directory)

    def get_source(self, environment: jinja2.Environment, template: str) -> tuple[str, str, Any]:
        if template.startswith(("/", "\\")) or os.path.isabs(template):
            raise jinja2.TemplateNotFound(template)
        source, filename, uptodate = super().get_source(environment, template)
        if os.path.commonpath([self.root, os.path.realpath(filename)]) != self.root:
            raise jinja2.TemplateNotFound(template)
        return source, filename, uptodate


def _where(exc: BaseException, name: str) -> str:
    """``file:line`` of the innermost template frame of a render error (jinja2 rewrites the
    traceback into template frames), else the template's name."""
    where = name
    tb = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if not filename.endswith(".py") and not filename.startswith("<"):
            where = f"{filename}:{tb.tb_lineno}"
        tb = tb.tb_next
    return where


def render(
    incident: Incident,
    template: str = "azaion",
    *,
    now: datetime,
    timeline: list[TimelineEvent] | None = None,
    deadline_hours: float = 24.0,
    seq: int = 1,
    seen_before: list[Repeat] | None = None,
    signals: SignalReport | None = None,
) -> str:
    name, tmpl = resolve_template(template)
    return _render(
        name,
        tmpl,
        incident,
        now=now,
        timeline=timeline,
        deadline_hours=deadline_hours,
        seq=seq,
        seen_before=seen_before,
        signals=signals,
    )


def _render(
    name: str,
    tmpl: jinja2.Template,
    incident: Incident,
    *,
    now: datetime,
    timeline: list[TimelineEvent] | None,
    deadline_hours: float,
    seq: int,
    seen_before: list[Repeat] | None = None,
    signals: SignalReport | None = None,
) -> str:
    builtin = name if name in TEMPLATE_NAMES else None
    context = build_context(
        incident,
        now=now,
        timeline=timeline,
        deadline_hours=deadline_hours,
        seq=seq,
        template=builtin,
        seen_before=seen_before,
        signals=signals,
    )
    try:
        text = tmpl.render(context)
    except SecurityError as exc:
        raise TemplateError(
            f"template file {_where(exc, name)}: {exc}; templates run sandboxed and reach only the "
            "context and filters in docs/templates.md"
        ) from exc
    except jinja2.UndefinedError as exc:
        raise TemplateError(
            f"template {_where(exc, name)}: {exc.message}; see docs/templates.md for the variables a template can use"
        ) from exc
    except jinja2.TemplateNotFound as exc:
        raise TemplateError(
            f"template {_where(exc, name)}: {exc.message} not found; includes, imports and extends resolve only "
            "from the template's own directory and the built-in templates (no absolute path, no ..)"
        ) from exc
    except jinja2.TemplateError as exc:
        raise TemplateError(f"template {_where(exc, name)}: {exc}") from exc
    return _fold_blank_lines(text).rstrip("\n") + "\n"


_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


def _fold_blank_lines(text: str) -> str:
    """Conditional blocks leave runs of blank lines: keep one, but never inside a code block
    (a log excerpt is evidence and stays as it was)."""
    out: list[str] = []
    fence: str | None = None
    for line in text.split("\n"):
        if fence is None:
            match = _FENCE.match(line)
            if match:
                fence = match.group(1)
            elif not line.strip() and out and not out[-1].strip():
                continue
        elif line.strip().startswith(fence) and set(line.strip()) == {fence[0]}:
            fence = None
        out.append(line)
    return "\n".join(out)


def draft_filename(incident: Incident, template: str = "azaion", *, seq: int = 1) -> str:
    """azaion and user templates: postmortem_<date>_<slug>.md; finance: POST-MORTEM-<date>-<slug>.md;
    blameless: INC-<date>-<NNN>-<slug>.md; sev: postmortem-<date>-<slug>.md."""
    day = incident_day(incident)
    slug = slugify(_slug_source(incident))
    if template == "finance":
        return f"POST-MORTEM-{day}-{slug}.md"
    if template == "blameless":
        return f"INC-{day}-{seq:03d}-{slug}.md"
    if template == "sev":
        return f"postmortem-{day}-{slug}.md"
    return f"postmortem_{day}_{slug}.md"


# --------------------------------------------------------------------------- writing


@dataclass
class DraftResult:
    path: Path
    sha256: str
    written: bool
    backup: Path | None
    reason: str  # created | refreshed | unchanged | forced


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


_MARKER_ID = re.compile(r"<!-- rollback-pm incident=([^\s>]+)")


def write_draft(
    incident: Incident,
    *,
    drafts_dir: Path,
    template: str = "azaion",
    previous_sha256: str | None = None,
    previous_path: Path | None = None,
    force: bool = False,
    now: datetime,
    timeline: list[TimelineEvent] | None = None,
    deadline_hours: float = 24.0,
    seq: int = 1,
    seen_before: list[Repeat] | None = None,
    signals: SignalReport | None = None,
) -> DraftResult:
    """Render and write atomically; refuse to overwrite a human's edits unless ``force``.

    The draft goes to ``previous_path`` when the ledger knows one (its name stays stable
    as facts change), else to ``drafts_dir/draft_filename()``; a file there that belongs
    to another incident gets a numbered name instead.
    """
    name, tmpl = resolve_template(template)
    text = _render(
        name,
        tmpl,
        incident,
        now=now,
        timeline=timeline,
        deadline_hours=deadline_hours,
        seq=seq,
        seen_before=seen_before,
        signals=signals,
    )
    digest = sha256_text(text)
    if previous_path is not None and Path(previous_path).parent.is_dir():
        path = Path(previous_path)
    else:
        path = _free_path(Path(drafts_dir), draft_filename(incident, name, seq=seq), incident.id)
    current = _read_bytes(path)
    backup: Path | None = None
    if current is None:
        reason = "created"
    elif current == text.encode("utf-8"):
        return DraftResult(path, digest, False, None, "unchanged")
    elif previous_sha256 is not None and hashlib.sha256(current).hexdigest() == previous_sha256:
        reason = "refreshed"
    elif not force:
        raise DraftEditedError(
            f"draft {path} was edited since rollback-pm wrote it; keep editing it, or re-run with "
            f"--force to overwrite it with fresh facts (your version is kept as a .bak copy)"
        )
    else:
        backup = _backup(path, current)
        reason = "forced"
    _atomic_write(path, text)
    log.info("draft written", path=str(path), reason=reason, backup=str(backup) if backup else None)
    return DraftResult(path, digest, True, backup, reason)


def _free_path(drafts_dir: Path, filename: str, incident_id: str) -> Path:
    """``filename`` unless another incident's draft (by its marker) holds it."""
    path = drafts_dir / filename
    stem, suffix = os.path.splitext(filename)
    n = 1
    while True:
        current = _read_bytes(path)
        if current is None:
            return path
        match = _MARKER_ID.search(current[:4096].decode("utf-8", "replace"))
        if not match or match.group(1) == marker_id(incident_id):
            return path  # ours, or unmarked (maybe a human dropped the marker): the edit check decides
        n += 1
        path = drafts_dir / f"{stem}-{n}{suffix}"


def _read_bytes(path: Path) -> bytes | None:
    try:
        if path.is_symlink():
            raise DraftError(f"draft path {path} is a symlink; remove it or choose another --drafts-dir")
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise DraftError(f"draft path {path} is a directory; remove it or choose another --drafts-dir") from None
    except OSError as exc:
        raise DraftError(f"draft {path} cannot be read ({exc.strerror}); check its permissions") from exc


def _backup(path: Path, content: bytes) -> Path:
    """Keep the human's version as <file>.bak, or .bak.1, .bak.2 ... if older ones exist."""
    candidate = path.with_name(path.name + ".bak")
    n = 0
    while candidate.exists() or candidate.is_symlink():
        n += 1
        candidate = path.with_name(f"{path.name}.bak.{n}")
    _atomic_write(candidate, content.decode("utf-8", "surrogateescape"), exclusive=True)
    return candidate


def _atomic_write(path: Path, text: str, exclusive: bool = False) -> None:
    """Readers see the old or the new file, never a half-written one."""
    directory = path.parent
    try:
        directory.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    except OSError as exc:
        raise DraftError(
            f"drafts directory {directory} is not writable ({exc.strerror}); fix it or pass --drafts-dir"
        ) from exc
    try:
        write_atomic(path, text.encode("utf-8", "surrogateescape"), DRAFT_MODE, exclusive=exclusive)
    except OSError as exc:
        raise DraftError(f"draft {path} cannot be written ({exc.strerror}); check the drafts directory") from exc
