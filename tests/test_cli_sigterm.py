"""SIGTERM stops any command the way Ctrl-C does: cleanups run, exit 130, no traceback."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_sigterm_while_the_hook_waits_for_the_tracker_unwinds_and_exits_130(tmp_path):
    tracker = socket.socket()  # accepts connections (the kernel's backlog) and never answers
    tracker.bind(("127.0.0.1", 0))
    tracker.listen(16)
    drafts = tmp_path / "drafts"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ROLLBACK_PM_", "CI_", "PLUGIN_", "DOCKER_"))}
    env.update(PYTHONPATH=str(ROOT), ROLLBACK_PM_CONFIG=str(tmp_path / "none.toml"), ROLLBACK_PM_TRACKER_TOKEN="t0ken")
    (tmp_path / "none.toml").write_text("")
    command = [
        sys.executable,
        "-m",
        "rollback_pm",
        "--state-dir",
        str(tmp_path / "state"),
        "hook",
        "--phase",
        "finalize",
        "--service",
        "shop",
        "--deploy-sha",
        "1" * 40,
        "--rollback-sha",
        "2" * 40,
        "--drafts-dir",
        str(drafts),
        "--evidence-dir",
        str(tmp_path / "evidence"),
        "--tracker",
        "jira",
        "--tracker-url",
        f"http://127.0.0.1:{tracker.getsockname()[1]}",
        "--jira-email",
        "oncall@example.com",
        "--jira-project",
        "OPS",
        "--tracker-timeout",
        "120",
    ]
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (drafts.exists() and any(p.suffix == ".md" for p in drafts.iterdir())):  # the ticket stage is next
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the hook never wrote its draft"
            time.sleep(0.05)
        time.sleep(0.5)  # into the tracker's (unanswered) request
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        tracker.close()
    assert proc.returncode == 130, (proc.returncode, err)
    assert "rollback-pm: interrupted" in err and "Traceback" not in err
    assert [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")] == []
