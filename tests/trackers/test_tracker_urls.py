"""Where each tracker's credentials go: CI_FORGE_URL is the forge's address and only a
Gitea/Forgejo tracker may take it; Jira without a URL is a usage error, never the forge."""

import pytest
from click.testing import CliRunner

from rollback_pm.cli import cli
from rollback_pm.config import load_settings
from rollback_pm.errors import ConfigError
from rollback_pm.trackers import make_tracker

WOODPECKER = {"CI_FORGE_URL": "https://git.example.com", "CI_REPO": "acme/shop", "ROLLBACK_PM_TRACKER_TOKEN": "t0ken-v"}


def settings(tmp_path, **env):
    (tmp_path / "none.toml").write_text("")
    return load_settings(env={**WOODPECKER, **env}, config_path=tmp_path / "none.toml")


def test_jira_never_takes_the_forge_url(tmp_path):
    s = settings(tmp_path, ROLLBACK_PM_TRACKER="jira", ROLLBACK_PM_JIRA_PROJECT="OPS")
    assert s.tracker_url is None and s.forge_url == "https://git.example.com"
    with pytest.raises(ConfigError) as err:
        make_tracker(s)
    assert str(err.value) == (
        "tracker jira needs its URL: set --tracker-url / ROLLBACK_PM_TRACKER_URL "
        "(e.g. https://acme.atlassian.net or your Jira Data Center address)"
    )
    given = settings(
        tmp_path,
        ROLLBACK_PM_TRACKER="jira",
        ROLLBACK_PM_JIRA_PROJECT="OPS",
        ROLLBACK_PM_TRACKER_URL="https://jira.acme.internal",
    )
    assert make_tracker(given).http.base_url == "https://jira.acme.internal"


@pytest.mark.parametrize("kind", ["gitea", "forgejo"])
@pytest.mark.parametrize("forge_type", [None, "gitea", "forgejo"])
def test_forge_trackers_default_to_their_own_forge(tmp_path, kind, forge_type):
    env = {"ROLLBACK_PM_TRACKER": kind}
    if forge_type:
        env["CI_FORGE_TYPE"] = forge_type
    tracker = make_tracker(settings(tmp_path, **env))
    assert tracker.http.base_url == "https://git.example.com/api/v1"
    explicit = make_tracker(settings(tmp_path, ROLLBACK_PM_TRACKER_URL="https://code.example.org", **env))
    assert explicit.http.base_url == "https://code.example.org/api/v1"


def test_a_forge_tracker_ignores_a_forge_of_another_kind(tmp_path):
    s = settings(tmp_path, ROLLBACK_PM_TRACKER="gitea", CI_FORGE_TYPE="github", CI_FORGE_URL="https://github.com")
    with pytest.raises(
        ConfigError, match=r"forge is github \(CI_FORGE_TYPE\).*--tracker-url / ROLLBACK_PM_TRACKER_URL"
    ):
        make_tracker(s)


def test_jira_without_url_exits_2_naming_the_setting(tmp_path, monkeypatch):
    for name, value in {**WOODPECKER, "ROLLBACK_PM_TRACKER": "jira", "ROLLBACK_PM_JIRA_PROJECT": "OPS"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("ROLLBACK_PM_TRACKER_URL", raising=False)
    (tmp_path / "none.toml").write_text("")
    result = CliRunner().invoke(
        cli, ["--config", str(tmp_path / "none.toml"), "--state-dir", str(tmp_path / "state"), "ticket", "flush"]
    )
    assert result.exit_code == 2, result.output
    assert "tracker jira needs its URL: set --tracker-url / ROLLBACK_PM_TRACKER_URL" in result.stderr
    assert "git.example.com" not in result.output
