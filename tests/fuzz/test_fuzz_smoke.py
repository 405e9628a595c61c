"""Fuzz the smoke report parsers: every report parses into bounded steps or is a
SmokeReportError naming the file; nothing else (0 internal errors)."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import example, given
from hypothesis import strategies as st

from rollback_pm.errors import EXIT_USAGE, SmokeReportError
from rollback_pm.facts import smoke
from rollback_pm.models import SmokeStep
from tests.fuzz.scratch import scratch_dir
from tests.fuzz.strategies import jsonl_reports, junit_reports, tap_reports
from tests.fuzz.tally import TALLY, is_error

WORKDIR = scratch_dir("smoke")


def check_report(target: str, name: str, content: bytes, fmt: str | None = None) -> None:
    path = WORKDIR / name
    path.write_bytes(content)
    outcome = TALLY.run(target, lambda: smoke.parse_report(path, fmt), SmokeReportError)
    if is_error(outcome):
        assert isinstance(outcome, SmokeReportError) and outcome.exit_code == EXIT_USAGE
        message = str(outcome)
        assert message.startswith(f"smoke report {path}"), message
        assert len(message) < 2000
        return
    steps = outcome
    assert isinstance(steps, list) and len(steps) <= smoke.MAX_STEPS
    latest = smoke.utcnow() + smoke.AHEAD + timedelta(minutes=1)
    for step in steps:
        assert isinstance(step, SmokeStep)
        assert step.step is None or 0 <= step.step <= smoke.MAX_STEP_NUMBER
        assert len(step.name) <= max(smoke.MAX_NAME, 40) and len(step.message) <= smoke.MAX_MESSAGE
        for ts in (step.ts, step.started_at):
            assert ts is None or smoke.EARLIEST <= ts <= latest


@given(jsonl_reports)
@example('{"name": "a", "status": "ok", "step": 100000000000000000000000}')
@example('{"name": "a", "status": "ok", "message": ' + "[" * 3000 + "]" * 3000 + "}")
def test_fuzz_jsonl(report: str) -> None:
    check_report("smoke jsonl", "smoke.jsonl", report.encode("utf-8", "surrogatepass"))


@given(junit_reports)
@example("<testsuite>" * 3000 + '<testcase name="a"/>' + "</testsuite>" * 3000)
def test_fuzz_junit(report: str) -> None:
    check_report("smoke junit", "smoke.xml", report.encode("utf-8", "surrogatepass"))


@given(tap_reports)
@example("TAP version 13\n1..1000000\nok 1 - a\n")
def test_fuzz_tap(report: str) -> None:
    check_report("smoke tap", "smoke.tap", report.encode("utf-8", "surrogatepass"))


@given(
    st.binary(max_size=3000) | jsonl_reports.map(str.encode) | tap_reports.map(str.encode),
    st.sampled_from(["report", "s.jsonl", "s.xml", "s.tap", "s.json"]),
    st.sampled_from([None, "jsonl", "junit", "tap", "xml", "yaml"]),
)
def test_fuzz_any_bytes_any_format(content: bytes, name: str, fmt: str | None) -> None:
    check_report("smoke bytes", name, content, fmt)
