"""Smoke-step text is redacted where it enters: report parsers and the Woodpecker reader."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rollback_pm import log as rlog
from rollback_pm.facts.smoke import parse_reports
from tests.support.canaries import canaries, single_line

SMOKE = [c for c in canaries("S") if single_line(c)]


def test_jsonl_names_and_messages_are_redacted(tmp_path: Path) -> None:
    report = tmp_path / "smoke.jsonl"
    report.write_text(
        "".join(
            json.dumps({"step": i + 1, "name": f"step {c.fmt} {c.text}", "status": "failed", "message": c.text}) + "\n"
            for i, c in enumerate(SMOKE)
        )
    )
    steps = parse_reports([report])
    text = json.dumps([(s.name, s.message, s.log_excerpt) for s in steps])
    for canary in SMOKE:
        assert canary.secret not in text, canary.fmt
    assert [s.status for s in steps] == ["failed"] * len(SMOKE)
    assert steps[0].name.startswith("step aws-access-key-id ")


@pytest.mark.parametrize("fmt", ["junit", "tap"])
def test_junit_and_tap_messages_are_redacted(tmp_path: Path, fmt: str) -> None:
    messages = [c.text for c in SMOKE]
    if fmt == "junit":
        from xml.sax.saxutils import escape, quoteattr

        cases = "".join(
            f"<testcase name={quoteattr('api ' + m)}><failure message={quoteattr(m)}>{escape(m)}</failure></testcase>"
            for m in messages
        )
        report = tmp_path / "smoke.xml"
        report.write_text(f"<testsuite>{cases}</testsuite>")
    else:
        lines = [f"1..{len(messages)}"]
        for i, m in enumerate(messages, 1):
            lines += [f"not ok {i} - api {m}", "  ---", f"  message: {json.dumps(m)}", "  ..."]
        report = tmp_path / "smoke.tap"
        report.write_text("\n".join(lines) + "\n")
    steps = parse_reports([report])
    assert len(steps) == len(messages)
    text = json.dumps([(s.name, s.message) for s in steps])
    for canary in SMOKE:
        assert canary.secret not in text, canary.fmt


def test_registered_secrets_are_masked_in_step_text(tmp_path: Path) -> None:
    rlog.register_secret("registered-Secret-4711")
    report = tmp_path / "smoke.jsonl"
    report.write_text(
        json.dumps({"name": "login", "status": "failed", "message": "used registered-Secret-4711"}) + "\n"
    )
    [step] = parse_reports([report])
    assert "registered-Secret-4711" not in step.message


def test_ordinary_step_text_is_kept(tmp_path: Path) -> None:
    report = tmp_path / "smoke.jsonl"
    message = "GET /api/health -> 502 after 3 tries (request 123e4567-e89b-12d3-a456-426614174000, build 4f2a9c1)"
    report.write_text(json.dumps({"step": 3, "name": "api health", "status": "failed", "message": message}) + "\n")
    [step] = parse_reports([report])
    assert (step.name, step.message) == ("api health", message)
