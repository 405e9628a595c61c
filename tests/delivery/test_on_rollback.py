"""hooks/on-rollback inside a simulated deploy script: never fails the deploy unless --strict,
never hangs it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import ON_ROLLBACK, SYSTEM_PATH, make_recorder, write_exe

DEPLOY_SCRIPT = """#!/bin/sh
# A deploy script as teams write them: stop at the first failing command.
set -eu
echo "deploy: new version is live"
echo "smoke: step 3 failed"
{hook} collect
echo "deploy: rolling back"
{hook} finalize --smoke-report smoke.jsonl
echo "deploy: rolled back, script done"
"""


def deploy_script(tmp_path: Path) -> Path:
    return write_exe(tmp_path / "deploy.sh", DEPLOY_SCRIPT.format(hook=ON_ROLLBACK))


def run(cmd: list[str], env: dict[str, str], cwd: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, env=env, cwd=cwd, input=stdin, capture_output=True, text=True, timeout=120)


def script_lines(stdout: str) -> list[str]:
    """The deploy script's own lines (rollback-pm's output passes through too)."""
    return [line for line in stdout.splitlines() if line.startswith(("deploy:", "smoke:"))]


def real_env(rpm_dir: Path, tmp_path: Path, **extra: str) -> dict[str, str]:
    """The real rollback-pm, with settings that cannot work: no container selection."""
    return {
        "PATH": f"{rpm_dir}:{SYSTEM_PATH}",
        "ROLLBACK_PM_STATE_DIR": str(tmp_path / "state"),
        "ROLLBACK_PM_EVIDENCE_DIR": str(tmp_path / "evidence"),
        "ROLLBACK_PM_SERVICE": "shop",
        "ROLLBACK_PM_DEPLOY_SHA": "a" * 40,
        **extra,
    }


def test_deploy_script_goes_on_when_the_postmortem_fails(rpm_dir, tmp_path):
    env = real_env(rpm_dir, tmp_path)
    direct = run([str(rpm_dir / "rollback-pm"), "hook", "--phase", "collect"], env, tmp_path)
    assert direct.returncode not in (0, 3), direct.stderr  # this setup really fails

    result = run([str(deploy_script(tmp_path))], env, tmp_path)

    assert result.returncode == 0, result.stderr
    assert script_lines(result.stdout) == [
        "deploy: new version is live",
        "smoke: step 3 failed",
        "deploy: rolling back",
        "deploy: rolled back, script done",
    ]
    assert f"on-rollback: rollback-pm hook --phase collect failed (exit {direct.returncode})" in result.stderr
    assert "on-rollback: rollback-pm hook --phase finalize failed" in result.stderr
    assert result.stderr.count("the deploy continues (exit 0)") == 2


def test_strict_passes_rollback_pms_exit_code_on(rpm_dir, tmp_path):
    env = real_env(rpm_dir, tmp_path)
    direct = run([str(rpm_dir / "rollback-pm"), "hook", "--phase", "collect"], env, tmp_path)

    result = run([str(deploy_script(tmp_path))], {**env, "ROLLBACK_PM_STRICT": "1"}, tmp_path)

    assert result.returncode == direct.returncode != 0
    assert "deploy: rolling back" not in result.stdout  # set -e stopped the script at the hook
    assert "the deploy continues" not in result.stderr


@pytest.fixture
def fake(tmp_path: Path) -> dict[str, str]:
    """Environment running the recorder as rollback-pm (the tests are about the script)."""
    return {"PATH": SYSTEM_PATH, "ROLLBACK_PM_BIN": str(make_recorder(tmp_path)), "FAKE_RECORD": str(tmp_path / "rec")}


def test_arguments_and_stdin(fake, tmp_path):
    result = run(
        [str(ON_ROLLBACK), "finalize", "--smoke-report", "smoke.jsonl", "--owner", "@ana b"],
        fake,
        tmp_path,
        stdin="the deploy script's own input\n",
    )

    assert result.returncode == 0, result.stderr
    assert (tmp_path / "rec.args").read_text().splitlines() == [
        "hook",
        "--phase",
        "finalize",
        "--smoke-report",
        "smoke.jsonl",
        "--owner",
        "@ana b",
    ]
    assert (tmp_path / "rec.stdin").read_text() == ""  # never eats the deploy script's input


@pytest.mark.parametrize(
    ("rc", "strict", "expected", "says"),
    [
        (0, False, 0, None),
        (1, False, 0, "failed (exit 1)"),
        (1, True, 1, "failed (exit 1)"),
        (2, True, 2, "failed (exit 2)"),
        (3, False, 0, "finished degraded (exit 3)"),
        (3, True, 3, "finished degraded (exit 3)"),
    ],
)
def test_exit_policy(fake, tmp_path, rc, strict, expected, says):
    args = ["--strict"] if strict else []
    result = run([str(ON_ROLLBACK), *args, "both"], {**fake, "FAKE_RC": str(rc)}, tmp_path)

    assert result.returncode == expected
    if says is None:
        assert "on-rollback:" not in result.stderr
    else:
        assert f"on-rollback: rollback-pm hook --phase both {says}" in result.stderr


def test_no_strict_overrides_the_environment(fake, tmp_path):
    result = run(
        [str(ON_ROLLBACK), "--no-strict", "collect"], {**fake, "FAKE_RC": "1", "ROLLBACK_PM_STRICT": "1"}, tmp_path
    )
    assert result.returncode == 0


def _without_timeout(tmp_path: Path) -> str:
    """A PATH with the tools the script uses but no timeout(1), like a minimal host."""
    bin_dir = tmp_path / "minimal-bin"
    bin_dir.mkdir()
    for tool in ("sh", "sleep", "dirname", "sed", "cat", "id", "printf"):
        found = shutil.which(tool, path=SYSTEM_PATH)
        if found:
            (bin_dir / tool).symlink_to(found)
    return str(bin_dir)


@pytest.mark.parametrize("limiter", ["timeout(1)", "own watchdog"])
def test_a_hung_rollback_pm_is_stopped_by_the_time_limit(fake, tmp_path, limiter):
    env = {**fake, "FAKE_HANG": "1", "ROLLBACK_PM_TIME_LIMIT": "1"}
    if limiter == "own watchdog":
        env["PATH"] = _without_timeout(tmp_path)

    result = run([str(deploy_script(tmp_path))], env, tmp_path)

    assert result.returncode == 0, result.stderr
    assert script_lines(result.stdout)[-1] == "deploy: rolled back, script done"
    assert re.search(
        r"rollback-pm hook --phase collect was stopped after the time limit of 1s "
        r"\(exit (124|143)\)",
        result.stderr,
    ), result.stderr
    pid = int((tmp_path / "rec.pid").read_text())
    assert not Path(f"/proc/{pid}").exists(), "the hung process was left running"

    strict = run([str(ON_ROLLBACK), "--strict", "collect"], env, tmp_path)
    assert strict.returncode == 124


def test_missing_rollback_pm(tmp_path):
    env = {"PATH": SYSTEM_PATH, "ROLLBACK_PM_BIN": str(tmp_path / "nowhere" / "rollback-pm")}

    assert run([str(ON_ROLLBACK), "collect"], env, tmp_path).returncode == 0
    strict = run([str(ON_ROLLBACK), "--strict", "collect"], env, tmp_path)
    assert strict.returncode == 127
    assert "rollback-pm not found" in strict.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "missing PHASE"),
        (["rollback"], "unknown argument 'rollback'"),
        (["--time-limit", "soon", "collect"], "time limit 'soon' is not a whole number"),
    ],
)
def test_bad_calls_are_reported_but_fatal_only_when_strict(fake, tmp_path, args, message):
    lenient = run([str(ON_ROLLBACK), *args], fake, tmp_path)
    assert lenient.returncode == 0
    assert message in lenient.stderr
    assert not (tmp_path / "rec.args").exists()  # rollback-pm was not called

    assert run([str(ON_ROLLBACK), "--strict", *args], fake, tmp_path).returncode == 2


def test_help(tmp_path):
    result = run([str(ON_ROLLBACK), "--help"], {"PATH": SYSTEM_PATH}, tmp_path)
    assert result.returncode == 0
    assert "Usage: on-rollback [--strict|--no-strict] [--time-limit SECONDS] PHASE" in result.stderr
    assert os.access(ON_ROLLBACK, os.X_OK)
