"""The hook's signals stage: a log it cannot read costs the logs' words, never the run;
what it reads is kept with its bundle and gives the failure signature."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from rollback_pm import hook
from rollback_pm.facts.impact import CONTAINERS, GIVEN
from rollback_pm.ledger import Ledger
from rollback_pm.models import EvidenceFile, Incident, SmokeStep
from tests.signals.bundle import bundle_lines, write_bundle_log

BUNDLE = "rollback-20260513T084721Z"
T0 = datetime(2026, 5, 13, 8, 47, 21, tzinfo=timezone.utc)
TRACE = [
    "Traceback (most recent call last):",
    '  File "/app/main.py", line 3, in <module>',
    "KeyError: 'DATABASE_URL'",
]


def log_file(tmp_path: Path) -> EvidenceFile:
    path = write_bundle_log(tmp_path / f"{BUNDLE}.log", bundle_lines(("api-1", line) for line in TRACE))
    return EvidenceFile(path, "log", "a" * 64, Path(path).stat().st_size, BUNDLE)


def test_a_missing_log_and_an_extractor_bug_are_problems_not_failures(tmp_path, monkeypatch):
    gone = EvidenceFile(str(tmp_path / "rollback-gone.log"), "log", "a" * 64, 1, "rollback-gone")
    reports, problems = hook.signals_stage([gone, log_file(tmp_path)], baseline=None, bad_since=None)
    assert [r.suspected_cause.text for r in reports if r.suspected_cause] == ["KeyError: 'DATABASE_URL'"]
    assert problems == [
        f"signals not read from rollback-gone.log: no bundle log at {gone.path}: give the rollback-<ts>.log of a collection"
    ]

    def broken(*args, **kwargs):
        raise ValueError("a bug")

    monkeypatch.setattr(hook, "extract_bundle", broken)
    reports, problems = hook.signals_stage([log_file(tmp_path)], baseline=None, bad_since=None)
    assert reports == []
    assert problems == [f"signals not read from {BUNDLE}.log: internal error (ValueError); please report it"]


def test_reports_are_kept_with_their_bundle_and_give_the_signature(tmp_path):
    evidence = log_file(tmp_path)
    [report], _ = hook.signals_stage([evidence], baseline=None, bad_since=None)
    with Ledger(tmp_path / "state") as ledger:
        incident, _ = ledger.upsert_incident(
            Incident(
                id="",
                service="shop",
                environment="production",
                deploy_sha="1" * 40,
                pipeline_number="7",
                smoke_steps=[SmokeStep("api health", "failed", step=3, ts=T0)],
                evidence=[evidence],
            )
        )
        chosen = hook.store_signals_stage(ledger, incident, [report])
        assert chosen == report
        assert [r["bundle"] for r in ledger.signal_report_rows(incident.id)] == [BUNDLE]
        signature = ledger.get_signature(incident.id)
        # a rerun with nothing new keeps what was stored
        assert hook.store_signals_stage(ledger, incident, []) == report
    assert signature is not None
    assert (signature.failed_step, signature.templates) == ("api health", ["trace:python:KeyError: <STR>"])
    assert signature.signature == report.signature("api health").key


@pytest.mark.parametrize(("source", "expected"), [(GIVEN, T0), ("woodpecker", T0), (CONTAINERS, None), (None, None)])
def test_the_signals_take_a_deploy_time_only_when_one_was_known(source, expected):
    incident = Incident(id="x", service="s", environment="e", deploy_sha="1" * 40, started_at=T0)
    incident.started_at_source = source
    assert hook.bad_since(incident) == expected
