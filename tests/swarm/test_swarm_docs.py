"""docs/swarm.md's examples say what the code does: settings it knows, the command it has."""

from __future__ import annotations

import configparser
import re
import shlex
import subprocess
import sys
from pathlib import Path

import yaml

from rollback_pm.config import BY_NAME, load_settings

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "swarm.md"
PLUGIN_ONLY = {"command", "phase", "sha", "strict", "time_limit"}


def block(language: str, first_line: str) -> str:
    blocks = re.findall(rf"```{language}\n(.*?)```", DOC.read_text(), re.S)
    found = [b for b in blocks if b.startswith(first_line)]
    assert len(found) == 1, f"one ```{language} block starting {first_line!r}"
    return found[0]


def test_the_stack_rolls_back_by_itself() -> None:
    stack = yaml.safe_load(block("yaml", "# stack.yml"))
    for name, service in stack["services"].items():
        assert service["deploy"]["update_config"]["failure_action"] == "rollback", name
    assert stack["services"]["api"]["deploy"]["labels"]["rollback-pm.environment"] == "production"


def test_the_pipeline_uses_settings_rollback_pm_knows(tmp_path: Path) -> None:
    (tmp_path / "empty.toml").write_text("")
    pipeline = yaml.safe_load(block("yaml", "# .woodpecker/deploy.yaml (Swarm)"))
    steps = {s["name"]: s for s in pipeline["steps"]}
    assert list(steps) == ["deploy", "smoke", "mark-good", "postmortem-evidence", "rollback", "postmortem"]
    assert "docker stack deploy" in " ".join(steps["deploy"]["commands"])
    for name in ("mark-good", "postmortem-evidence", "postmortem"):
        settings = steps[name]["settings"]
        assert not set(settings) - set(BY_NAME) - PLUGIN_ONLY, name
        env = {f"PLUGIN_{k.upper()}": str(v) for k, v in settings.items() if k in BY_NAME and not isinstance(v, dict)}
        loaded = load_settings({}, env=env, config_path=tmp_path / "empty.toml")
        if name != "mark-good":
            assert loaded.stack == "shop"
    assert steps["postmortem-evidence"]["settings"]["phase"] == "collect"
    assert steps["postmortem"]["settings"]["phase"] == "finalize"
    for name in ("postmortem-evidence", "rollback", "postmortem"):
        assert steps[name]["when"] == {"status": ["failure"]}


def test_the_watcher_service_and_stack(tmp_path: Path) -> None:
    command = shlex.split(block("sh", "docker secret create").replace("\\\n", " ").splitlines()[1])
    assert command[:3] == ["docker", "service", "create"] and command[-1] == "watch"
    assert "node.role==manager" in command and command[command.index("--entrypoint") + 1] == "rollback-pm"
    env = dict(command[i + 1].split("=", 1) for i, arg in enumerate(command) if arg == "--env")
    (tmp_path / "token").write_text("forge-token-value\n")
    env["ROLLBACK_PM_TOKEN_FILE"] = str(tmp_path / "token")
    (tmp_path / "empty.toml").write_text("")
    settings = load_settings({}, env=env, config_path=tmp_path / "empty.toml")
    assert (settings.tracker, settings.tracker_token) == ("gitea", "forge-token-value")

    stack = yaml.safe_load(block("yaml", "# rollback-pm.yml"))
    watch = stack["services"]["watch"]
    assert watch["entrypoint"] == ["rollback-pm", "watch"]
    assert watch["deploy"]["placement"]["constraints"] == ["node.role == manager"]
    assert "/var/run/docker.sock:/var/run/docker.sock" in watch["volumes"]
    assert all(key.removeprefix("ROLLBACK_PM_").lower() in BY_NAME for key in watch["environment"])


def test_the_systemd_unit_runs_the_watcher() -> None:
    unit = configparser.ConfigParser(strict=True, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read_string(block("ini", "# /etc/systemd/system/rollback-pm-watch.service"))
    exec_start = shlex.split(unit["Service"]["ExecStart"])
    assert exec_start[-1] == "watch" and unit["Service"]["KillSignal"] == "SIGTERM"
    args = [sys.executable, "-m", "rollback_pm", *exec_start[1:], "--help"]
    result = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "--once" in result.stdout
