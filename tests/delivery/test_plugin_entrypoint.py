"""hooks/plugin-entrypoint run as Woodpecker runs a plugin: an environment holding only
PATH (the image's), CI_* and PLUGIN_* variables."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

from .conftest import (
    ENTRYPOINT,
    SYSTEM_PATH,
    make_recorder,
    make_rollback_pm,
    needs_modules,
    needs_root,
    world_readable,
)

SHA = "c0ffee" + "0" * 34
CI = {
    "CI": "woodpecker",
    "CI_COMMIT_SHA": SHA,
    "CI_REPO": "acme/shop",
    "CI_REPO_NAME": "shop",
    "CI_PIPELINE_NUMBER": "42",
    "CI_PIPELINE_URL": "https://ci.example.com/repos/7/pipeline/42",
}


def run(env: dict[str, str], cwd: Path, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*prefix, str(ENTRYPOINT)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def env(rpm_dir: Path, tmp_path: Path) -> dict[str, str]:
    """Woodpecker's variables plus the recorder as rollback-pm's hook (ROLLBACK_PM_BIN);
    `rollback-pm config options` on PATH is the real one."""
    return {
        "PATH": f"{rpm_dir}:{SYSTEM_PATH}",
        **CI,
        "ROLLBACK_PM_BIN": str(make_recorder(tmp_path)),
        "FAKE_RECORD": str(tmp_path / "rec"),
        "PLUGIN_DOCKER_HOST": "tcp://127.0.0.1:9",
    }


def recorded(tmp_path: Path, what: str) -> str:
    return (tmp_path / f"rec.{what}").read_text().strip()


def test_settings_map_to_rollback_pm_hook(env, tmp_path):
    result = run({**env, "PLUGIN_PHASE": "finalize", "PLUGIN_SMOKE_REPORT": "smoke.jsonl"}, tmp_path)

    assert result.returncode == 0, result.stderr
    assert recorded(tmp_path, "args").splitlines() == ["hook", "--phase", "finalize"]
    assert result.stderr == "fake rollback-pm: exit 0\n"  # no warning for known settings


def test_unknown_settings_are_named(env, tmp_path):
    result = run({**env, "PLUGIN_TRACKR": "jira", "PLUGIN_TRACKER": "file", "PLUGIN_PHASE": "collect"}, tmp_path)

    assert result.returncode == 0, result.stderr
    assert (
        "rollback-pm plugin: unknown setting 'trackr' (PLUGIN_TRACKR) is ignored; "
        "the settings are listed in docs/configuration.md"
    ) in result.stderr
    assert "'tracker'" not in result.stderr and "'phase'" not in result.stderr


@pytest.mark.parametrize(
    ("settings", "rc", "expected"),
    [
        ({}, "1", 1),  # strict by default: the step shows the failure
        ({"PLUGIN_STRICT": "false"}, "1", 0),
        ({}, "3", 3),
    ],
)
def test_exit_code_is_rollback_pms_unless_not_strict(env, tmp_path, settings, rc, expected):
    result = run({**env, **settings, "FAKE_RC": rc}, tmp_path)
    assert result.returncode == expected


def test_time_limit(env, tmp_path):
    result = run({**env, "FAKE_HANG": "1", "PLUGIN_TIME_LIMIT": "1"}, tmp_path)

    assert result.returncode == 124
    assert "was stopped after the time limit of 1s" in result.stderr


def test_unknown_command(env, tmp_path):
    result = run({**env, "PLUGIN_COMMAND": "rollback"}, tmp_path)

    assert result.returncode == 2
    assert "unknown command 'rollback': use 'hook' (the default) or 'mark-good'" in result.stderr
    assert not (tmp_path / "rec.args").exists()


def test_missing_socket_is_explained(env, tmp_path):
    result = run({**env, "PLUGIN_DOCKER_HOST": f"unix://{tmp_path}/docker.sock"}, tmp_path)

    assert f"no docker socket at {tmp_path}/docker.sock: mount it into this step" in result.stderr


def unix_socket(path: Path, gid: int) -> socket.socket:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    os.chown(path, 0, gid)
    path.chmod(0o660)
    return server


def public_env(public_dir: Path, **extra: str) -> dict[str, str]:
    """For a process running as another uid: everything it runs sits in a world-readable dir."""
    bin_dir = public_dir / "bin"
    make_rollback_pm(bin_dir)
    recorder = make_recorder(bin_dir)
    world_readable(bin_dir)
    records = public_dir / "records"
    records.mkdir()
    records.chmod(0o777)
    return {
        "PATH": f"{bin_dir}:{SYSTEM_PATH}",
        **CI,
        "ROLLBACK_PM_BIN": str(recorder),
        "FAKE_RECORD": str(records / "rec"),
        **extra,
    }


@needs_root()
def test_unusable_socket_is_explained(public_dir):
    sock = unix_socket(public_dir / "docker.sock", gid=4242)
    try:
        env = public_env(public_dir, PLUGIN_DOCKER_HOST=f"unix://{public_dir}/docker.sock")
        result = run(env, public_dir, prefix=("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"))
    finally:
        sock.close()

    assert (
        f"the docker socket {public_dir}/docker.sock belongs to group 4242, and this step "
        "(uid 65534, groups 65534) may not use it. Fix: docker run --group-add 4242"
    ) in result.stderr


@needs_root()
def test_root_joins_the_socket_group_and_drops_to_the_plugin_user(public_dir):
    sock = unix_socket(public_dir / "docker.sock", gid=4242)
    try:
        env = public_env(
            public_dir,
            PLUGIN_DOCKER_HOST=f"unix://{public_dir}/docker.sock",
            ROLLBACK_PM_PLUGIN_USER="65534",
            PLUGIN_PHASE="collect",
        )
        result = run(env, public_dir)
    finally:
        sock.close()

    assert result.returncode == 0, result.stderr
    records = public_dir / "records"
    assert recorded(records, "uid") == "65534"
    assert recorded(records, "groups") == "65534 4242"  # its own group and the socket's, nothing else
    assert recorded(records, "nnp") == "1"  # no way back to root
    assert "may not use it" not in result.stderr


@needs_root()
def test_log_files_keeps_the_log_directory_group_when_dropping_root(public_dir):
    sock = unix_socket(public_dir / "docker.sock", gid=4242)
    logs = public_dir / "containers"  # as Docker keeps it: root-owned, 0710, its group may search it
    logs.mkdir()
    os.chown(logs, 0, 4343)
    logs.chmod(0o710)
    try:
        env = public_env(
            public_dir,
            PLUGIN_DOCKER_HOST=f"unix://{public_dir}/docker.sock",
            ROLLBACK_PM_PLUGIN_USER="65534",
            PLUGIN_PHASE="collect",
            PLUGIN_LOG_FILES=str(logs),
        )
        result = run(env, public_dir)
        groups, nnp = recorded(public_dir / "records", "groups"), recorded(public_dir / "records", "nnp")
        missing = run({**env, "PLUGIN_LOG_FILES": str(public_dir / "not-mounted")}, public_dir)
    finally:
        sock.close()

    assert result.returncode == 0, result.stderr
    assert groups == "65534 4242 4343" and nnp == "1"  # the log directory's group, and no more
    assert "unknown setting" not in result.stderr and "log_files" not in result.stderr
    assert missing.returncode == 0, missing.stderr
    assert f"log_files: {public_dir}/not-mounted is not a directory in this step" in missing.stderr
    assert recorded(public_dir / "records", "groups") == "65534 4242"


@needs_modules("rollback_pm.facts.shas")
def test_mark_good_records_the_pipeline_sha(rpm_dir, tmp_path):
    from rollback_pm.ledger import Ledger

    env = {
        "PATH": f"{rpm_dir}:{SYSTEM_PATH}",
        **CI,
        "PLUGIN_COMMAND": "mark-good",
        "PLUGIN_STATE_DIR": str(tmp_path / "state"),
    }

    result = run(env, tmp_path)

    assert result.returncode == 0, result.stderr
    assert result.stdout == f"last good shop production: {SHA}\n"
    with Ledger(tmp_path / "state") as ledger:
        assert ledger.last_good("shop", "production") == SHA


def test_mark_good_without_a_sha(rpm_dir, tmp_path):
    env = {"PATH": f"{rpm_dir}:{SYSTEM_PATH}", "PLUGIN_COMMAND": "mark-good"}

    result = run(env, tmp_path)

    assert result.returncode == 2
    assert "mark-good needs the deployed SHA" in result.stderr
