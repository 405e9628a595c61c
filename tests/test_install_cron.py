import os
import pwd
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "install-cron.sh"
MARKER = "# Managed by rollback-pm install-cron.sh; edits are overwritten, remove with --uninstall."


@pytest.fixture
def host(tmp_path):
    """A fake root: cron.d and systemd dirs, a state dir, an env file and a rollback-pm launcher."""
    (tmp_path / "state").mkdir()
    env_file = tmp_path / "env"
    env_file.write_text("ROLLBACK_PM_TRACKER=file\n")
    env_file.chmod(0o600)
    config = tmp_path / "config.toml"
    config.write_text("")
    launcher = tmp_path / "rollback-pm"  # runs this worktree's package, as the installed script would
    launcher.write_text(f'#!/bin/sh\nPYTHONPATH={ROOT} exec {sys.executable} -m rollback_pm "$@"\n')
    launcher.chmod(0o755)
    return tmp_path


def install(host: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            "bash",
            str(SCRIPT),
            "--cron-dir",
            str(host / "cron.d"),
            "--systemd-dir",
            str(host / "systemd"),
            "--state-dir",
            str(host / "state"),
            "--env-file",
            str(host / "env"),
            "--config",
            str(host / "config.toml"),
            "--bin",
            str(host / "rollback-pm"),
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


def cron_text(host: Path, every: int = 15) -> str:
    return (
        f"{MARKER}\n"
        f"# Runs rollback-pm check-deadlines every {every} minutes as root: warns before and escalates\n"
        "# once after the postmortem deadline; prints (and cron mails) only what it did.\n"
        "SHELL=/bin/sh\n"
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
        f"*/{every} * * * * root set -a; [ ! -e '{host}/env' ] || . '{host}/env'; set +a; "
        f"exec '{host}/rollback-pm' --config '{host}/config.toml' --state-dir '{host}/state' "
        "check-deadlines --quiet\n"
    )


def entries(host: Path) -> list[str]:
    """Every schedule line in every file of the fake cron.d."""
    lines = []
    for path in sorted((host / "cron.d").glob("*")):
        lines += [line for line in path.read_text().splitlines() if line and line[0] in "*0123456789"]
    return lines


def test_install_twice_leaves_one_entry(host):
    first = install(host)
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines()[-1] == f"install-cron: wrote {host}/cron.d/rollback-pm"
    second = install(host)
    assert second.returncode == 0
    assert second.stdout.splitlines() == [f"install-cron: unchanged {host}/cron.d/rollback-pm"]
    assert [p.name for p in (host / "cron.d").iterdir()] == ["rollback-pm"]
    assert (host / "cron.d" / "rollback-pm").read_text() == cron_text(host)
    assert oct((host / "cron.d" / "rollback-pm").stat().st_mode & 0o777) == "0o644"
    assert len(entries(host)) == 1


def test_changed_options_replace_the_entry(host):
    install(host)
    changed = install(host, "--every", "5", "--mailto", "oncall@example.com")
    assert changed.returncode == 0
    text = (host / "cron.d" / "rollback-pm").read_text()
    assert "MAILTO=oncall@example.com\n*/5 * * * * root " in text
    assert len(entries(host)) == 1


def test_the_entry_runs_check_deadlines_with_the_env_file(host):
    install(host)
    [line] = entries(host)
    fields = line.split(" ", 6)
    assert fields[:6] == ["*/15", "*", "*", "*", "*", "root"]
    command = fields[6]
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("ROLLBACK_PM_", "PLUGIN_", "CI_"))}
    ok = subprocess.run(["/bin/sh", "-c", command], env=clean, capture_output=True, text=True, timeout=60)
    assert (ok.returncode, ok.stdout, ok.stderr) == (0, "", "")  # quiet when all is well
    assert (host / "state" / "ledger.sqlite3").is_file()
    (host / "env").write_text("ROLLBACK_PM_TRACKER=bogus\n")  # proves the job reads the env file
    bad = subprocess.run(["/bin/sh", "-c", command], env=clean, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2
    assert bad.stderr == (
        "rollback-pm: tracker must be one of file, jira, gitea, forgejo, none, not 'bogus' (given by ROLLBACK_PM_TRACKER)\n"
    )


def test_uninstall_removes_and_is_idempotent(host):
    install(host)
    gone = install(host, "--uninstall")
    assert (gone.returncode, gone.stdout) == (0, f"install-cron: removed {host}/cron.d/rollback-pm\n")
    assert list((host / "cron.d").iterdir()) == []
    again = install(host, "--uninstall")
    assert (again.returncode, again.stdout) == (0, "install-cron: nothing to remove\n")


def test_a_file_it_did_not_write_is_left_alone(host):
    (host / "cron.d").mkdir()
    foreign = host / "cron.d" / "rollback-pm"
    foreign.write_text("0 * * * * root /usr/local/bin/something-else\n")
    refused = install(host)
    assert refused.returncode == 1
    assert refused.stderr == (
        f"install-cron: {foreign} exists and was not written by install-cron.sh; move it away or give --force\n"
    )
    assert (
        install(host, "--uninstall").stdout == f"install-cron: left {foreign} alone: it was not written by "
        "install-cron.sh\n"
    )
    assert foreign.read_text() == "0 * * * * root /usr/local/bin/something-else\n"
    assert install(host, "--force").returncode == 0
    assert foreign.read_text() == cron_text(host)


def test_systemd_timer_instead_of_cron(host):
    install(host)
    first = install(host, "--systemd", "--no-enable")
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == [
        f"install-cron: wrote {host}/systemd/rollback-pm-deadlines.service",
        f"install-cron: wrote {host}/systemd/rollback-pm-deadlines.timer",
        f"install-cron: removed {host}/cron.d/rollback-pm",  # never two schedulers
        "install-cron: to start it: systemctl daemon-reload && systemctl enable --now rollback-pm-deadlines.timer",
    ]
    service = (host / "systemd" / "rollback-pm-deadlines.service").read_text()
    assert service == (
        f"{MARKER}\n[Unit]\nDescription=rollback-pm check-deadlines: the postmortem deadline clock\n"
        "After=network-online.target\nWants=network-online.target\n\n[Service]\nType=oneshot\nUser=root\n"
        f"EnvironmentFile=-{host}/env\n"
        f"ExecStart='{host}/rollback-pm' --config '{host}/config.toml' --state-dir '{host}/state' "
        "check-deadlines --quiet\n"
    )
    timer = (host / "systemd" / "rollback-pm-deadlines.timer").read_text()
    assert "OnCalendar=*:0/15\nPersistent=true\n" in timer and "WantedBy=timers.target" in timer
    second = install(host, "--systemd", "--no-enable")
    assert second.stdout.splitlines()[:2] == [
        f"install-cron: unchanged {host}/systemd/rollback-pm-deadlines.service",
        f"install-cron: unchanged {host}/systemd/rollback-pm-deadlines.timer",
    ]
    assert entries(host) == []
    install(host, "--uninstall", "--no-enable")
    assert list((host / "systemd").iterdir()) == []


@pytest.mark.parametrize(
    "extra, message",
    [
        (("--user", "no-such-user-rpm"), "user 'no-such-user-rpm' does not exist; give --user (the owner of {state})"),
        (("--every", "0"), "--every must be whole minutes between 1 and 59, not '0'"),
        (("--every", "15m"), "--every must be whole minutes between 1 and 59, not '15m'"),
        (
            ("--bin", "/nonexistent/rollback-pm"),
            "/nonexistent/rollback-pm is not an executable; give --bin /path/to/rollback-pm",
        ),
        (
            ("--state-dir", "/srv/50%"),
            "'/srv/50%': paths and addresses with quotes, backslashes, % or spaces cannot go into a cron or unit file",
        ),
    ],
)
def test_bad_options_are_refused(host, extra, message):
    result = install(host, *extra)
    assert result.returncode == 2
    assert result.stderr == f"install-cron: {message.format(state=host / 'state')}\n"
    assert not (host / "cron.d").exists()


def test_default_user_is_the_state_dir_owner_and_warnings(host):
    if os.geteuid() != 0:
        pytest.skip("needs root to give the state dir to another user")
    daemon = pwd.getpwnam("daemon")
    os.chown(host / "state", daemon.pw_uid, daemon.pw_gid)
    (host / "env").chmod(0o644)
    result = install(host)
    assert result.stdout.splitlines() == [
        f"install-cron: warning: {host}/env is readable by everyone (mode 644); it holds secrets: chmod 600 it",
        f"install-cron: wrote {host}/cron.d/rollback-pm",
    ]
    assert entries(host)[0].split(" ")[5] == "daemon"
    other = install(host, "--user", "nobody")
    assert (
        f"install-cron: warning: {host}/state is owned by daemon, not nobody; the job needs to write its "
        "ledger and lock there" in other.stdout.splitlines()
    )
    assert entries(host)[0].split(" ")[5] == "nobody"
