"""`rollback-pm report`: exit codes, what goes where, and the usage errors."""

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from rollback_pm.cli import PERIOD_END, PERIOD_START, cli

from .conftest import NOW_ARG

ROOT = Path(__file__).resolve().parents[2]
PERIOD = "2026-04-29T12:00:00Z to 2026-05-20T12:00:00Z"


def run(seeded, *args, config: Path | None = None):
    head = ["--state-dir", str(seeded.state)]
    if config:
        head = ["--config", str(config), *head]
    return CliRunner().invoke(cli, [*head, "report", "--since", "21d", "--now", NOW_ARG, *args], catch_exceptions=False)


@pytest.fixture
def clean(seeded):
    """The seeded ledger without its broken record, and with staging's deadline off in the config."""
    with seeded.ledger() as ledger:
        ledger.db.execute("DELETE FROM incidents WHERE id = ?", (seeded.ids["H"],))
    config = seeded.state.parent / "config.toml"
    config.write_text("[environments.staging]\ndeadline_hours = 0\n")
    seeded.config = config
    return seeded


def test_html_file(clean, tmp_path):
    out = tmp_path / "report.html"
    result = run(clean, "--html", str(out), config=clean.config)
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout == f"wrote {out}: 6 rollback(s), {PERIOD}\n"
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert oct(out.stat().st_mode & 0o777) == "0o644"


def test_json_to_stdout_is_only_json(clean):
    result = run(clean, "--json", config=clean.config)
    assert (result.exit_code, result.stderr) == (0, "")
    out = json.loads(result.stdout)
    assert out["rollbacks"]["count"] == 6
    assert out["postmortems"]["states"]["open"] == 2  # staging has no deadline: D is open, not overdue


def test_the_deadline_setting_decides_on_time(clean):
    late = json.loads(run(clean, "--json", config=clean.config).stdout)["postmortems"]["states"]
    longer = json.loads(run(clean, "--json", "--deadline-hours", "60", config=clean.config).stdout)
    assert (late["done_on_time"], late["done_late"]) == (1, 1)
    # B was done 50h40m after its rollback: on time with 60 hours. The flag beats the config
    # file's [environments.staging] table too (flags > file), so staging's D is now overdue.
    assert longer["postmortems"]["states"] == {
        "done_on_time": 2,
        "done_late": 0,
        "done_time_unknown": 1,
        "open": 1,
        "overdue": 2,
    }


def test_csv_to_stdout_and_json_to_a_file(clean, tmp_path):
    out = tmp_path / "figures.json"
    result = run(clean, "--csv", "--json", str(out), config=clean.config)
    assert result.exit_code == 0
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0][:4] == ["id", "service", "environment", "severity"] and len(rows) == 7
    assert result.stderr == f"wrote {out}: 6 rollback(s), {PERIOD}\n"  # stdout holds the CSV only
    assert json.loads(out.read_text())["rollbacks"]["count"] == 6


def test_a_broken_record_is_listed_and_the_run_is_degraded(seeded, tmp_path):
    result = run(seeded, "--json", str(tmp_path / "r.json"))
    assert result.exit_code == 3
    assert result.stdout == f"wrote {tmp_path / 'r.json'}: 6 rollback(s), {PERIOD}\n"
    assert result.stderr == (
        f"rollback-pm: degraded: incident {seeded.ids['H']} left out: started_at 'yesterday' is not an ISO 8601 "
        "time (e.g. 2026-05-13T08:47:21Z)\n"
    )


def test_an_empty_period(clean, tmp_path):
    out = tmp_path / "r.html"
    result = CliRunner().invoke(
        cli,
        ["--state-dir", str(clean.state), "report", "--since", "2027-01-01T00:00:00Z", "--now", "2027-02-01T00:00:00Z"]
        + ["--html", str(out), "--json"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0
    assert json.loads(result.stdout.split("\n}\n")[0] + "\n}")["rollbacks"]["count"] == 0
    assert result.stderr == f"wrote {out}: no rollbacks in this period, 2027-01-01T00:00:00Z to 2027-02-01T00:00:00Z\n"
    assert "No rollbacks in this period" in out.read_text()


def test_filters_narrow_the_report(clean):
    out = json.loads(run(clean, "--json", "--service", "web", "--env", "staging", config=clean.config).stdout)
    assert [i["id"] for i in out["incidents"]] == [clean.ids["D"]]
    assert out["scope"]["service"] == "web" and out["scope"]["environment"] == "staging"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "rollback-pm: say what to write: --html FILE, --json [FILE] or --csv [FILE] (no FILE: stdout)\n"),
        (("--json", "--csv"), "rollback-pm: --json and --csv cannot both go to stdout; give one of them a FILE\n"),
        (("--html", "-"), "rollback-pm: --html needs a FILE (the page is meant to be opened in a browser)\n"),
        (
            ("--json", "--since", "2026-06-01T00:00:00Z"),
            "rollback-pm: --since 2026-06-01T00:00:00Z is after the end of the period (2026-05-20T12:00:00Z)\n",
        ),
    ],
)
def test_usage_errors(seeded, args, message):
    result = run(seeded, *args)
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", message)


