"""Lint: completed examples of each template are clean; each kind of defect is found on its line."""

from __future__ import annotations

import importlib.util
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path

import pytest

from rollback_pm import drafts, lint
from rollback_pm.errors import EXIT_USAGE, UsageError

FIXTURES = Path(__file__).parent / "fixtures" / "drafts"
_spec = importlib.util.spec_from_file_location("draft_incidents", FIXTURES / "incidents.py")
fx = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fx)  # type: ignore[union-attr]

NOW = fx.NOW
TEMPLATES = ("azaion", "blameless", "sev", "finance")


def complete(template: str) -> str:
    return (FIXTURES / f"{template}_complete.md").read_text(encoding="utf-8")


def replace_line(text: str, old: str, new: str | None) -> tuple[str, int]:
    """Replace the one line containing ``old`` (``new`` None deletes it); return text and its line number."""
    lines = text.split("\n")
    hits = [i for i, line in enumerate(lines) if old in line]
    assert len(hits) == 1, (old, hits)
    i = hits[0]
    if new is None:
        del lines[i]
    else:
        lines[i] = lines[i].replace(old, new)
    return "\n".join(lines), i + 1


def line_of(text: str, snippet: str) -> int:
    hits = [n for n, line in enumerate(text.split("\n"), 1) if snippet in line]
    assert len(hits) == 1, (snippet, hits)
    return hits[0]


def found(text: str, **kw) -> list[tuple[int, str]]:
    return [(f.line, f.rule) for f in lint.lint_text(text, now=kw.pop("now", NOW), **kw)]


# --------------------------------------------------------------------------- clean


@pytest.mark.parametrize("template", TEMPLATES)
def test_completed_example_is_clean(template):
    path = FIXTURES / f"{template}_complete.md"
    assert lint.lint_file(path, now=NOW) == []


@pytest.mark.parametrize("template", TEMPLATES)
def test_completed_example_is_clean_without_the_marker_and_with_crlf(template):
    body = complete(template).split("\n", 1)[1]  # a human may drop our hidden first line
    assert lint.detect_template(body) == template
    assert found(body.replace("\n", "\r\n")) == []


def test_a_complete_postmortem_handed_in_late_is_still_complete():
    assert found(complete("azaion"), now=NOW + timedelta(days=3)) == []


# --------------------------------------------------------------------------- each defect, each template

# template -> (line to change, replacement) per defect; replacement None deletes the line
DEFECTS = {
    "azaion": {
        "header-field": ("| Severity | High |", "| Severity |  |"),
        "placeholder": ("Two engineers for 3 hours.", "[TODO: engineering time]"),
        "action-ticket": ("| 2026-05-20 | OPS-104 |", "| 2026-05-20 | will file one |"),
        "action-date-past": ("| 2026-05-20 | OPS-104 |", "| 2026-05-01 | OPS-104 |"),
        "action-date-bad": ("| 2026-05-20 | OPS-104 |", "| next sprint | OPS-104 |"),
        "human-error": (
            "Commit `c7b297d` moved the health check",
            "Human Error: commit `c7b297d` moved the health check",
        ),
        "empty-section": ("- The smoke test caught it in 4 minutes", None),
    },
    "blameless": {
        "header-field": ("- **Recorder:** Oleksandr B.", "- **Recorder:**"),
        "placeholder": ("- Data integrity: OK.", "- Data integrity: [TODO: check]"),
        "action-ticket": ("| OPS-104 | 2026-05-20 | open |", "| n/a | 2026-05-20 | open |"),
        "action-date-past": ("| OPS-104 | 2026-05-20 | open |", "| OPS-104 | 2026-04-30 | open |"),
        "action-date-bad": ("| OPS-104 | 2026-05-20 | open |", "| OPS-104 | soon | open |"),
        "human-error": ("- Trigger: Deploy of c7b297d", "- Trigger: a human error in the deploy of c7b297d"),
        "empty-section": ("- We learned that Dockerfile refactors", None),
    },
    "sev": {
        "header-field": ("- **Reviewers:** Iryna K., Petro S.", "- **Reviewers:** [Names]"),
        "placeholder": ("| Error Rate Peak | 12 % |", "| Error Rate Peak | [TODO: %] |"),
        "action-ticket": ("| 2026-05-20 | Open | OPS-104 |", "| 2026-05-20 | Open | |"),
        "action-date-past": ("| 2026-05-20 | Open | OPS-104 |", "| 2026-05-10 | Open | OPS-104 |"),
        "action-date-bad": ("| 2026-05-20 | Open | OPS-104 |", "| 2026-02-30 | Open | OPS-104 |"),
        "human-error": ("2. Why? The JVM started with the default heap.", "2. Why? HUMAN-ERROR: wrong flag."),
        "empty-section": ("Smoke steps 1-6 passed on 3c7fed0 at 08:50.", None),
    },
    "finance": {
        "header-field": ("- **Facilitator:** Iryna K.", "- **Facilitator:** [Name]"),
        "placeholder": ("| Downtime cost (est.) | TBD |", "| Downtime cost (est.) | [TODO: estimate] |"),
        "action-ticket": ("| 2026-05-20 | Open | #104 |", "| 2026-05-20 | Open | later |"),
        "action-date-past": ("| 2026-05-20 | Open | #104 |", "| 2026-01-20 | Open | #104 |"),
        "action-date-bad": ("| 2026-05-20 | Open | #104 |", "| ASAP | Open | #104 |"),
        "human-error": ("**Root cause (systemic):** No test", "**Root cause (systemic):** human error; no test"),
        "empty-section": ("Runtime flags need tests.", None),
    },
}
EMPTY_SECTION_HEADING = {
    "azaion": "## What went well",
    "blameless": "## Lessons",
    "sev": "### Verification",
    "finance": "### Technical Lessons",
}
MESSAGES = {
    "action-date-past": "is in the past",
    "action-date-bad": "is not a date",
    "header-field": "not filled",
    "human-error": "system gap",
    "action-ticket": "tracker key",
    "placeholder": "[TODO:",
    "empty-section": "is empty",
}


