"""A signal report in the draft (every template), the ticket's short version, and lint.

The report comes from a small bundle log through the real extractor; the drafts are read
back with a real CommonMark parser. The real software failing for real, through the real
hook, is ``test_signals_in_the_hook``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from rollback_pm import drafts, lint
from rollback_pm.facts.timeline import build_timeline
from rollback_pm.models import ContainerState, EvidenceFile
from rollback_pm.signals import ContainerContext, SignalReport, extract
from rollback_pm.signals.summary import log_notes
from rollback_pm.tickets import ticket_body
from rollback_pm.timeutil import parse_ts
from rollback_pm.trackers.markup import to_markdown
from tests.signals.bundle import bundle_lines, ts, write_bundle_log

FIXTURES = Path(__file__).parent.parent / "fixtures" / "drafts"
_spec = importlib.util.spec_from_file_location("draft_incidents", FIXTURES / "incidents.py")
fx = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fx)  # type: ignore[union-attr]

MD = MarkdownIt("commonmark").enable(["table"])
LOG = "rollback-20260513T084721Z.log"
API = "annotations-api-1"
CAUSE = "KeyError: 'DATABASE_URL'"
LINES = [
    (API, "INFO starting annotations-api 2.14.0"),
    ("web-1", "INFO GET / 200"),
    (API, "Traceback (most recent call last):"),
    (API, '  File "/app/main.py", line 3, in <module>'),
    (API, CAUSE),
]


def report(tmp_path: Path, lines=LINES, contexts=None) -> SignalReport:
    path = write_bundle_log(tmp_path / LOG, bundle_lines(lines))
    contexts = contexts or [
        ContainerContext(API, status="exited", exit_code=1),
        ContainerContext("web-1", status="running"),
    ]
    return extract(path, contexts=contexts)


def fences(text: str, info: str = "log") -> list[str]:
    return [t.content for t in MD.parse(text) if t.type == "fence" and t.info == info]


def section(text: str, heading: str) -> str:
    """The text under the heading named ``heading`` up to the next heading of its level or higher."""
    lines = text.split("\n")
    start = next(i for i, line in enumerate(lines) if line.lstrip("#").strip() == heading and line.startswith("#"))
    level = len(lines[start]) - len(lines[start].lstrip("#"))
    end = next(
        (
            i
            for i in range(start + 1, len(lines))
            if lines[i].startswith("#") and len(lines[i]) - len(lines[i].lstrip("#")) <= level
        ),
        len(lines),
    )
    return "\n".join(lines[start + 1 : end])


@pytest.mark.parametrize("template", drafts.TEMPLATE_NAMES)
def test_every_template_says_what_the_logs_say_and_suggests_the_cause(template, tmp_path):
    text = drafts.render(fx.rich_incident(), template, now=fx.NOW, signals=report(tmp_path))

    logs = section(text, "What the logs say")
    assert f"`{LOG}`" in logs
    assert "Not compared with the replacing version's logs, so every error counts as new." in logs
    assert f"`{API}`" in logs and "**State:** exit code 1, status exited; 1 distinct error logged" in logs
    assert f"`{LOG}:3-5`" in logs
    assert "No failure and no new error in: web-1." in logs
    assert [f'Traceback (most recent call last):\n  File "/app/main.py", line 3, in <module>\n{CAUSE}\n'] == [
        f for f in fences(logs) if "Traceback" in f
    ]
    [suggestion] = [line for line in text.split("\n") if "Suspected cause (verify)" in line]
    assert suggestion.startswith("> **Suspected cause (verify)**, machine-suggested from the logs, not a finding: ")
    assert f"`{CAUSE}` logged by `{API}` (`{LOG}:3-5`)" in suggestion
    # the suggestion sits in the root-cause section, above the paragraph a human still writes
    root = lint.SPECS[template].root_cause_sections[0]
    assert suggestion in section(text, next(h for h in _headings(text) if h.lower() == root))


def _headings(text: str) -> list[str]:
    tokens = MD.parse(text)
    return [
        t.content for i, t in enumerate(tokens) if t.type == "inline" and i and tokens[i - 1].type == "heading_open"
    ]


@pytest.mark.parametrize("template", drafts.TEMPLATE_NAMES)
def test_without_a_report_the_draft_says_why_there_is_nothing_to_quote(template, tmp_path):
    incident = fx.rich_incident()
    incident.evidence = [EvidenceFile(str(tmp_path / LOG), "log", "a" * 64, 1, "rollback-20260513T084721Z")]
    text = drafts.render(incident, template, now=fx.NOW)
    assert "The evidence log was not read for signals (see the hook's output)" in section(text, "What the logs say")
    assert "Suspected cause (verify)" not in text

    incident.evidence = []
    text = drafts.render(incident, template, now=fx.NOW)
    assert "No evidence log was collected, so there is nothing the containers said to quote." in text


def test_the_log_excerpt_fills_from_the_logs_without_a_step_log(tmp_path):
    incident = fx.rich_incident()
    for step in incident.smoke_steps:
        step.log_excerpt = None
    text = drafts.render(incident, "azaion", now=fx.NOW, signals=report(tmp_path))
    excerpt = section(text, "Log excerpt")
    assert f"From the log of {API}, `{LOG}:3-5`:" in excerpt
    assert fences(excerpt) == [
        f'Traceback (most recent call last):\n  File "/app/main.py", line 3, in <module>\n{CAUSE}\n'
    ]


def test_a_hostile_log_line_stays_inside_its_fence(tmp_path):
    hostile = "ERROR ``` </details> # Root cause [x](javascript:alert(1)) |a|b|"
    lines = [(API, hostile), (API, "FATAL ~~~ boom")]
    text = drafts.render(fx.rich_incident(), "azaion", now=fx.NOW, signals=report(tmp_path, lines))
    quoted = "\n".join(fences(text))
    assert hostile in quoted and "FATAL ~~~ boom" in quoted
    assert [h for h in _headings(text) if "Root cause" in h] == ["Root cause"]  # no heading smuggled in


def test_an_oom_kill_and_a_crash_loop_get_their_own_timeline_entries(tmp_path):
    worker_error = "FileNotFoundError: [Errno 2] No such file or directory: '/etc/q.conf'"
    lines = [("oom-1", f"loaded chunk {i} ({(i + 1) * 4} MiB)") for i in range(5)]
    run = [
        "worker starting",
        "Traceback (most recent call last):",
        '  File "/app.py", line 2, in <module>',
        worker_error,
    ]
    lines += [("worker-1", line) for _ in range(4) for line in run]  # lines 6-21, four runs
    contexts = [
        ContainerContext("oom-1", status="exited", exit_code=137, oom_killed=True, memory_limit=32 << 20),
        ContainerContext("worker-1", status="exited", exit_code=1, restart_count=3, finished_at=ts(20)),
    ]
    signals = report(tmp_path, lines, contexts)
    incident = fx.rich_incident()
    incident.containers = [
        ContainerState(
            "oom-1", "a" * 12, "shop:2", "exited", exit_code=137, oom_killed=True, memory_limit=32 << 20,
            finished_at=parse_ts(ts(5)),
        ),
        ContainerState(
            "worker-1", "b" * 12, "shop:2", "exited", exit_code=1, restart_count=3, finished_at=parse_ts(ts(20)),
        ),
    ]  # fmt: skip
    events = {e.text: e for e in build_timeline(incident, log_notes(signals))}
    oom = (
        f'oom-1 OOM-killed (memory limit 32 MiB, exit code 137); last line logged: "loaded chunk 4 (20 MiB)" ({LOG}:5)'
    )
    assert events[oom].ts == parse_ts(ts(5))
    began = f'worker-1 crash loop began: first exit after "{worker_error}" (logged 4 times; {LOG}:7-9)'
    assert (events[began].ts, events[began].source) == (parse_ts(ts(6)), "container logs")
    last = f'worker-1 crash loop: last of 4 exits (restarted 3 times), exit code 1; last line logged: "{worker_error}"'
    assert events[f"{last} ({LOG}:21)"].ts == parse_ts(ts(20))


def test_the_ticket_carries_the_short_version(tmp_path):
    incident = fx.rich_incident()
    body = to_markdown(ticket_body(incident, deadline_hours=24, draft_path=None, signals=report(tmp_path)))
    assert (
        f"**Suspected cause (verify, machine-suggested from the logs):** `{CAUSE}` logged by `{API}` (`{LOG}:3-5`)"
        in body
    )
    assert f"- `{API}`: exit code 1, status exited; 1 distinct error logged" in body
    assert "web-1" not in body  # a quiet container is left to the draft
    assert "Traceback" not in body  # the whole trace is the draft's


def test_lint_never_takes_the_suggestion_for_the_root_cause(tmp_path):
    text = drafts.render(fx.rich_incident(), "azaion", now=fx.NOW, signals=report(tmp_path))
    todo = next(line for line in section(text, "Root cause").split("\n") if line.startswith("[TODO: one paragraph"))
    without = text.replace(todo + "\n", "")
    findings = [(f.rule, f.message) for f in lint.lint_text(without, now=fx.NOW) if f.rule == "empty-section"]
    assert (
        "empty-section",
        "required section 'root cause' holds only the machine-suggested cause: "
        "write the root cause in your own words (the suggestion may stay)",
    ) in findings
    # unquoted, it is still the machine's words
    unquoted = without.replace("> **Suspected cause (verify)**", "**Suspected cause (verify)**")
    assert any("machine-suggested" in f.message for f in lint.lint_text(unquoted, now=fx.NOW))
    written = text.replace(
        todo, "The deploy removed DATABASE_URL from the compose file; the service needs it to start."
    )
    assert not [f for f in lint.lint_text(written, now=fx.NOW) if "root cause" in f.message]
