"""Typed settings: one grammar per kind of value, bounded, checked at load, named when refused."""

import dataclasses
import math
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from rollback_pm.cli import cli
from rollback_pm.config import (
    BY_NAME,
    OPTIONS,
    Since,
    convert,
    duration_seconds,
    format_duration,
    format_size,
    load_settings,
    size_bytes,
)
from rollback_pm.errors import ConfigError

SHA = "d" * 40
UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
BOUNDED = [o for o in OPTIONS if o.kind in ("int", "float", "bytes", "duration", "time", "since")]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


# -- the grammars ---------------------------------------------------------------------------

numbers = st.decimals(min_value=0, max_value=10**6, places=3, allow_nan=False, allow_infinity=False)


@given(numbers, st.sampled_from(sorted(UNITS)))
def test_duration_grammar(number, unit):
    text = f"{number}{unit}"
    assert duration_seconds(text) == float(number * UNITS[unit])
    assert duration_seconds(f"  {number} {unit.upper()} ") == float(number * UNITS[unit])


@given(st.integers(min_value=0, max_value=10**9))
def test_durations_print_in_the_grammar_they_are_read_in(seconds):
    assert duration_seconds(format_duration(seconds)) == seconds


@given(numbers, st.sampled_from(["", "b", "k", "kb", "KiB", "m", "MB", "mib", "G", "gib", "t", "TiB"]))
def test_size_grammar(number, unit):
    factor = {"": 1, "b": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4}
    lower = unit.lower()
    expected = number * (1024 ** "kmgt".index(lower[0]) * 1024 if "i" in lower else factor[lower.rstrip("b") or ""])
    assert size_bytes(f"{number}{unit}") == int(Decimal(expected))


@given(st.integers(min_value=0, max_value=2**50))
def test_sizes_print_in_the_grammar_they_are_read_in(value):
    assert size_bytes(format_size(value)) == value


