"""The whole promise on a real Docker engine: rollback -> evidence, ledger, draft, ticket."""

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from rollback_pm.ledger import Ledger

pytestmark = pytest.mark.docker

DEPLOY = "1111111111111111111111111111111111111111"
GOOD = "2222222222222222222222222222222222222222"
SECRET = "e2e-Secret-Pa55word-91"


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture()
def project(busybox_image):
    """A compose-labelled 'deploy': api logs and crashes, web keeps logging."""
    name = f"rpme2e{uuid.uuid4().hex[:8]}"
    labels = ["--label", f"com.docker.compose.project={name}"]
    api = docker(
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        f"{name}-api-1",
        *labels,
        "--label",
        "com.docker.compose.service=api",
        "-e",
        f"DB_PASSWORD={SECRET}",
        "-e",
        "KEY_COUNT=3",
        busybox_image,
        "sh",
        "-c",
        f'echo "api booting"; echo "dsn postgres://app:{SECRET}@db/app"; echo "FATAL: migration 42 failed" >&2; exit 3',
    )
    web = docker(
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        f"{name}-web-1",
        *labels,
        "--label",
        "com.docker.compose.service=web",
        busybox_image,
        "sh",
        "-c",
        'for i in 1 2 3; do echo "GET /health 502 $i"; done; sleep 300',
    )
    docker("wait", api)
    yield name, {"api": api, "web": web}
    subprocess.run(["docker", "rm", "-f", api, web], capture_output=True)


def hook(tmp_path: Path, project_name: str, *extra: str) -> subprocess.CompletedProcess:
    smoke = tmp_path / "smoke.jsonl"
    smoke.write_text(
        '{"step": 1, "name": "containers up", "status": "passed", "ts": "2026-05-13T08:45:00Z", "message": ""}\n'
        '{"step": 3, "name": "api health", "status": "failed", "ts": "2026-05-13T08:46:00Z", '
        '"message": "GET /api/health -> 502"}\n'
    )
    cmd = [
        sys.executable,
        "-m",
        "rollback_pm",
        "--state-dir",
        str(tmp_path / "state"),
        "hook",
        "--compose-project",
        project_name,
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
        str(smoke),
        "--mitigated-at",
        "2026-05-13T08:50:00Z",
        "--deployed-at",
        "2026-05-13T08:44:00Z",
        "--evidence-dir",
        str(tmp_path / "evidence"),
        "--drafts-dir",
        str(tmp_path / "drafts"),
        *extra,
    ]
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "ROLLBACK_PM_CONFIG": str(tmp_path / "none.toml")}
    (tmp_path / "none.toml").write_text("")
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=180)


def test_hook_end_to_end_and_idempotent(tmp_path, project):
    name, ids = project
    first = hook(tmp_path, name)
    assert first.returncode == 0, first.stderr
    logs = sorted((tmp_path / "evidence").glob("rollback-*.log"))
    inspects = sorted((tmp_path / "evidence").glob("rollback-*.inspect.json"))
    assert len(logs) == 1 and len(inspects) == 1
    text = logs[0].read_text()
    assert "api booting" in text and "FATAL: migration 42 failed" in text and "GET /health 502 3" in text
    assert f"{name}-api-1" in text and "stderr" in text
    docs = json.loads(inspects[0].read_text())
    assert sorted(d["Id"] for d in docs) == sorted(ids.values())
    assert SECRET not in text and SECRET not in inspects[0].read_text()
    assert "KEY_COUNT=3" in inspects[0].read_text()

    with Ledger(tmp_path / "state") as ledger:
        [incident] = ledger.list()
    assert (incident.deploy_sha, incident.rollback_sha, incident.rollback_sha_source) == (DEPLOY, GOOD, "flag")
    assert incident.failed_step.step == 3 and incident.failed_step.name == "api health"
    assert incident.detected_by == "smoke test" and incident.severity == "High"
    draft = Path(incident.draft_path).read_text()
    assert "| Deploy SHA at incident start | `1111111111111111111111111111111111111111` |" in draft
    assert "| Rollback SHA (if rolled back) | `2222222222222222222222222222222222222222` |" in draft
    assert "| Detection time (UTC) | 2026-05-13T08:46:00Z |" in draft
    assert "| Duration (user-impacting) | 06:00 |" in draft
    assert str(logs[0]) in draft
    ticket = json.loads((tmp_path / "state" / "tickets" / f"PM-{incident.id}.json").read_text())
    assert ticket["title"] == "Postmortem: shop production rollback 1111111 -> 2222222"
    assert ticket["due_date"] == "2026-05-14"
    assert f"incident: {incident.id} (new)" in first.stdout
    assert f"ticket: PM-{incident.id}" in first.stdout

    second = hook(tmp_path, name)
    assert second.returncode == 0, second.stderr
    assert f"incident: {incident.id} (updated)" in second.stdout
    with Ledger(tmp_path / "state") as ledger:
        [again] = ledger.list()
    assert len({e.bundle for e in again.evidence}) == 2  # the new bundle is the only new thing
    assert len(list((tmp_path / "state" / "tickets").glob("*.json"))) == 1
    ticket = json.loads((tmp_path / "state" / "tickets" / f"PM-{incident.id}.json").read_text())
    assert len(ticket["comments"]) == 1 and "New evidence bundle" in ticket["comments"][0]["body"]
    for path in [*tmp_path.rglob("*")]:
        if path.is_file():
            assert SECRET not in path.read_text(errors="replace"), path


