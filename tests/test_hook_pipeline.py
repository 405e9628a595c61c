"""The hook as a Woodpecker rollback step would run it: CI_* env, smoke steps from the
Woodpecker API, the issue (and a pull request) on the Gitea/Forgejo forge — all real HTTP
on loopback, validated against the vendored specs, and real containers."""

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from rollback_pm.ledger import Ledger
from tests.support.fake_gitea import FakeGitea
from tests.support.fake_woodpecker import FakeWoodpecker

pytestmark = pytest.mark.docker
DEPLOY = "3333333333333333333333333333333333333333"
PREV = "4444444444444444444444444444444444444444"
LEAK = "wp-step-Secret-77"


@pytest.fixture()
def forge():
    with FakeGitea(kind="forgejo") as fake:
        yield fake
        assert fake.failures == []


@pytest.fixture()
def woodpecker():
    with FakeWoodpecker() as fake:
        yield fake
        assert fake.failures == []


def test_rollback_step_with_woodpecker_and_forge(tmp_path, busybox_image, forge, woodpecker):
    project = f"rpmpipe{uuid.uuid4().hex[:8]}"
    cid = subprocess.run(
        [
            "docker",
            "run",
            "-d",
            "--network",
            "none",
            "--name",
            f"{project}-api-1",
            "--label",
            f"com.docker.compose.project={project}",
            busybox_image,
            "sh",
            "-c",
            "echo boom; exit 2",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    try:
        subprocess.run(["docker", "wait", cid], check=True, capture_output=True)
        t = int(time.time()) - 300
        repo_id = woodpecker.add_repo("acme/shop")
        woodpecker.add_pipeline(
            repo_id,
            42,
            [
                {
                    "name": "deploy",
                    "steps": [
                        {"name": "deploy", "state": "success", "started": t, "finished": t + 60},
                        {
                            "name": "smoke-api",
                            "state": "failure",
                            "started": t + 61,
                            "finished": t + 90,
                            "exit_code": 22,
                        },
                        {"name": "rollback", "state": "running", "started": t + 91},
                    ],
                }
            ],
            commit=DEPLOY,
        )
        smoke_id = woodpecker.step(repo_id, 42, "smoke-api")["id"]
        woodpecker.add_log(
            repo_id, 42, smoke_id, ["+ curl /health", f"DB_PASSWORD={LEAK}", "HTTP 502"], start_time=t + 61
        )
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "CI": "woodpecker",
            "CI_COMMIT_SHA": DEPLOY,
            "CI_PREV_COMMIT_SHA": PREV,
            "CI_PIPELINE_NUMBER": "42",
            "CI_REPO": "acme/shop",
            "CI_REPO_NAME": "shop",
            "CI_PIPELINE_URL": "https://ci.example.com/repos/7/pipeline/42",
            "CI_PIPELINE_DEPLOY_TARGET": "production",
            "CI_FORGE_TYPE": "forgejo",
            "CI_FORGE_URL": forge.url,
            "CI_SYSTEM_URL": woodpecker.url,
            "ROLLBACK_PM_CONFIG": str(tmp_path / "none.toml"),
            "PLUGIN_COMPOSE_PROJECT": project,
            "PLUGIN_TRACKER": "forgejo",
            "PLUGIN_OPEN_PR": "true",
            "PLUGIN_STATE_DIR": str(tmp_path / "state"),
            "PLUGIN_EVIDENCE_DIR": str(tmp_path / "evidence"),
            "PLUGIN_DRAFTS_DIR": str(tmp_path / "drafts"),
            "ROLLBACK_PM_TRACKER_TOKEN": forge.token,
            "ROLLBACK_PM_WOODPECKER_TOKEN": woodpecker.token,
            "ROLLBACK_PM_LOG_LEVEL": "debug",
        }
        (tmp_path / "none.toml").write_text("")

        def hook() -> subprocess.CompletedProcess:
            return subprocess.run(
                [sys.executable, "-m", "rollback_pm", "hook"],
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
                cwd=Path(__file__).parents[1],
            )

        first = hook()
        assert first.returncode == 0, first.stdout + first.stderr
        with Ledger(tmp_path / "state") as ledger:
            [incident] = ledger.list()
        assert (incident.rollback_sha, incident.rollback_sha_source) == (PREV, "ci-prev")
        assert any("CI_PREV_COMMIT_SHA" in w or "previous pipeline" in w for w in incident.warnings)
        assert incident.failed_step.name == "smoke-api" and incident.failed_step.source == "woodpecker"
        assert "DB_PASSWORD=[REDACTED]" in incident.failed_step.log_excerpt
        assert incident.started_at is not None and int(incident.started_at.timestamp()) == t + 60
        [issue] = forge.issues.values()
        assert issue["title"] == "Postmortem: shop production rollback 3333333 -> 4444444"
        assert len(forge.pulls) == 1
        assert "pull request: " in first.stdout

        second = hook()
        assert second.returncode == 0, second.stdout + second.stderr
        assert len(forge.issues) == 1 and len(forge.pulls) == 1
        assert len(next(iter(forge.issues.values()))["comments"]) == 1  # the second bundle, once

        everything = (
            first.stdout
            + first.stderr
            + second.stdout
            + second.stderr
            + json.dumps(list(forge.issues.values()), default=str)
        )
        for path in tmp_path.rglob("*"):
            if path.is_file():
                everything += path.read_text(errors="replace")
        for secret in (forge.token, woodpecker.token, LEAK):
            assert secret not in everything
    finally:
        subprocess.run(["docker", "rm", "-f", cid], capture_output=True)