# What people type by mistake: huge numbers, exponents, signs, non-finite words, stray units.
near_misses = st.one_of(
    st.text(max_size=30),
    st.from_regex(r"\A[-+]?\d{1,400}(\.\d{0,20})?(e[-+]?\d{1,4})?\s?[smhdkKMGTiIbB]{0,3}\Z"),
    st.sampled_from(["inf", "-inf", "nan", "NaN", "1e400", "999999999d", "9" * 5000, "0x10", "1_000", "∞", "٣s"]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.booleans(),
)


@pytest.mark.parametrize("option", BOUNDED, ids=[o.name for o in BOUNDED])
@given(value=near_misses)
def test_a_value_is_typed_and_in_range_or_refused_by_name(option, value):
    try:
        typed = convert(option, value, option.flag)
    except ConfigError as exc:
        assert option.name in str(exc) and option.flag in str(exc)
        return
    if option.kind in ("int", "float", "bytes", "duration"):
        assert isinstance(typed, (int, float)) and math.isfinite(typed)
        if option.choices:
            assert typed in option.choices
        else:
            assert option.low <= typed <= option.high
    elif option.kind == "time":
        assert datetime(2000, 1, 1, tzinfo=timezone.utc) <= typed <= datetime.now(timezone.utc) + timedelta(days=1)
    else:
        assert isinstance(typed, Since)
        assert typed.at is not None or 0 <= typed.ago <= option.high


def test_since_is_a_duration_or_a_time():
    since = BY_NAME["since"]
    now = datetime(2026, 5, 13, 9, 0, tzinfo=timezone.utc)
    assert convert(since, "1.5h", "--since").start(now) == now - timedelta(minutes=90)
    assert convert(since, "90", "--since").start(now) == now - timedelta(seconds=90)
    assert convert(since, "2026-05-13T08:00:00Z", "--since").start(now) == datetime(2026, 5, 13, 8, tzinfo=timezone.utc)


# -- load: refused by name, before anything runs ----------------------------------------------


@pytest.fixture()
def run(tmp_path, clean_env):
    config = write(tmp_path, "")

    def invoke(*args: str, env: dict | None = None, config_text: str = ""):
        config.write_text(config_text)
        return CliRunner().invoke(
            cli,
            ["--config", str(config), "--state-dir", str(tmp_path / "state"), *args],
            env=env,
            catch_exceptions=False,
        )

    return invoke


def test_since_out_of_range_is_a_usage_error_naming_the_flag(run):
    result = run("collect", "--compose-project", "shop", "--since", "999999999d")
    assert result.exit_code == 2
    assert result.output.startswith("rollback-pm: since '999999999d' is out of range (given by --since); allowed: ")
    assert "a duration up to 3650d" in result.output and "Traceback" not in result.output


def test_infinite_timeout_is_a_usage_error_naming_the_variable(run):
    result = run("collect", "--compose-project", "shop", env={"ROLLBACK_PM_TIMEOUT": "inf"})
    assert result.exit_code == 2
    assert result.output == (
        "rollback-pm: timeout 'inf' is not a duration (given by ROLLBACK_PM_TIMEOUT); allowed: a duration "
        "from 1s to 1d (a number with an optional unit s, m, h or d: 90, 90s, 15m, 1.5h, 1d; no unit means seconds)\n"
    )


def test_zero_timeout_is_refused_naming_the_variable(run):
    """A collection with no time at all is refused where the value is read, naming where it came from."""
    result = run("collect", "--compose-project", "shop", env={"ROLLBACK_PM_TIMEOUT": "0"})
    assert result.exit_code == 2
    assert result.output.startswith(
        "rollback-pm: timeout '0' is out of range (given by ROLLBACK_PM_TIMEOUT); allowed: a duration from 1s to 1d"
    )


def test_huge_number_in_the_file_is_a_usage_error_naming_the_key(run, tmp_path):
    result = run("config", "show", config_text="deadline_hours = 1e400\n")
    assert result.exit_code == 2
    assert result.output == (
        f"rollback-pm: deadline_hours inf is not a finite number (given by key deadline_hours in "
        f"{tmp_path / 'config.toml'}); allowed: a number from 0 to 8784\n"
    )


def test_environment_that_is_not_a_table_is_a_usage_error(run, tmp_path):
    result = run("config", "show", config_text="[environments]\nstaging = 5\n")
    assert result.exit_code == 2
    assert result.output == (
        f"rollback-pm: config file {tmp_path / 'config.toml'}: [environments.staging] must be a table of "
        "settings (e.g. [environments.staging] deadline_hours = 0), not 5\n"
    )


def test_bad_value_in_an_environment_table_names_the_table(run, tmp_path):
    result = run("config", "show", config_text='[environments.staging]\nwarn_before = "soon"\n')
    assert result.exit_code == 2
    assert (
        f"warn_before 'soon' is not a duration (given by key warn_before in [environments.staging] of "
        f"{tmp_path / 'config.toml'}); allowed: a duration from 0s to 366d" in result.output
    )


@pytest.mark.parametrize("when", ["0026-05-13T08:40:00Z", "1999-12-31T23:59:59Z", "2999-01-01T00:00:00Z"])
def test_check_deadlines_now_outside_the_window_is_refused(run, when):
    result = run("check-deadlines", "--now", when)
    assert result.exit_code == 2
    assert "Invalid value for '--now'" in result.output
    assert "a time between 2000-01-01 and now + 1d" in result.output


def test_hook_with_a_year_typo_writes_nothing(run, tmp_path):
    """Rejected at load, before the ledger (or anything else) is touched."""
    result = run(
        "hook",
        "--phase",
        "finalize",
        "--service",
        "shop",
        "--compose-project",
        "shop",
        "--deploy-sha",
        SHA,
        "--rollback-sha",
        "e" * 40,
        "--deployed-at",
        "0026-05-13T08:40:00Z",
    )
    assert result.exit_code == 2
    assert result.output.startswith(
        "rollback-pm: deployed_at '0026-05-13T08:40:00Z' is out of range (given by --deployed-at); "
        "allowed: a time between 2000-01-01 and now + 1d"
    )
    assert not (tmp_path / "state").exists()


# -- frozen, typed, with sources --------------------------------------------------------------


def test_settings_are_frozen_and_typed(tmp_path):
    path = write(
        tmp_path,
        'since = "2h"\nmax_total_bytes = "1.5GB"\ntimeout = 90\nmitigated_at = 2026-05-13T08:47:21Z\n'
        'jira_priorities = ["critical=Highest"]\nseverity = "low"\n',
    )
    settings = load_settings({"label": ("a=b",)}, env={"ROLLBACK_PM_WARN_BEFORE": "1.5h"}, config_path=path)
    assert settings.since == Since(ago=7200.0)
    assert settings.max_total_bytes == 1_500_000_000
    assert settings.timeout == 90.0
    assert settings.warn_before == 5400.0
    assert settings.mitigated_at == datetime(2026, 5, 13, 8, 47, 21, tzinfo=timezone.utc)
    assert settings.jira_priorities == {"Critical": "Highest"}
    assert settings.severity == "Low"
    assert settings.label == ("a=b",)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.timeout = 1.0  # type: ignore[misc]
    rows = {name: (value, source) for name, value, source in settings.rows()}
    assert rows["since"] == ("2h ago", "file")
    assert rows["warn_before"] == ("90m", "env ROLLBACK_PM_WARN_BEFORE")
    assert rows["mitigated_at"] == ("2026-05-13T08:47:21Z", "file")


def test_one_method_resolves_an_environment(tmp_path):
    path = write(
        tmp_path,
        'warn_before = "4h"\n[environments.staging]\nwarn_before = "1h"\ndeadline_hours = 0\nseverity = "Low"\n',
    )
    settings = load_settings({"severity": "High"}, env={}, config_path=path)
    staging = settings.for_environment("staging")
    assert (staging.warn_before, staging.deadline_hours) == (3600.0, 0.0)
    assert staging.source("warn_before") == "config [environments.staging]"
    assert staging.severity == "High"  # a flag wins over the table
    assert settings.for_environment("production") is settings
    assert settings.warn_before == 4 * 3600.0  # the loaded settings are unchanged


def test_ci_working_directory_is_the_repo_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path, "")
    in_ci = load_settings({}, env={"CI": "woodpecker"}, config_path=path)
    assert (in_ci.repo_dir, in_ci.source("repo_dir")) == (tmp_path, "ci CI (the working directory)")
    assert load_settings({}, env={}, config_path=path).repo_dir is None


