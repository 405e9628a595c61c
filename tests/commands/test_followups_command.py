"""`rollback-pm followups sync [ID]` and the follow-ups in `incidents show`: exit codes and output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from rollback_pm.cli import cli
from rollback_pm.ledger import Ledger
from rollback_pm.tickets import open_ticket
from rollback_pm.trackers.file import FileTracker
from tests.followups.drafting import Item, fill, record, write

pytestmark = pytest.mark.usefixtures("clean_env")
ROWS = [Item("@ana", "Add a migration dry run to CI", "2099-06-01"), Item("bo", "Alert on 5xx", "someday")]


def run(tmp_path: Path, *args: str):
    config = tmp_path / "config.toml"
    config.touch()
    return CliRunner().invoke(
        cli, ["--config", str(config), "--state-dir", str(tmp_path / "state"), *args], catch_exceptions=False
    )


def drafted(tmp_path: Path, ticket: bool = True) -> tuple[str, str]:
    state = tmp_path / "state"
    with Ledger(state) as ledger:
        incident = record(ledger, state)
        if ticket:
            open_ticket(ledger, FileTracker(state), incident)
        write(incident, fill(Path(incident.draft_path).read_text(), ROWS))
        return incident.id, incident.draft_path or ""


def test_sync_prints_each_row_and_a_rerun_changes_nothing(tmp_path):
    iid, draft = drafted(tmp_path)
    lines = Path(draft).read_text().splitlines()
    first_line = next(i for i, line in enumerate(lines, 1) if ROWS[0].action in line)
    result = run(tmp_path, "followups", "sync", iid[:6])
    assert result.exit_code == 0, result.output
    out = result.stdout.splitlines()
    assert out[:4] == [
        f"{iid}: {draft}",
        f"  line {first_line} created FU-1 (Add a migration dry run to CI)",
        f"  line {first_line + 1} skipped (Alert on 5xx): target date 'someday' is not a date (YYYY-MM-DD)",
        "  ticket keys written into the draft",
    ]
    assert out[4].split() == ["FOLLOW-UP", "INCIDENT", "DUE", "STATE", "OWNER", "ACTION"]
    assert out[5].split() == [
        "FU-1",
        iid,
        "2099-06-01",
        "ok",
        "@ana",
        "Add",
        "a",
        "migration",
        "dry",
        "run",
        "to",
        "CI",
    ]

    again = run(tmp_path, "followups", "sync", "--json")
    assert again.exit_code == 0
    data = json.loads(again.stdout)
    assert [(r["result"], r["ticket"]) for r in data["synced"][0]["rows"]] == [("unchanged", "FU-1"), ("skipped", None)]
    assert [(f["ticket"], f["status"], f["state"]) for f in data["followups"]] == [("FU-1", "open", "ok")]
    assert data["degraded"] == []


def test_sync_is_degraded_while_the_incident_has_no_ticket(tmp_path):
    iid, draft = drafted(tmp_path, ticket=False)
    result = run(tmp_path, "followups", "sync", iid)
    assert result.exit_code == 3
    assert "waiting" in result.stdout
    assert result.stderr.startswith(f"rollback-pm: degraded: {iid} follow-up at {draft}:")
    assert "the incident has no ticket yet" in result.stderr


def test_sync_of_an_unknown_incident_is_bad_input(tmp_path):
    drafted(tmp_path)
    result = run(tmp_path, "followups", "sync", "nope")
    assert result.exit_code == 2
    assert "no incident 'nope' in the ledger" in result.stderr


def test_dry_run_creates_and_writes_nothing(tmp_path):
    iid, draft = drafted(tmp_path)
    before = Path(draft).read_text()
    result = run(tmp_path, "followups", "sync", "--dry-run")
    assert result.exit_code == 0
    assert "would-create" in result.stdout
    assert Path(draft).read_text() == before
    assert not (tmp_path / "state" / "tickets" / "followups").exists()


def test_sync_never_runs_beside_a_cron_run(tmp_path, monkeypatch):
    """Two syncs at once could each find no ticket for a row and both create one: a sync waits
    for check-deadlines' lock, and says so when a run holds it too long."""
    from filelock import FileLock

    from rollback_pm.commands import followups as command

    _, draft = drafted(tmp_path)
    before = Path(draft).read_text()
    monkeypatch.setattr(command, "LOCK_WAIT_S", 0.2)
    held = FileLock(str(tmp_path / "state" / "check-deadlines.lock"))
    with held:
        result = run(tmp_path, "followups", "sync")
        assert result.exit_code == 1
        assert result.stderr == (
            f"rollback-pm: a check-deadlines or followups sync run has held {tmp_path / 'state' / 'check-deadlines.lock'} "
            "for 0s; it syncs the follow-ups itself: run this again when it is done\n"
        )
        assert Path(draft).read_text() == before
        assert run(tmp_path, "followups", "sync", "--dry-run").exit_code == 0  # reads only: no lock needed
        cron = run(tmp_path, "check-deadlines", "--quiet")  # the cron leaves the work to the run holding it
        assert (cron.exit_code, cron.output) == (0, "")
    assert run(tmp_path, "followups", "sync").exit_code == 0
    assert "| FU-1 |" in Path(draft).read_text()


def test_incidents_show_lists_the_follow_ups_with_their_status(tmp_path):
    iid, _ = drafted(tmp_path)
    assert run(tmp_path, "followups", "sync").exit_code == 0
    ticket = tmp_path / "state" / "tickets" / "followups" / "FU-1.json"
    ticket.write_text(json.dumps({**json.loads(ticket.read_text()), "status": "resolved"}))
    assert run(tmp_path, "followups", "sync", iid).exit_code == 0  # reads the state back

    shown = run(tmp_path, "incidents", "show", iid)
    assert shown.exit_code == 0
    lines = shown.stdout.splitlines()
    start = lines.index("follow-ups:")
    assert lines[start + 1].startswith("  closed due 2099-06-01 @ana: Add a migration dry run to CI (FU-1 file://")

    data = json.loads(run(tmp_path, "incidents", "show", iid, "--json").stdout)
    [followup] = data["followups"]
    assert (followup["ticket"], followup["status"], followup["target_date"], followup["owner"]) == (
        "FU-1",
        "closed",
        "2099-06-01",
        "@ana",
    )
    assert followup["closed_at"] is not None and data["damaged"] == []