def test_a_state_dir_without_a_ledger_is_bad_input(tmp_path):
    result = CliRunner().invoke(cli, ["--state-dir", str(tmp_path / "typo"), "report", "--json"])
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (
        f"rollback-pm: no ledger at {tmp_path / 'typo' / 'ledger.sqlite3'}; set --state-dir or "
        "ROLLBACK_PM_STATE_DIR to the state dir the hook and check-deadlines use\n"
    )
    assert not (tmp_path / "typo").exists()  # a report creates nothing


def test_an_unwritable_output(seeded, tmp_path):
    result = run(seeded, "--html", str(tmp_path / "missing" / "r.html"))
    assert result.exit_code == 2
    assert result.stderr == (
        f"rollback-pm: cannot write {tmp_path / 'missing' / 'r.html'} (No such file or directory); "
        "give a path in an existing, writable directory\n"
    )
    result = run(seeded, "--csv", str(tmp_path))
    assert (result.exit_code, result.stderr) == (
        2,
        f"rollback-pm: cannot write {tmp_path}: it is a directory; give a file name\n",
    )


def _without_matplotlib(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI in a fresh interpreter where importing matplotlib fails, as without the extra."""
    code = (
        "import sys; sys.modules['matplotlib'] = None\n"
        "from rollback_pm.cli import main\n"
        f"sys.argv = ['rollback-pm', '--state-dir', {str(state)!r}, 'report', '--now', {NOW_ARG!r}, *{list(args)!r}]\n"
        "main()\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)


def test_without_the_report_extra_html_names_it_and_json_still_works(clean, tmp_path):
    html = _without_matplotlib(clean.state, "--html", str(tmp_path / "r.html"))
    assert (html.returncode, html.stdout) == (2, "")
    assert html.stderr == (
        "rollback-pm: the HTML report draws its plots with matplotlib, which is not installed: "
        "pip install 'rollback-pm[report]' (scripts/bootstrap.sh installs it); --json and --csv work without it\n"
    )
    assert not (tmp_path / "r.html").exists()
    figures = _without_matplotlib(clean.state, "--json", "--since", "21d")
    assert figures.returncode == 0, figures.stderr
    assert json.loads(figures.stdout)["rollbacks"]["count"] == 6


@pytest.mark.parametrize(
    ("args", "flag", "problem", "param"),
    [
        (("--json", "--since", "soon"), "--since", "since 'soon' is not a time", PERIOD_START),
        (("--json", "--since", "99999d"), "--since", "since '99999d' is out of range", PERIOD_START),
        (("--json", "--now", "later"), "--now", "now 'later' is not a time", PERIOD_END),
        (
            ("--json", "--now", "1999-12-31T00:00:00Z"),
            "--now",
            "now '1999-12-31T00:00:00Z' is out of range",
            PERIOD_END,
        ),
    ],
)
def test_bad_since_or_now_is_a_usage_error_naming_the_flag_and_range(seeded, args, flag, problem, param):
    """--since and --now take the same grammar and window as every other duration and time."""
    result = run(seeded, *args)
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (
        "Usage: cli report [OPTIONS]\nTry 'cli report --help' for help.\n\n"
        f"Error: Invalid value for '{flag}': {problem} (given by {flag}); allowed: {param.option.allowed()}\n"
    )


def test_help_names_the_extra():
    result = CliRunner().invoke(cli, ["report", "--help"])
    assert result.exit_code == 0
    assert "'rollback-pm[report]'" in result.stdout
    assert "--json [FILE]" in result.stdout and "--since DURATION|TIME" in result.stdout
