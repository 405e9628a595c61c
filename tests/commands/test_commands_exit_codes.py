"""Each command is a function that returns its exit code; its output is printed next to it."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from rollback_pm.commands.check_deadlines import check_deadlines
from rollback_pm.commands.config import config_options, config_show
from rollback_pm.commands.hook import hook
from rollback_pm.commands.incidents import incidents_list, incidents_show
from rollback_pm.commands.lint import lint
from rollback_pm.commands.mark_good import mark_good
from rollback_pm.commands.ticket import ticket_flush, ticket_open, ticket_status
from rollback_pm.config import Settings, load_settings
from rollback_pm.errors import EXIT_DEGRADED, EXIT_FAILED, EXIT_OK, IncidentNotFound, UsageError
from rollback_pm.ledger import Ledger
from tests.test_tickets import incident

FIXTURES = Path(__file__).parents[1] / "fixtures" / "drafts"
pytestmark = pytest.mark.usefixtures("clean_env")
DEPLOY = "0123456789abcdef0123456789abcdef01234567"
ROLLBACK = "fedcba9876543210fedcba9876543210fedcba98"


def settings(tmp_path: Path, **flags: object) -> Settings:
    config = tmp_path / "config.toml"
    config.touch()
    return load_settings({"state_dir": str(tmp_path / "state"), **flags}, env={}, config_path=config)


def stored(tmp_path: Path) -> str:
    with Ledger(tmp_path / "state") as ledger:
        found, _ = ledger.upsert_incident(incident(tmp_path))
    return found.id


def test_ticket_commands(tmp_path, capsys):
    iid = stored(tmp_path)
    assert ticket_flush(settings(tmp_path)) == EXIT_OK
    assert capsys.readouterr().out == "outbox empty\n"

    (tmp_path / "state" / "tickets").write_text("not a directory")  # the tracker fails like a down server
    assert ticket_open(settings(tmp_path), iid) == EXIT_DEGRADED
    assert "ticket queued in the outbox" in capsys.readouterr().out
    assert ticket_flush(settings(tmp_path)) == EXIT_DEGRADED
    assert capsys.readouterr().out.startswith(f"still queued {iid}: open: ")

    (tmp_path / "state" / "tickets").unlink()
    assert ticket_flush(settings(tmp_path)) == EXIT_OK
    assert capsys.readouterr().out.startswith(f"sent {iid}: created PM-{iid} ")
    assert ticket_status(settings(tmp_path), iid) == EXIT_OK
    assert capsys.readouterr().out.startswith(f"PM-{iid} open file://")


def test_incidents_and_config_commands(tmp_path, capsys):
    assert incidents_list(settings(tmp_path)) == EXIT_OK
    assert capsys.readouterr().out == "no incidents\n"
    iid = stored(tmp_path)
    assert incidents_list(settings(tmp_path), as_json=True) == EXIT_OK
    assert [row["id"] for row in json.loads(capsys.readouterr().out)] == [iid]
    assert incidents_show(settings(tmp_path), iid[:6]) == EXIT_OK
    assert capsys.readouterr().out.startswith(f"id:           {iid}\n")
    with pytest.raises(IncidentNotFound):  # a typed error: cli.py makes it exit 2
        incidents_show(settings(tmp_path), "nope")

    assert config_show(settings(tmp_path), as_json=True) == EXIT_OK
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["state_dir"] == {"name": "state_dir", "value": str(tmp_path / "state"), "source": "flag"}
    assert config_options() == EXIT_OK
    assert capsys.readouterr().out.startswith("| option | flag |")


def test_mark_good(tmp_path, capsys):
    assert mark_good(settings(tmp_path, service="api"), ROLLBACK) == EXIT_OK
    assert capsys.readouterr().out == f"last good api production: {ROLLBACK}\n"
    with pytest.raises(UsageError, match="mark-good needs --service"):
        mark_good(settings(tmp_path), ROLLBACK)


def test_lint_is_0_when_complete_and_1_with_findings(tmp_path, capsys):
    done = FIXTURES / "azaion_complete.md"
    now = datetime(2026, 5, 13, 12, tzinfo=timezone.utc)
    assert lint([str(done)], now=now) == EXIT_OK
    assert capsys.readouterr().out == "1 file(s) complete\n"
    todo = tmp_path / "todo.md"
    todo.write_text(done.read_text().replace("## What was lucky", "## What was lucky\n\n[TODO: luck]"))
    assert lint([str(todo)], now=now) == EXIT_FAILED
    assert "placeholder: placeholder left: [TODO: luck]" in capsys.readouterr().out


def test_hook_and_check_deadlines(tmp_path, capsys):
    run = settings(
        tmp_path,
        service="api",
        deploy_sha=DEPLOY,
        rollback_sha=ROLLBACK,
        mitigated_at="2026-05-13T08:47:21Z",
        drafts_dir=str(tmp_path / "drafts"),
    )
    assert hook(run, phase="finalize") == EXIT_OK
    out = capsys.readouterr().out
    assert out.startswith("incident: ") and "ticket: PM-" in out

    on_time = datetime(2026, 5, 13, 9, tzinfo=timezone.utc)
    assert check_deadlines(settings(tmp_path), now=on_time, dry_run=True, quiet=True) == EXIT_OK
    assert capsys.readouterr().out == ""
    late = datetime(2026, 5, 15, 9, tzinfo=timezone.utc)
    assert check_deadlines(settings(tmp_path), now=late, dry_run=True, as_json=True) == EXIT_FAILED
    assert [row["state"] for row in json.loads(capsys.readouterr().out)["incidents"]] == ["overdue"]