@pytest.mark.parametrize("defect", sorted(MESSAGES))
@pytest.mark.parametrize("template", TEMPLATES)
def test_each_defect_is_found_on_its_line(template, defect):
    old, new = DEFECTS[template][defect]
    text, line = replace_line(complete(template), old, new)
    if defect == "empty-section":
        line = line_of(text, EMPTY_SECTION_HEADING[template])
    findings = lint.lint_text(text, path="pm.md", now=NOW)
    rule = defect.rsplit("-", 1)[0] if defect.startswith("action-date") else defect
    assert [(f.line, f.rule) for f in findings] == [(line, rule)]
    assert MESSAGES[defect] in findings[0].message
    assert findings[0].path == "pm.md"


@pytest.mark.parametrize("template", TEMPLATES)
def test_a_missing_required_section_is_reported(template):
    heading = {
        "azaion": "## Repair",
        "blameless": "## Lessons",
        "sev": "### Trigger",
        "finance": "## 6. What Went Poorly",
    }[template]
    text, _ = replace_line(complete(template), heading, None)
    name = heading.lstrip("# ").split(". ", 1)[-1].lower()
    findings = lint.lint_text(text, now=NOW)
    assert [(f.line, f.rule, f.message) for f in findings] == [
        (1, "missing-section", f"required section '{name}' is missing")
    ]


def test_seed_header_value_names_what_is_left():
    text, line = replace_line(
        complete("azaion"), "| Affected environment | production |", "| Affected environment | staging / production |"
    )
    [finding] = lint.lint_text(text, now=NOW)
    assert (finding.line, finding.rule) == (line, "header-field")
    assert finding.message == "header field 'Affected environment' not filled: still staging / production"


@pytest.mark.parametrize(
    "leftover",
    [
        "YYYY-MM-DD",
        "HH:MM",
        "mm:ss",
        "@…",
        "<full sha>",
        "<concrete action — write a test>",
        "[Name]",
        "\\<name>",
        "[X hours Y minutes]",
        "X minutes",
        "€X",
        "P0 | P1 | P2",
        "SEV1 | SEV2 | SEV3 | SEV4",
    ],
)
def test_each_seed_placeholder_is_found_on_its_line(leftover):
    text, line = replace_line(
        complete("azaion"), "- The deploy happened at a low-traffic hour.", f"- Lucky: {leftover}"
    )
    findings = lint.lint_text(text, now=NOW)
    assert [(f.line, f.rule) for f in findings] == [(line, "seed-placeholder")]
    assert leftover.replace("\\", "") in findings[0].message.replace("\\", "")


def test_seed_ellipsis_item_and_timeline_line_are_found():
    text, item = replace_line(complete("azaion"), "- The deploy happened at a low-traffic hour.", "- …")
    text, code = replace_line(text, "08:52  On-call confirmed", "HH:MM  <event>  (source: Slack)")
    assert found(text) == [(code, "seed-placeholder"), (item, "seed-placeholder")]


def test_ordinary_markdown_is_not_a_seed_placeholder():
    prose = (
        "- Lucky: `src/[id]/page.tsx` and [a link](https://x.example/a) and <https://x.example> and "
        "a < b > c and [x] done and <br> and a footnote [^1] and [1] and 08:52 and <b>bold</b>"
    )
    text, _ = replace_line(complete("azaion"), "- The deploy happened at a low-traffic hour.", prose)
    assert found(text) == []


