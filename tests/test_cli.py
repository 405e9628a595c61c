import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from rollback_pm.cli import cli
from rollback_pm.ledger import Ledger
from tests.test_tickets import incident

GOOD = "c0ffee" + "0" * 34


@pytest.fixture()
def run(tmp_path, monkeypatch):
    for name in list(__import__("os").environ):
        if name.startswith(("ROLLBACK_PM_", "CI_", "PLUGIN_")):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ROLLBACK_PM_CONFIG", str(tmp_path / "none.toml"))
    (tmp_path / "none.toml").write_text("")

    def invoke(*args: str):
        return CliRunner().invoke(cli, ["--state-dir", str(tmp_path / "state"), *args], catch_exceptions=False)

    return invoke


def test_version():
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert result.output == "rollback-pm, version 0.1.0\n"


def test_incidents_list_empty(run):
    result = run("incidents", "list")
    assert (result.exit_code, result.output) == (0, "no incidents\n")


def test_incidents_list_and_show(run, tmp_path):
    with Ledger(tmp_path / "state") as ledger:
        stored, _ = ledger.upsert_incident(incident(tmp_path))
    listed = run("incidents", "list", "--json")
    assert listed.exit_code == 0
    rows = json.loads(listed.output)
    assert [(r["id"], r["service"], r["rollback_sha"]) for r in rows] == [(stored.id, "api", stored.rollback_sha)]
    table = run("incidents", "list").output.splitlines()
    assert table[0].split() == ["ID", "SERVICE", "ENV", "DEPLOY", "ROLLBACK", "MITIGATED", "STATUS", "TICKET"]
    assert table[1].split() == [
        stored.id,
        "api",
        "production",
        "0123456",
        "fedcba9",
        "2026-05-13T08:47:21Z",
        "open",
        "-",
    ]
    shown = run("incidents", "show", stored.id[:6])
    assert shown.exit_code == 0
    assert f"rollback sha: {stored.rollback_sha} (flag)" in shown.output
    assert "   3 failed  api health: 502" in shown.output
    as_json = json.loads(run("incidents", "show", stored.id, "--json").output)
    assert as_json["smoke_steps"][0]["ts"] == "2026-05-13T08:47:21Z"


def test_unknown_incident_is_exit_2_with_a_hint(run):
    result = run("incidents", "show", "deadbeef")
    assert result.exit_code == 2
    assert "no incident 'deadbeef'" in result.output and "rollback-pm incidents list" in result.output


def test_mark_good_validates_the_sha(run, tmp_path):
    ok = run("mark-good", "--service", "api", "--environment", "production", "--sha", GOOD.upper())
    assert (ok.exit_code, ok.output) == (0, f"last good api production: {GOOD}\n")
    with Ledger(tmp_path / "state") as ledger:
        assert ledger.last_good("api", "production") == GOOD
    short = run("mark-good", "--service", "api", "--sha", "c0ffee")
    assert short.exit_code == 2
    assert "is not a full 40-hex commit SHA" in short.output


def test_config_show_masks_the_token_and_names_sources(run, monkeypatch):
    monkeypatch.setenv("ROLLBACK_PM_TRACKER_TOKEN", "tok-123456789")
    monkeypatch.setenv("CI_COMMIT_SHA", GOOD)
    result = run("config", "show")
    assert result.exit_code == 0
    assert "tok-123456789" not in result.output
    lines = {line.split()[0]: line for line in result.output.splitlines()}
    assert lines["tracker_token"].split() == ["tracker_token", "***", "[env", "ROLLBACK_PM_TRACKER_TOKEN]"]
    assert lines["deploy_sha"].split() == ["deploy_sha", GOOD, "[ci", "CI_COMMIT_SHA]"]
    assert lines["state_dir"].endswith("[flag]")


def test_bad_config_value_is_exit_2(run):
    result = run("--log-format", "xml", "incidents", "list")
    assert result.exit_code == 2
    assert result.output == "rollback-pm: log_format must be one of console, json, not 'xml' (given by --log-format)\n"


def test_flush_with_an_empty_outbox(run):
    result = run("ticket", "flush")
    assert (result.exit_code, result.output) == (0, "outbox empty\n")


def test_draft_refuses_human_edits_unless_forced(run, tmp_path):
    with Ledger(tmp_path / "state") as ledger:
        stored, _ = ledger.upsert_incident(incident(tmp_path))
    drafts_dir = tmp_path / "drafts"
    first = run("draft", stored.id, "--drafts-dir", str(drafts_dir))
    assert first.exit_code == 0
    path = drafts_dir / "postmortem_2026-05-13_api-api-health.md"
    assert first.output == f"{path} (created)\n"
    again = run("draft", stored.id, "--drafts-dir", str(drafts_dir))
    assert (again.exit_code, again.output) == (0, f"{path} (unchanged)\n")
    path.write_text(path.read_text() + "\nRoot cause: the migration.\n")
    refused = run("draft", stored.id, "--drafts-dir", str(drafts_dir))
    assert refused.exit_code == 2
    assert "--force" in refused.output and str(path) in refused.output
    assert path.read_text().endswith("Root cause: the migration.\n")
    forced = run("draft", stored.id, "--drafts-dir", str(drafts_dir), "--force")
    assert forced.exit_code == 0
    assert forced.output == f"{path} (forced)\nprevious version kept as {path}.bak\n"
    assert Path(f"{path}.bak").read_text().endswith("Root cause: the migration.\n")


def test_draft_with_another_template(run, tmp_path):
    with Ledger(tmp_path / "state") as ledger:
        stored, _ = ledger.upsert_incident(incident(tmp_path))
    result = run("draft", stored.id, "--drafts-dir", str(tmp_path / "d"), "--template", "finance")
    assert result.exit_code == 0
    assert result.output.strip().split("/")[-1].startswith("POST-MORTEM-2026-05-13-")
    unknown = run("draft", stored.id, "--drafts-dir", str(tmp_path / "d"), "--template", "nope")
    assert unknown.exit_code == 2 and "azaion" in unknown.output