def test_no_container_matches_is_exit_2(tmp_path, busybox_image):
    result = hook(tmp_path, "rpm-nothing-here")
    assert result.returncode == 2
    assert "no container matches" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "state" / "tickets").exists()


def test_malformed_smoke_report_is_exit_2_naming_file_and_line(tmp_path, project):
    name, _ = project
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"step": 1, "name": "up", "status": "passed"}\n{not json}\n')
    result = hook(tmp_path, name, "--smoke-report", str(bad))
    assert result.returncode == 2
    assert f"smoke report {bad}:2:" in result.stderr
    assert "Traceback" not in result.stderr


def test_docker_unreachable_is_exit_1_naming_docker_host(tmp_path):
    result = hook(tmp_path, "whatever", "--docker-host", f"unix://{tmp_path}/no.sock")
    assert result.returncode == 1
    assert "DOCKER_HOST" in result.stderr
    assert "Traceback" not in result.stderr


def test_two_hooks_at_once_make_one_incident_and_one_ticket(tmp_path, project):
    name, _ = project
    smoke = tmp_path / "smoke.jsonl"
    smoke.write_text('{"step": 3, "name": "api health", "status": "failed", "ts": "2026-05-13T08:46:00Z"}\n')
    (tmp_path / "none.toml").write_text("")
    cmd = [
        sys.executable,
        "-m",
        "rollback_pm",
        "--state-dir",
        str(tmp_path / "state"),
        "hook",
        "--compose-project",
        name,
        "--service",
        "shop",
        "--deploy-sha",
        DEPLOY,
        "--rollback-sha",
        GOOD,
        "--pipeline-number",
        "8",
        "--smoke-report",
        str(smoke),
        "--evidence-dir",
        str(tmp_path / "evidence"),
        "--drafts-dir",
        str(tmp_path / "drafts"),
    ]
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "ROLLBACK_PM_CONFIG": str(tmp_path / "none.toml")}
    procs = [
        subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)
    ]
    outputs = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    with Ledger(tmp_path / "state") as ledger:
        [incident] = ledger.list()
        assert len({e.bundle for e in incident.evidence}) == 2
    assert len(list((tmp_path / "state" / "tickets").glob("*.json"))) == 1
    assert len(list((tmp_path / "drafts").glob("*.md"))) == 1


def test_the_collect_phase_freezes_and_a_spool_left_behind_is_adopted_by_its_own_rollback(tmp_path, project):
    name, ids = project
    collect = hook(tmp_path, name, "--phase", "collect", "--json")
    assert collect.returncode == 0, collect.stderr
    report = json.loads(collect.stdout)
    assert report["bundle"] is None and report["evidence"] == [] and report["incident"] is None
    assert sorted(report["frozen"]["containers"]) == [f"{name}-api-1", f"{name}-web-1"]
    spool = Path(report["frozen"]["spool"])
    assert spool.parent == tmp_path / "state" / "spool" and (spool / "spool.json").is_file()
    assert not (tmp_path / "evidence").exists() or list((tmp_path / "evidence").iterdir()) == []
    assert SECRET.encode() in (spool / "docs.json").read_bytes()  # unredacted, only in the spool

    # The rollback replaces the containers; this rollback's finalize never comes (its runner died).
    subprocess.run(["docker", "rm", "-f", *ids.values()], capture_output=True, check=True)
    an_hour_ago = time.time() - 3700
    for path in (spool / "spool.json", spool):
        os.utime(path, (an_hour_ago, an_hour_ago))

    # The next rollback's finalize processes the spool left behind, for its own rollback.
    other = hook(tmp_path, name, "--phase", "finalize", "--pipeline-number", "8")
    assert other.returncode == 0, other.stderr
    assert list((tmp_path / "state" / "spool").iterdir()) == []
    bundle = sorted(p.name for p in (tmp_path / "evidence").iterdir())
    assert len(bundle) == 3
    log = next((tmp_path / "evidence").glob("rollback-*.log")).read_text()
    assert "FATAL: migration 42 failed" in log and "GET /health 502 3" in log and SECRET not in log
    with Ledger(tmp_path / "state") as ledger:
        [eighth] = ledger.list()
    assert eighth.pipeline_number == "8" and eighth.evidence == []

    # Its own finalize, late, adopts that bundle: the evidence of the containers as they died.
    own = hook(tmp_path, name, "--phase", "finalize")
    assert own.returncode == 0, own.stderr
    with Ledger(tmp_path / "state") as ledger:
        incidents = {i.pipeline_number: i for i in ledger.list()}
    seventh = incidents["7"]
    assert sorted(Path(e.path).name for e in seventh.evidence) == bundle and incidents["8"].evidence == []
    api = next(c for c in seventh.containers if c.name == f"{name}-api-1")
    assert api.exit_code == 3 and api.status == "exited"
    assert sorted(p.name for p in (tmp_path / "evidence").iterdir()) == bundle  # no second bundle
    for path in [*tmp_path.rglob("*")]:
        if path.is_file():
            assert SECRET not in path.read_text(errors="replace"), path
