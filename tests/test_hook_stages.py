"""The hook's stages over one state object; bad input stops a run before the ledger stage."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from rollback_pm.cli import cli
from rollback_pm.config import load_settings
from rollback_pm.hook import HookState, draft_stage, run_hook
from rollback_pm.ledger import Ledger
from rollback_pm.placement import draft_policy

pytestmark = pytest.mark.usefixtures("clean_env")
DEPLOY = "0123456789abcdef0123456789abcdef01234567"
ROLLBACK = "fedcba9876543210fedcba9876543210fedcba98"
SMOKE = '{"step": 3, "name": "api health", "status": "failed", "ts": "2026-05-13T08:46:00Z", "message": "502"}\n'


def finalize(tmp_path: Path, *extra: str):
    (tmp_path / "config.toml").touch()
    return CliRunner().invoke(
        cli,
        [
            "--config",
            str(tmp_path / "config.toml"),
            "--state-dir",
            str(tmp_path / "state"),
            "hook",
            "--phase",
            "finalize",
            "--service",
            "api",
            "--deploy-sha",
            DEPLOY,
            "--mitigated-at",
            "2026-05-13T08:47:21Z",
            "--drafts-dir",
            str(tmp_path / "drafts"),
            *extra,
        ],
        catch_exceptions=False,
    )


def ledger_rows(state: Path) -> dict[str, int]:
    """Rows per table; nothing at all when the ledger was never created."""
    path = state / "ledger.sqlite3"
    if not path.exists():
        return {}
    db = sqlite3.connect(path)
    try:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: n for t in tables if (n := db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0])}
    finally:
        db.close()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--rollback-sha", ROLLBACK, "--template", "nope"), "unknown template 'nope'"),
        (("--rollback-sha", ROLLBACK, "--tracker", "jira"), "tracker jira needs its URL"),
        (("--rollback-sha", "abc123"), "rollback SHA 'abc123' is not a full 40-hex commit SHA"),
        (("--rollback-sha", ROLLBACK, "--smoke-report", "{bad}"), ":1: "),
        (("--rollback-sha", ROLLBACK, "--deployed-at", "0026-05-13T08:40:00Z"), "deployed_at '0026-05-13T08:40:00Z'"),
        (("--rollback-sha", ROLLBACK, "--smoke-report", "{missing}"), "missing.jsonl"),
    ],
    ids=["template", "tracker", "rollback-sha", "smoke-report", "deployed-at", "no-smoke-report"],
)
def test_exit_2_writes_nothing_to_the_ledger(tmp_path, args, message):
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json}\n")
    args = tuple(a.format(bad=bad, missing=tmp_path / "missing.jsonl") for a in args)
    result = finalize(tmp_path, *args)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert ledger_rows(tmp_path / "state") == {}
    assert not (tmp_path / "drafts").exists() and not (tmp_path / "state" / "tickets").exists()


def test_the_same_run_with_good_input_records_everything(tmp_path):
    smoke = tmp_path / "smoke.jsonl"
    smoke.write_text(SMOKE)
    result = finalize(tmp_path, "--rollback-sha", ROLLBACK, "--smoke-report", str(smoke))
    assert result.exit_code == 0, result.output
    rows = ledger_rows(tmp_path / "state")
    assert (rows["incidents"], rows["smoke_steps"], rows["tickets"]) == (1, 1, 1)


def test_each_stage_leaves_its_output_on_the_state(tmp_path):
    smoke = tmp_path / "smoke.jsonl"
    smoke.write_text(SMOKE)
    (tmp_path / "config.toml").touch()
    settings = load_settings(
        {
            "state_dir": str(tmp_path / "state"),
            "service": "api",
            "deploy_sha": DEPLOY,
            "rollback_sha": ROLLBACK,
            "smoke_report": (str(smoke),),
            "mitigated_at": "2026-05-13T08:47:21Z",
            "drafts_dir": str(tmp_path / "drafts"),
            "tracker": "none",
        },
        env={},
        config_path=tmp_path / "config.toml",
    )
    state = run_hook(settings, "finalize")
    assert isinstance(state, HookState)
    assert state.bundle is None  # finalize alone collects nothing
    assert state.incident is not None and state.new_incident
    assert state.incident.failed_step.name == "api health"
    assert state.draft is not None and state.draft.reason == "created"
    assert state.ticket is not None and state.ticket.ticket is None
    assert state.degraded == []

    # The draft stage leaves a human's edits alone and says so.
    state.draft.path.write_text(state.draft.path.read_text() + "\nedited\n")
    with Ledger(tmp_path / "state") as ledger:
        draft, note, _ = draft_stage(ledger, draft_policy(settings), state.incident, 24.0, state.incident.mitigated_at)
    assert draft is None and note.startswith(f"draft kept as edited (draft {state.draft.path} was edited")

    again = run_hook(settings, "finalize")
    assert not again.new_incident and again.incident.id == state.incident.id
    assert again.draft is None and again.draft_note.startswith("draft kept as edited")


def test_times_that_contradict_each_other_are_warned_about_not_refused(tmp_path):
    smoke = tmp_path / "smoke.jsonl"
    smoke.write_text(SMOKE.replace("08:46:00Z", "08:50:00Z"))  # "failed" after the mitigation at 08:47:21
    result = finalize(
        tmp_path, "--rollback-sha", ROLLBACK, "--smoke-report", str(smoke), "--deployed-at", "2026-05-13T08:55:00Z"
    )
    assert result.exit_code == 0, result.output
    with Ledger(tmp_path / "state") as ledger:
        [incident] = ledger.list()
    assert incident.warnings == [
        "the mitigation (2026-05-13T08:47:21Z) is before the deploy (2026-05-13T08:55:00Z, from --deployed-at); "
        "check --mitigated-at and --deployed-at",
        "the first failed smoke step (2026-05-13T08:50:00Z) is before the deploy (2026-05-13T08:55:00Z, "
        "from --deployed-at); check the smoke report's times and --deployed-at",
        "the first failed smoke step (2026-05-13T08:50:00Z) is after the mitigation (2026-05-13T08:47:21Z); "
        "check the smoke report's times and --mitigated-at",
    ]
    draft = Path(incident.draft_path).read_text()
    assert "check --mitigated-at and --deployed-at" in draft


def test_times_in_order_raise_no_warning(tmp_path):
    smoke = tmp_path / "smoke.jsonl"
    smoke.write_text(SMOKE)
    result = finalize(
        tmp_path, "--rollback-sha", ROLLBACK, "--smoke-report", str(smoke), "--deployed-at", "2026-05-13T08:40:00Z"
    )
    assert result.exit_code == 0, result.output
    with Ledger(tmp_path / "state") as ledger:
        [incident] = ledger.list()
    assert incident.warnings == []
