"""The insights report's follow-up figures, from follow-ups that `followups sync` made and read back."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from click.testing import CliRunner

from rollback_pm.cli import cli
from rollback_pm.config import load_settings
from rollback_pm.followups.run import run_followups
from rollback_pm.ledger import Ledger
from rollback_pm.tickets import open_ticket
from rollback_pm.trackers.file import FileTracker
from tests.followups.drafting import T0, Item, fill, record, write

ROWS = [
    Item("@ana", "Add a migration dry run to CI", "2026-06-01"),
    Item("bo", "Alert on 5xx", "2026-06-20"),
    Item("cy", "Runbook for the cutover", "2026-06-05"),
    Item("dee", "Someday, maybe", "Backlog"),  # no date: no follow-up
]


def test_the_reports_follow_up_figures(tmp_path, clean_env):
    state = tmp_path / "state"
    config = tmp_path / "config.toml"
    config.touch()
    settings = load_settings({"state_dir": str(state)}, env={}, config_path=config)
    tracker = FileTracker(state)
    with Ledger(state) as ledger:
        incident = record(ledger, state)
        open_ticket(ledger, tracker, incident)
        write(incident, fill(Path(incident.draft_path).read_text(), ROWS))
        run = run_followups(ledger, tracker, settings, now=T0, incident_id=incident.id, remind=False)
        assert [r.result for r in run.syncs[0].rows] == ["created", "created", "created", "skipped"]
        path = state / "tickets" / "followups" / "FU-3.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), "status": "closed"}))
        run_followups(ledger, tracker, settings, now=T0 + timedelta(days=20), incident_id=incident.id, remind=False)

    result = CliRunner().invoke(
        cli,
        [
            "--config",
            str(config),
            "--state-dir",
            str(state),
            "report",
            "--json",
            "--since",
            "2026-05-01T00:00:00Z",
            "--now",
            "2026-06-10T00:00:00Z",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    figures = data["followups"]
    assert {k: figures[k] for k in ("total", "open", "past_due", "no_target_date", "closed")} == {
        "total": 3,
        "open": 2,
        "past_due": 1,  # FU-1: open after the end of 2026-06-01
        "no_target_date": 0,
        "closed": 1,
    }
    [record_] = data["incidents"]
    assert record_["followups"] == {"open": 2, "past_due": 1, "closed": 1}
