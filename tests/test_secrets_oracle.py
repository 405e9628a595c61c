"""Secrets never leave: canaries planted everywhere, the real hook end to end, two judges.

One canary per format (tests/support/canaries.py) sits in a real container's env under
innocuous names, its labels, its command-line arguments and its log; in a smoke report's
step names and messages; and in a Woodpecker step's log and error. The real hook runs
(a subprocess, JSON logs at debug level, the file tracker) once with the smoke report and
once reading Woodpecker. Then everything it produced — the evidence bundle, the ledger
dumped as SQL (incidents, steps, tickets, outbox), drafts, ticket files, its stdout and
stderr — must hold no canary (exact search), and Yelp's detect-secrets must find nothing
there but the documented false positives (tests/support/oracle.py).
"""

from __future__ import annotations

import json
import shlex
import sqlite3
import subprocess
import sys
import time
import uuid
from contextlib import closing
from pathlib import Path

import pytest

from tests.support import oracle
from tests.support.canaries import Canary, canaries, single_line
from tests.support.fake_woodpecker import FakeWoodpecker

DEPLOY = "9fceb02d0ae598e95dc970b74767f19372d61af8"
GOOD = "4f2a9c1e8b7d6a5f4e3d2c1b0a9f8e7d6c5b4a39"
ROOT = Path(__file__).parents[1]
TOKEN_FORMATS = {
    "aws-access-key-id",
    "gcp-api-key",
    "azure-client-secret",
    "github-token",
    "github-pat",
    "gitlab-token",
    "slack-token",
    "slack-webhook",
    "stripe-key",
    "npm-token",
    "pypi-token",
    "docker-token",
    "jwt",
}
COMMANDS = {"curl-user", "mysql-p", "password-flag", "token-flag"}


def _args(planted: list[Canary]) -> list[str]:
    """Command-line arguments as a program gets them: tokens bare, commands split into argv."""
    args: list[str] = []
    for canary in planted:
        if canary.fmt in TOKEN_FORMATS:
            args.append(canary.text)
        elif canary.fmt in COMMANDS:
            args += shlex.split(canary.text)
        else:
            args.append(canary.text)
    return args


def _script(planted: list[Canary]) -> str:
    lines = [f"printf '%s\\n' {shlex.quote(c.text)}" for c in planted]
    return "\n".join(["echo 'api starting'", *lines, "echo 'FATAL: migration 42 failed' >&2", "exit 3"])


@pytest.fixture()
def project(busybox_image):
    name = f"rpmoracle{uuid.uuid4().hex[:8]}"
    env = []
    for i, canary in enumerate(canaries("E")):
        env += ["-e", f"SETTING_{i}={canary.text}"]  # innocuous names: only the values give them away
    labels = []
    for i, canary in enumerate(canaries("L")):
        labels += ["--label", f"com.example.setting{i}={canary.text}"]
    cid = subprocess.run(
        [
            "docker",
            "run",
            "-d",
            "--network",
            "none",
            "--name",
            f"{name}-api-1",
            "--label",
            f"com.docker.compose.project={name}",
            "--label",
            "com.docker.compose.service=api",
            *labels,
            *env,
            busybox_image,
            "sh",
            "-c",
            _script(canaries("G")),
            "api",
            *_args(canaries("A")),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    subprocess.run(["docker", "wait", cid], check=True, capture_output=True)
    yield name, cid
    subprocess.run(["docker", "rm", "-f", cid], capture_output=True)


@pytest.fixture()
def woodpecker():
    with FakeWoodpecker() as fake:
        yield fake
        assert fake.failures == []


def _smoke_report(path: Path) -> None:
    steps = [c for c in canaries("S") if single_line(c)]
    path.write_text(
        json.dumps({"step": 1, "name": "containers up", "status": "passed", "ts": "2026-05-13T08:45:00Z"})
        + "\n"
        + "".join(
            json.dumps(
                {
                    "step": i + 2,
                    "name": f"check {c.fmt} {c.text}",
                    "status": "failed",
                    "ts": "2026-05-13T08:46:00Z",
                    "message": f"GET /api/health -> 502; ran: {c.text}",
                }
            )
            + "\n"
            for i, c in enumerate(steps)
        )
    )


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rollback_pm", "--log-format", "json", "--log-level", "debug", *args],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", **env},
        timeout=180,
        cwd=ROOT,
    )


def _produced(tmp_path: Path, runs: list[subprocess.CompletedProcess]) -> list[Path]:
    """Every file the runs produced, the ledgers dumped as SQL, and the runs' output."""
    out = tmp_path / "scanned"
    out.mkdir()
    for index, run in enumerate(runs):
        (out / f"run{index}.stdout.txt").write_text(run.stdout)
        (out / f"run{index}.stderr.txt").write_text(run.stderr)
    for index, db in enumerate(sorted(tmp_path.rglob("ledger.sqlite3"))):
        with closing(sqlite3.connect(db)) as conn:
            (out / f"ledger{index}.sql.txt").write_text("\n".join(conn.iterdump()))
    return [p for p in tmp_path.rglob("*") if p.is_file() and "ledger.sqlite3" not in p.name]


