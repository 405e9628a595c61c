"""Every rollback-pm option works as a Woodpecker plugin setting (PLUGIN_<NAME>)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from rollback_pm.config import OPTIONS, Option, Since, load_settings

from .conftest import ROOT, SYSTEM_PATH

# What Woodpecker would put in PLUGIN_<NAME> for a setting of each kind, and what it must become.
SAMPLES: dict[str, tuple[str, Any]] = {
    "str": ("plugin-value", "plugin-value"),
    "int": ("512", 512),
    "float": ("7.5", 7.5),
    "bool": ("true", True),
    "bytes": ("16MiB", 16 * 1024 * 1024),
    "list": ("app=api,tier=back", ("app=api", "tier=back")),  # a YAML list arrives comma-joined
    "pairs": ("Critical=Highest,high=High", {"Critical": "Highest", "High": "High"}),
    "path": ("/srv/plugin", Path("/srv/plugin")),
    "duration": ("1.5m", 90.0),
    "time": ("2026-05-13T08:47:21Z", datetime(2026, 5, 13, 8, 47, 21, tzinfo=timezone.utc)),
    "since": ("15m", Since(ago=900.0)),
}
# Options whose values are checked against a set of choices.
CHOICES: dict[str, tuple[str, Any]] = {
    "tracker": ("jira", "jira"),
    "log_format": ("json", "json"),
    "log_level": ("debug", "debug"),
    "smoke_format": ("junit", "junit"),
    "jira_api": ("2", 2),
    "severity": ("high", "High"),
}


def sample(option: Option, tmp_path: Path) -> tuple[str, Any]:
    if option.name == "token_file":  # read when the option is set
        token = tmp_path / "token"
        token.write_text("t0ken-from-file\n")
        return str(token), token
    return CHOICES.get(option.name) or SAMPLES[option.kind]


@pytest.mark.parametrize("option", OPTIONS, ids=[o.name for o in OPTIONS])
def test_every_option_is_a_plugin_setting(option, tmp_path):
    raw, expected = sample(option, tmp_path)
    config = tmp_path / "empty.toml"
    config.write_text("")
    ci = dict.fromkeys(option.ci, "from-ci")  # Woodpecker's own variable loses to the setting

    settings = load_settings({}, env={**ci, f"PLUGIN_{option.name.upper()}": raw}, config_path=config)

    assert getattr(settings, option.name) == expected
    assert settings.source(option.name) == f"plugin PLUGIN_{option.name.upper()}"


def test_woodpecker_environment_end_to_end_through_the_cli(tmp_path):
    """`rollback-pm config show` in an environment holding only what Woodpecker gives a plugin."""
    sha = "d" * 40
    env = {
        "PATH": SYSTEM_PATH,
        "PYTHONPATH": str(ROOT),
        "CI": "woodpecker",
        "CI_COMMIT_SHA": sha,
        "CI_PIPELINE_NUMBER": "42",
        "CI_REPO": "acme/shop",
        "CI_REPO_NAME": "shop",
        "CI_FORGE_URL": "https://git.example.com",
        "CI_PIPELINE_DEPLOY_TARGET": "staging",
        "PLUGIN_LABEL": "app=api,tier=back",
        "PLUGIN_TRACKER": "gitea",
        "PLUGIN_FORGE_REPO": "ops/postmortems",
        "PLUGIN_TRACKER_TOKEN": "wp-secret-token-123",
        "PLUGIN_STATE_DIR": str(tmp_path / "state"),
    }

    result = subprocess.run(
        [sys.executable, "-m", "rollback_pm", "config", "show", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    rows = {row["name"]: (row["value"], row["source"]) for row in json.loads(result.stdout)}
    assert rows["deploy_sha"] == (sha, "ci CI_COMMIT_SHA")
    assert rows["service"] == ("shop", "ci CI_REPO_NAME")
    assert rows["environment"] == ("staging", "ci CI_PIPELINE_DEPLOY_TARGET")
    assert rows["forge_url"] == ("https://git.example.com", "ci CI_FORGE_URL")
    assert rows["tracker_url"] == ("-", "default")  # the gitea tracker uses forge_url
    assert rows["forge_repo"] == ("ops/postmortems", "plugin PLUGIN_FORGE_REPO")
    assert rows["label"] == ("app=api,tier=back", "plugin PLUGIN_LABEL")
    assert rows["tracker_token"] == ("***", "plugin PLUGIN_TRACKER_TOKEN")
    assert "wp-secret-token-123" not in result.stdout + result.stderr
