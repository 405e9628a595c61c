"""Signal reports in the ledger: kept per bundle, read back checked, the useful one chosen."""

from __future__ import annotations

import json
from pathlib import Path

from rollback_pm.ledger import Ledger
from rollback_pm.models import Incident
from rollback_pm.signals import ContainerContext, SignalReport, extract, stored
from tests.signals.bundle import bundle_lines, write_bundle_log

INCIDENT = "abc123abc123"
TRACE = [
    "Traceback (most recent call last):",
    '  File "/app/main.py", line 3, in <module>',
    "KeyError: 'DATABASE_URL'",
]


def _report(tmp_path: Path, name: str, lines: list[str], *, exit_code: int | None = 1) -> SignalReport:
    path = write_bundle_log(tmp_path / name, bundle_lines(("api-1", line) for line in lines))
    context = ContainerContext("api-1", status="exited", exit_code=exit_code)
    return extract(path, contexts=[context])


def test_a_report_round_trips_through_the_ledger(tmp_path: Path) -> None:
    report = _report(tmp_path, "rollback-20260513T084721Z.log", ["INFO starting", *TRACE])
    with Ledger(tmp_path / "state") as ledger:
        incident, _ = ledger.upsert_incident(
            Incident(id="", service="shop", environment="production", deploy_sha="1" * 40, pipeline_number="7")
        )
        other, _ = ledger.upsert_incident(
            Incident(id="", service="shop", environment="production", deploy_sha="3" * 40, pipeline_number="8")
        )
        ledger.set_signal_report(incident.id, "rollback-20260513T084721Z", report.to_dict())
        ledger.set_signal_report(incident.id, "rollback-20260513T084721Z", report.to_dict())  # a rerun replaces it
        rows = ledger.signal_report_rows(incident.id)
        assert ledger.signal_report_rows(other.id) == []
    assert [r["bundle"] for r in rows] == ["rollback-20260513T084721Z"]
    chosen = stored.choose(rows, INCIDENT)
    assert chosen == report
    assert chosen is not None and chosen.suspected_cause is not None
    assert chosen.suspected_cause.text == "KeyError: 'DATABASE_URL'"


def test_the_newest_report_that_found_something_is_chosen(tmp_path: Path) -> None:
    failing = _report(tmp_path, "rollback-20260513T084721Z.log", TRACE)
    # a retried collection that only caught the healthy replacement: nothing to say
    quiet = _report(tmp_path, "rollback-20260513T085000Z.log", ["INFO serving"], exit_code=None)
    rows = [
        {"bundle": "rollback-20260513T084721Z", "report_json": json.dumps(failing.to_dict())},
        {"bundle": "rollback-20260513T085000Z", "report_json": json.dumps(quiet.to_dict())},
    ]
    assert stored.choose(rows, INCIDENT) == failing
    assert stored.choose(rows[1:], INCIDENT) == quiet  # nothing useful at all: the newest


def test_a_damaged_report_is_left_out_not_raised(tmp_path: Path) -> None:
    good = _report(tmp_path, "rollback-20260513T084721Z.log", TRACE)
    data = good.to_dict()
    broken_lines = json.loads(json.dumps(data))
    broken_lines["containers"][0]["signals"][0]["ref"]["first"] = 0
    wrong_type = json.loads(json.dumps(data))
    wrong_type["containers"] = "api-1"
    rows = [
        {"bundle": "a", "report_json": json.dumps(data)},
        {"bundle": "b", "report_json": "{not json"},
        {"bundle": "c", "report_json": json.dumps([1, 2])},
        {"bundle": "d", "report_json": json.dumps(broken_lines)},
        {"bundle": "e", "report_json": json.dumps(wrong_type)},
    ]
    assert stored.choose(rows, INCIDENT) == good
    assert stored.choose(rows[1:], INCIDENT) is None
