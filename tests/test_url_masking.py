"""A password inside a URL setting never shows: not in `config show` (table or JSON), not
in a log line (console or JSON format)."""

import io
import json

import pytest
from click.testing import CliRunner

from rollback_pm import log as rlog
from rollback_pm.cli import cli

URLS = {
    "tracker_url": ("https://jira-bot:tr4cker-pw@jira.example.com", "https://jira-bot:***@jira.example.com"),
    "docker_host": ("tcp://admin:d0cker-pw@docker.example.com:2376", "tcp://admin:***@docker.example.com:2376"),
    "woodpecker_url": ("https://ci:w00dp-pw@ci.example.com/", "https://ci:***@ci.example.com/"),
    "forge_url": ("https://git:f0rge@pw@git.example.com", "https://git:***@git.example.com"),
}
WEBHOOK = "https://hooks:w3bh00k-pw@chat.example.com/services/T0/B0/x"


@pytest.fixture
def env(tmp_path, monkeypatch):
    for name in list(__import__("os").environ):
        if name.startswith(("ROLLBACK_PM_", "CI_", "PLUGIN_")):
            monkeypatch.delenv(name, raising=False)
    (tmp_path / "none.toml").write_text("")
    monkeypatch.setenv("ROLLBACK_PM_CONFIG", str(tmp_path / "none.toml"))
    for name, (url, _) in URLS.items():
        monkeypatch.setenv("CI_FORGE_URL" if name == "forge_url" else f"ROLLBACK_PM_{name.upper()}", url)
    monkeypatch.setenv("ROLLBACK_PM_WEBHOOK_URL", WEBHOOK)


SECRETS = ("tr4cker-pw", "d0cker-pw", "w00dp-pw", "f0rge", "w3bh00k-pw")


def test_config_show_masks_url_passwords(env):
    table = CliRunner().invoke(cli, ["config", "show"])
    as_json = CliRunner().invoke(cli, ["config", "show", "--json"])
    assert table.exit_code == as_json.exit_code == 0, table.output
    rows = {r["name"]: r["value"] for r in json.loads(as_json.stdout)}
    for name, (_, shown) in URLS.items():
        assert rows[name] == shown
        assert any(line.split()[:2] == [name, shown] for line in table.stdout.splitlines()), name
    assert rows["webhook_url"] == "***"
    for secret in SECRETS:
        assert secret not in table.output + as_json.output


@pytest.mark.parametrize("fmt", ["console", "json"])
def test_log_lines_mask_url_passwords(fmt):
    stream = io.StringIO()
    rlog.configure(log_format=fmt, level="debug", stream=stream)
    try:
        logger = rlog.get_logger("test")
        logger.warning(f"cannot reach {URLS['docker_host'][0]}", url=URLS["tracker_url"][0])
        logger.info("nested", urls=[URLS["woodpecker_url"][0]], detail={"where": URLS["forge_url"][0]})
        logger.error("failed", exc_info=ValueError(f"GET {URLS['tracker_url'][0]}/rest failed"))
    finally:
        rlog.configure()
    out = stream.getvalue()
    for secret in SECRETS:
        assert secret not in out
    for _, shown in URLS.values():
        assert shown in out
    if fmt == "json":
        assert [json.loads(line)["event"] for line in out.splitlines()][:2] == [
            "cannot reach tcp://admin:***@docker.example.com:2376",
            "nested",
        ]