def test_the_oracle_sees_the_canaries_unredacted(tmp_path):
    """The judge is worth something: on raw canaries it finds the formats it knows."""
    raw = tmp_path / "raw.txt"
    raw.write_text("\n".join(c.text for c in canaries("X")) + "\n")
    found = {f.type for f in oracle.leaks([raw])}
    assert {
        "AWS Access Key",
        "GitHub Token",
        "GitLab Token",
        "Slack Token",
        "Stripe Access Key",
        "PyPI Token",
        "JSON Web Token",
        "Private Key",
        "Basic Auth Credentials",
        "Secret Keyword",
    } <= found, found


@pytest.mark.docker
def test_no_canary_reaches_anything_we_write(tmp_path, project, woodpecker):
    name, cid = project
    config = tmp_path / "none.toml"
    config.write_text("")

    # 1. The hook with a smoke report (operator / generic deploy script), file tracker.
    report = tmp_path / "smoke.jsonl"
    _smoke_report(report)
    a = tmp_path / "a"
    run_a = _run(
        [
            "--state-dir",
            str(a / "state"),
            "hook",
            "--compose-project",
            name,
            "--service",
            "shop",
            "--environment",
            "production",
            "--deploy-sha",
            DEPLOY,
            "--rollback-sha",
            GOOD,
            "--pipeline-number",
            "7",
            "--smoke-report",
            str(report),
            "--mitigated-at",
            "2026-05-13T08:50:00Z",
            "--deployed-at",
            "2026-05-13T08:44:00Z",
            "--evidence-dir",
            str(a / "evidence"),
            "--drafts-dir",
            str(a / "drafts"),
        ],
        {"ROLLBACK_PM_CONFIG": str(config)},
    )
    assert run_a.returncode == 0, run_a.stdout + run_a.stderr

    # 2. The hook as a Woodpecker step: smoke steps and their logs from the Woodpecker API.
    t = int(time.time()) - 300
    repo_id = woodpecker.add_repo("acme/shop")
    planted = canaries("W")
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
                        "error": f"exit 22 after {planted[0].text} {planted[4].text}",
                    },
                ],
            }
        ],
        commit=DEPLOY,
    )
    step_id = woodpecker.step(repo_id, 42, "smoke-api")["id"]
    log_lines = ["+ ./smoke.sh"] + [line for c in planted for line in c.text.split("\n")] + ["HTTP 502"]
    woodpecker.add_log(repo_id, 42, step_id, log_lines, start_time=t + 61)
    b = tmp_path / "b"
    run_b = _run(
        ["hook"],
        {
            "CI": "woodpecker",
            "CI_COMMIT_SHA": DEPLOY,
            "CI_PREV_COMMIT_SHA": GOOD,
            "CI_PIPELINE_NUMBER": "42",
            "CI_REPO": "acme/shop",
            "CI_REPO_NAME": "shop",
            "CI_PIPELINE_URL": "https://ci.example.com/repos/7/pipeline/42",
            "CI_PIPELINE_DEPLOY_TARGET": "production",
            "CI_SYSTEM_URL": woodpecker.url,
            "ROLLBACK_PM_CONFIG": str(config),
            "ROLLBACK_PM_WOODPECKER_TOKEN": woodpecker.token,
            "PLUGIN_COMPOSE_PROJECT": name,
            "PLUGIN_TRACKER": "file",
            "PLUGIN_STATE_DIR": str(b / "state"),
            "PLUGIN_EVIDENCE_DIR": str(b / "evidence"),
            "PLUGIN_DRAFTS_DIR": str(b / "drafts"),
        },
    )
    assert run_b.returncode == 0, run_b.stdout + run_b.stderr

    paths = _produced(tmp_path, [run_a, run_b])
    kinds = {p.suffix for p in paths} | {p.parent.name for p in paths}
    assert {"evidence", "drafts", "tickets"} <= kinds, sorted(kinds)
    assert len(list(tmp_path.glob("*/evidence/rollback-*.log"))) == 2

    # Judge 1: no canary, exactly, anywhere (the inputs we planted are not scanned).
    scanned = [p for p in paths if p not in (report, config)]
    texts = {p: p.read_text(errors="replace") for p in scanned}
    leaked = [
        (tag, c.fmt, str(p.relative_to(tmp_path)), text[max(0, text.find(c.secret[:24]) - 60) :][:160])
        for tag in "ELAGSW"
        for c in canaries(tag)
        for p, text in texts.items()
        if c.secret[:24] in text
    ]
    assert not leaked, "\n".join(map(repr, leaked))

    # What must stay, stays: the SHAs, the container id, the failure.
    draft = next(a.glob("drafts/*.md")).read_text()
    assert DEPLOY in draft and GOOD in draft
    bundle_log = next(a.glob("evidence/rollback-*.log")).read_text()
    assert "FATAL: migration 42 failed" in bundle_log and "api starting" in bundle_log
    assert cid in next(a.glob("evidence/rollback-*.inspect.json")).read_text()
    manifest = json.loads(next(a.glob("evidence/rollback-*.manifest.json")).read_text())
    counts = manifest["redaction"]["counts"]
    for rule in ("aws-access-key-id", "github-token", "slack-token", "jwt", "command-line", "pem-private-key"):
        assert counts.get(rule, 0) >= 1, (rule, counts)

    # Judge 2: an independent scanner finds nothing but documented false positives.
    findings = oracle.leaks(scanned)
    assert not findings, "\n".join(
        f"{f.type} {Path(f.path).relative_to(tmp_path)}:{f.line} {f.value}" for f in findings
    )