def test_human_error_outside_the_root_cause_text_is_fine():
    text, _ = replace_line(
        complete("azaion"), "- The deploy happened at a low-traffic hour.", "- No human error was needed to roll back."
    )
    text, _ = replace_line(
        text, '> Avoid "human error" as a root cause', '> Avoid "Human Error" (or human-error) as a root cause'
    )
    assert found(text) == []
    sev, _ = replace_line(complete("sev"), "- [ ] Human Error: manual mistake", "- [x] Human Error: manual mistake")
    assert found(sev) == []


def test_done_items_may_be_past_due_and_backlog_is_a_date():
    assert "| 2026-05-12 | Done | OPS-103 |" in complete("sev")
    assert "| Backlog | Open |" in complete("finance")
    text, line = replace_line(complete("sev"), "| 2026-05-12 | Done | OPS-103 |", "| 2026-05-12 | Open | OPS-103 |")
    assert found(text) == [(line, "action-date")]


def test_tracker_keys_accepted():
    for key in (
        "ABC-123",
        "#12",
        "https://git.example.com/o/r/issues/12",
        "https://x.atlassian.net/browse/OPS-9",
        "https://gitlab.example.com/g/p/-/issues/4",
    ):
        text, _ = replace_line(complete("azaion"), "| 2026-05-20 | OPS-104 |", f"| 2026-05-20 | {key} |")
        assert found(text) == [], key
    for not_key in ("12", "https://wiki.example.com/page", "abc-12", "see Slack"):
        text, line = replace_line(complete("azaion"), "| 2026-05-20 | OPS-104 |", f"| 2026-05-20 | {not_key} |")
        assert found(text) == [(line, "action-ticket")], not_key


# --------------------------------------------------------------------------- fresh drafts, deadline


def test_fresh_draft_past_its_deadline_is_overdue_on_the_marker_line():
    text = drafts.render(fx.rich_incident(), "azaion", now=NOW)
    late = NOW + timedelta(hours=24)  # the marker's deadline: mitigation + 24h
    findings = lint.lint_text(text, now=late)
    assert (findings[0].line, findings[0].rule) == (1, "overdue")
    assert findings[0].message == "postmortem is past its deadline (2026-05-14T08:47:21Z) and not finished"
    assert "overdue" not in {f.rule for f in lint.lint_text(text, now=NOW)}
    # a deadline given by the caller (the ledger) wins over the marker
    assert "overdue" not in {f.rule for f in lint.lint_text(text, now=late, deadline=late + timedelta(hours=1))}
    assert "overdue" in {f.rule for f in lint.lint_text(text, now=NOW, deadline=NOW - timedelta(minutes=1))}


@pytest.mark.parametrize("template", TEMPLATES)
def test_detect_template_reads_the_marker_first(template):
    text = drafts.render(fx.rich_incident(), template, now=NOW)
    assert lint.detect_template(text) == template
    other = "finance" if template != "finance" else "sev"
    assert lint.detect_template(text.replace(f"template={template}", f"template={other}", 1)) == other


def test_the_seed_template_left_as_is_is_all_findings():
    path = FIXTURES / "azaion_seed.md"
    text = path.read_text(encoding="utf-8")
    findings = lint.lint_file(path, now=NOW)
    by_line = {(f.line, f.rule) for f in findings}
    for field in lint.SPECS["azaion"].header_fields:
        assert (line_of(text, f"| {field} |"), "header-field") in by_line
    assert (line_of(text, "HH:MM  <event>            (source"), "seed-placeholder") in by_line
    assert (line_of(text, "| @… | <concrete action"), "seed-placeholder") in by_line
    assert (line_of(text, "## Detection gaps"), "empty-section") in by_line
    assert (line_of(text, "rollback-<timestamp>.log"), "seed-placeholder") in by_line
    assert not any(f.rule == "human-error" for f in findings)  # the guidance is quoted


def test_findings_are_plain_data_for_json():
    [finding] = lint.lint_text(
        replace_line(complete("azaion"), "| Severity | High |", "| Severity |  |")[0], path="x.md", now=NOW
    )
    assert asdict(finding) == {
        "path": "x.md",
        "line": line_of(complete("azaion"), "| Severity | High |"),
        "rule": "header-field",
        "message": "header field 'Severity' not filled",
    }


# --------------------------------------------------------------------------- unreadable input


def test_unreadable_files_are_usage_errors_naming_the_file(tmp_path):
    for path, what in (
        (tmp_path / "missing.md", "no such file"),
        (tmp_path, "is a directory"),
    ):
        with pytest.raises(UsageError, match=what) as err:
            lint.lint_file(path, now=NOW)
        assert str(path) in str(err.value) and err.value.exit_code == EXIT_USAGE
    binary = tmp_path / "pm.md"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(UsageError, match="not UTF-8") as err:
        lint.lint_file(binary, now=NOW)
    assert str(binary) in str(err.value)
