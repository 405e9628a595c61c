from pathlib import Path

import pytest

from rollback_pm.config import load_settings, options_markdown, size_bytes
from rollback_pm.errors import ConfigError

SHA_A = "a" * 40
SHA_B = "b" * 40


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("flags", "env", "file_text", "expected", "source"),
    [
        ({}, {}, "", "production", "default"),
        ({}, {}, 'environment = "staging"', "staging", "file"),
        ({}, {"CI_PIPELINE_DEPLOY_TARGET": "qa"}, 'environment = "staging"', "qa", "ci CI_PIPELINE_DEPLOY_TARGET"),
        (
            {},
            {"PLUGIN_ENVIRONMENT": "plug", "CI_PIPELINE_DEPLOY_TARGET": "qa"},
            "",
            "plug",
            "plugin PLUGIN_ENVIRONMENT",
        ),
        (
            {},
            {"ROLLBACK_PM_ENVIRONMENT": "envvar", "PLUGIN_ENVIRONMENT": "plug"},
            'environment = "f"',
            "envvar",
            "env ROLLBACK_PM_ENVIRONMENT",
        ),
        ({"environment": "flag"}, {"ROLLBACK_PM_ENVIRONMENT": "envvar"}, 'environment = "f"', "flag", "flag"),
    ],
)
def test_precedence(tmp_path, flags, env, file_text, expected, source):
    settings = load_settings(flags, env=env, config_path=write(tmp_path, file_text))
    assert settings.environment == expected
    assert settings.source("environment") == source


def test_ci_commit_sha_is_the_deploy_sha_fallback(tmp_path):
    settings = load_settings({}, env={"CI_COMMIT_SHA": SHA_A}, config_path=write(tmp_path, ""))
    assert settings.deploy_sha == SHA_A
    explicit = load_settings(
        {}, env={"CI_COMMIT_SHA": SHA_A, "ROLLBACK_PM_DEPLOY_SHA": SHA_B}, config_path=write(tmp_path, "")
    )
    assert explicit.deploy_sha == SHA_B


def test_plugin_lists_are_comma_separated(tmp_path):
    settings = load_settings({}, env={"PLUGIN_LABEL": "app=web, tier=front"}, config_path=write(tmp_path, ""))
    assert settings.label == ("app=web", "tier=front")


def test_sizes_and_durations(tmp_path):
    settings = load_settings(
        {"max_bytes_per_container": "2MiB"}, env={"ROLLBACK_PM_WARN_BEFORE": "90m"}, config_path=write(tmp_path, "")
    )
    assert settings.max_bytes_per_container == 2 * 1024 * 1024
    assert settings.warn_before == 5400.0
    assert size_bytes("1G") == 1_000_000_000


def test_unknown_key_names_the_key(tmp_path):
    path = write(tmp_path, 'trackr = "jira"')
    with pytest.raises(ConfigError, match="unknown key 'trackr'"):
        load_settings({}, env={}, config_path=path)


def test_bad_toml_names_the_file(tmp_path):
    path = write(tmp_path, "tracker = ")
    with pytest.raises(ConfigError, match=f"config file {path} is not valid TOML"):
        load_settings({}, env={}, config_path=path)


def test_missing_explicit_config_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings({}, env={}, config_path=tmp_path / "nope.toml")


def test_invalid_choice(tmp_path):
    with pytest.raises(ConfigError, match="tracker must be one of file, jira, gitea, forgejo, none, not 'jora'"):
        load_settings({"tracker": "jora"}, env={}, config_path=write(tmp_path, ""))


def test_per_environment_override(tmp_path):
    path = write(tmp_path, "deadline_hours = 24\n[environments.staging]\ndeadline_hours = 0\n")
    settings = load_settings({}, env={}, config_path=path)
    assert settings.for_environment("staging").deadline_hours == 0.0
    assert settings.for_environment("production").deadline_hours == 24.0


def test_token_file_and_masked_show(tmp_path):
    token = tmp_path / "token"
    token.write_text("s3cr3t-token-value\n")
    settings = load_settings({"token_file": str(token)}, env={}, config_path=write(tmp_path, ""))
    assert settings.tracker_token == "s3cr3t-token-value"
    rows = {name: (value, source) for name, value, source in settings.rows()}
    assert rows["tracker_token"] == ("***", f"token file {token}")


def test_empty_token_file_is_a_config_error(tmp_path):
    token = tmp_path / "token"
    token.write_text("\n")
    with pytest.raises(ConfigError, match="is empty; fix --token-file"):
        load_settings({"token_file": str(token)}, env={}, config_path=write(tmp_path, ""))


def test_options_markdown_lists_every_option():
    table = options_markdown()
    assert "| `state_dir` | `--state-dir` | `ROLLBACK_PM_STATE_DIR` | `state_dir` (`PLUGIN_STATE_DIR`)" in table
    assert "`CI_COMMIT_SHA`" in table