# -- text from argv and the environment (what fuzzing the CLI found) --------------------------


def test_bytes_that_are_not_utf8_are_refused_naming_where_they_came_from(run):
    """Python hands undecodable argv and environment bytes over as lone surrogates, which no
    ledger, log line or ticket can carry: refused at load, never an internal UnicodeEncodeError."""
    result = run("hook", "--phase", "finalize", "--service", "api\udcff", "--deploy-sha", SHA)
    assert result.exit_code == 2
    assert result.output == (
        "rollback-pm: service 'api\\udcff' holds bytes that are not UTF-8 text (given by --service); allowed: text\n"
    )
    result = run("incidents", "show", "ab\udc80")
    assert result.exit_code == 2
    assert "Error: Invalid value for 'INCIDENT_ID': 'ab\\udc80' holds bytes that are not UTF-8 text" in result.output


def test_a_refused_secret_is_never_echoed(run):
    result = run("config", "show", env={"ROLLBACK_PM_TRACKER_TOKEN": "tok-s3cret\udcff"})
    assert result.exit_code == 2
    assert result.output == (
        "rollback-pm: tracker_token (a secret, not shown) holds bytes that are not UTF-8 text "
        "(given by ROLLBACK_PM_TRACKER_TOKEN); allowed: text\n"
    )


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://[::1", "Invalid IPv6 URL"),
        ("https://u:pw@jira.example:99999/", "Port out of range 0-65535"),
        ("http://[jira]/", "'jira' does not appear to be an IPv4 or IPv6 address"),
    ],
)
def test_a_url_urllib_cannot_take_apart_is_refused_at_load(run, url, problem):
    result = run("config", "show", env={"ROLLBACK_PM_TRACKER_URL": url})
    assert result.exit_code == 2
    shown = url.replace(":pw@", ":***@")
    assert result.output == (
        f"rollback-pm: tracker_url {shown!r} is not a well-formed URL ({problem}) (given by ROLLBACK_PM_TRACKER_URL); "
        "allowed: a URL such as https://host.example.com/path\n"
    )


def test_a_message_is_one_printable_line_whatever_the_value_held(run):
    """A NEL, a newline or an escape sequence in a path is shown escaped, never acted on."""
    result = run(
        "hook", "--phase", "finalize", "--service", "api", "--deploy-sha", SHA,
        env={"ROLLBACK_PM_SMOKE_REPORT": "a\x85b\n\x1b[31mred"},
    )  # fmt: skip
    assert result.exit_code == 2
    assert result.output == (
        "rollback-pm: smoke report a\\x85b\\n\\x1b[31mred: no such file; check the path given to --smoke-report\n"
    )


def test_a_template_name_longer_than_a_file_name_is_refused(run):
    result = run("hook", "--phase", "finalize", "--service", "api", "--deploy-sha", SHA, "--template", "9" * 5000)
    assert result.exit_code == 2
    assert result.output == (
        f"rollback-pm: template '{'9' * 80}…' cannot be looked up (File name too long); "
        "use one of azaion, blameless, sev, finance, or a readable template file\n"
    )
