"""An evidence directory this user cannot write: a clear error, exit 1, nothing written.

Root ignores permission bits, and CI runs as root. So the CLI runs under ``setpriv``
without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH (still uid 0): the kernel then checks
the mode bits as for any owner, exactly what a service user meets on a host where
/var/log/azaion belongs to someone else.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "rollback_pm", "--state-dir", str(tmp_path / "state"), *args]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        assert setpriv, "setpriv (util-linux) is needed to test permissions as root"
        drop = "-dac_override,-dac_read_search"
        command = [setpriv, f"--bounding-set={drop}", f"--inh-caps={drop}", "--", *command]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ROLLBACK_PM_", "CI_", "PLUGIN_"))}
    env.update(ROLLBACK_PM_CONFIG=str(tmp_path / "none.toml"), PYTHONPATH=str(ROOT))
    (tmp_path / "none.toml").write_text("")
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)


@pytest.fixture()
def locked(tmp_path: Path):
    """A read-only directory (0555), made writable again for pytest's cleanup."""
    path = tmp_path / "locked"
    path.mkdir()
    path.chmod(0o555)
    yield path
    path.chmod(0o755)


def test_existing_evidence_dir_not_writable(tmp_path, locked):
    result = run_cli(tmp_path, "collect", "--evidence-dir", str(locked), "--label", "app=web")
    assert result.returncode == 1, result.stderr
    assert f"evidence directory {locked} is not writable by this user (uid {os.getuid()})" in result.stderr
    assert "Fix its owner/mode or pass a writable --evidence-dir." in result.stderr
    assert "Traceback" not in result.stderr
    assert os.listdir(locked) == []


def test_evidence_dir_that_cannot_be_created(tmp_path, locked):
    target = locked / "azaion"
    result = run_cli(tmp_path, "collect", "--evidence-dir", str(target), "--label", "app=web")
    assert result.returncode == 1, result.stderr
    assert f"evidence directory {target} cannot be created: Permission denied." in result.stderr
    assert "Create it (mode 0750) or pass a writable --evidence-dir." in result.stderr
    assert "Traceback" not in result.stderr
    assert os.listdir(locked) == []
