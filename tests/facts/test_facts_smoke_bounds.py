"""Every smoke parser is bounded: size, steps, plan and step numbers, nesting, durations and
timestamps. The regression corpus (tests/fuzz/corpus.py) holds issue 15's nasty reports."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from rollback_pm.errors import EXIT_USAGE, SmokeReportError
from rollback_pm.facts import smoke
from rollback_pm.facts.smoke import MAX_NAME, parse_report, parse_reports
from rollback_pm.models import SmokeStep
from tests.fuzz.corpus import SMOKE, Case

ROOT = Path(__file__).resolve().parents[2]
BUDGET_MIB = 64
NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(smoke, "utcnow", lambda: NOW)


def write(tmp_path: Path, case: Case) -> Path:
    path = tmp_path / case.filename
    path.write_bytes(case.content)
    return path


@pytest.mark.parametrize("case", SMOKE, ids=[c.id for c in SMOKE])
def test_corpus_case_is_refused_with_its_range_or_parsed(tmp_path: Path, case: Case) -> None:
    path = write(tmp_path, case)
    if case.expected is None:
        steps = parse_report(path)
        assert 1 <= len(steps) <= smoke.MAX_STEPS
        assert all(len(s.name) <= MAX_NAME and len(s.message) <= smoke.MAX_MESSAGE for s in steps)
        return
    with pytest.raises(SmokeReportError) as caught:
        parse_report(path)
    assert str(caught.value) == f"smoke report {path}{case.expected}"
    assert caught.value.exit_code == EXIT_USAGE


CHILD = r"""
import json, sys
from rollback_pm.errors import SmokeReportError
from rollback_pm.facts.smoke import parse_report
try:
    print(f"{len(parse_report(sys.argv[1]))} steps")
except SmokeReportError as exc:
    print(f"refused: {exc}"[:300])
"""
# ru_maxrss survives execve, so the child is started by this small wrapper, not by pytest
# itself, and its peak is read from the wrapper's RUSAGE_CHILDREN.
WRAPPER = r"""
import json, resource, subprocess, sys
proc = subprocess.run(sys.argv[1:], capture_output=True, text=True)
sys.stderr.write(proc.stderr)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"outcome": proc.stdout.strip(), "peak_kib": peak, "rc": proc.returncode}))
"""


def parse_in_child(path: Path) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", WRAPPER, sys.executable, "-c", CHILD, str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    assert report["rc"] == 0, proc.stderr[-2000:]
    return report


@pytest.mark.parametrize("case", SMOKE, ids=[c.id for c in SMOKE])
def test_peak_memory_of_parsing_stays_under_budget(tmp_path: Path, case: Case) -> None:
    """The whole process that parses the report (interpreter included) peaks under 64 MiB."""
    report = parse_in_child(write(tmp_path, case))
    assert report["outcome"].startswith("refused") == (case.expected is not None), report["outcome"]
    assert report["peak_kib"] / 1024 < BUDGET_MIB, f"{case.id}: peak RSS {report['peak_kib'] / 1024:.1f} MiB"


def test_unreported_steps_are_summarised_as_ranges(tmp_path: Path) -> None:
    path = tmp_path / "smoke.tap"
    path.write_text("1..10\nok 1 - up\nok 5 - web\n")
    src = str(path)
    assert parse_report(path)[2:] == [
        SmokeStep(
            name="step 2 (not reported)",
            status="error",
            step=2,
            message="planned but never reported: the smoke run stopped before reporting it",
            source=src,
        ),
        SmokeStep(
            name="steps 3-4 (not reported)",
            status="skipped",
            step=3,
            message="not run: the smoke run stopped at an earlier step",
            source=src,
        ),
        SmokeStep(
            name="steps 6-10 (not reported)",
            status="skipped",
            step=6,
            message="not run: the smoke run stopped at an earlier step",
            source=src,
        ),
    ]


def test_largest_plan_adds_one_row_per_gap_not_per_step(tmp_path: Path) -> None:
    path = tmp_path / "smoke.tap"
    path.write_text("1..1000\nnot ok 1 - up\n")
    assert [(s.step, s.status, s.name) for s in parse_report(path)] == [
        (1, "failed", "up"),
        (2, "skipped", "steps 2-1000 (not reported)"),
    ]


def test_step_numbers_with_leading_zeros_and_the_largest_one(tmp_path: Path) -> None:
    path = tmp_path / "smoke.jsonl"
    path.write_text('{"step": "0005", "name": "a", "status": "ok"}\n{"step": 1000000, "name": "b", "status": "ok"}\n')
    assert [s.step for s in parse_report(path)] == [5, 1000000]


def test_names_are_clipped(tmp_path: Path) -> None:
    path = tmp_path / "smoke.jsonl"
    path.write_text(json.dumps({"name": "n" * 5000, "status": "failed"}) + "\n")
    (step,) = parse_report(path)
    assert step.name == "n" * (MAX_NAME - 1) + "…"


def test_timestamps_at_the_edges_of_the_window(tmp_path: Path) -> None:
    path = tmp_path / "smoke.jsonl"
    path.write_text(
        '{"name": "a", "status": "ok", "ts": "2000-01-01T00:00:00Z"}\n'
        '{"name": "b", "status": "ok", "ts": "2026-06-02T00:00:00Z"}\n'
    )
    assert [s.ts for s in parse_report(path)] == [
        datetime(2000, 1, 1, tzinfo=timezone.utc),
        datetime(2026, 6, 2, tzinfo=timezone.utc),
    ]
    path.write_text('{"name": "b", "status": "ok", "ts": "2026-06-02T00:00:01Z"}\n')
    with pytest.raises(SmokeReportError, match="between 2000-01-01 and now"):
        parse_report(path)


def test_junit_testcase_ending_past_the_window(tmp_path: Path) -> None:
    path = tmp_path / "smoke.xml"
    path.write_text('<testsuite timestamp="2026-06-01T12:00:00Z">\n<testcase name="a" time="86400"/>\n</testsuite>\n')
    with pytest.raises(SmokeReportError) as caught:
        parse_report(path)
    assert str(caught.value) == (
        f"smoke report {path}:2: <testcase> ends at 2026-06-02T12:00:00Z (its suite's timestamp plus the times "
        "so far); a smoke step's time must lie between 2000-01-01 and now + 1 day (2026-06-02T00:00:00Z)"
    )


def test_all_reports_of_one_run_share_the_step_bound(tmp_path: Path) -> None:
    paths = []
    for n in range(3):
        path = tmp_path / f"s{n}.jsonl"
        path.write_text('{"name": "a", "status": "ok"}\n' * 400)
        paths.append(path)
    assert len(parse_reports(paths[:2])) == 800
    with pytest.raises(SmokeReportError) as caught:
        parse_reports(paths)
    assert str(caught.value) == (
        f"smoke report {paths[2]}: the 3 smoke reports hold 1200 steps so far, more than the 1000 one run "
        "may record; pass only the smoke test's own reports"
    )


def test_a_bail_out_after_the_largest_step_number(tmp_path: Path) -> None:
    """Found by fuzzing: the step after 1000000 must not become step 1000001."""
    path = tmp_path / "smoke.tap"
    path.write_text("ok 1000000 - last\nBail out! disk full\n")
    assert [(s.step, s.status, s.name, s.message) for s in parse_report(path)] == [
        (1000000, "passed", "last", ""),
        (None, "error", "the next step (not reported)", "never reported: Bail out! disk full"),
    ]
