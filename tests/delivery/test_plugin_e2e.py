"""The plugin entrypoint exactly as Woodpecker runs it, against real containers.

The environment holds only what a plugin step gets: the image's PATH, Woodpecker's CI_*
variables and the step's settings as PLUGIN_*. A failed deploy's containers are snapshotted
(`phase: collect`), replaced by the previous version (the rollback), and the postmortem is
filed (`phase: finalize`): bundle, ledger, draft and ticket are then checked on disk.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import ENTRYPOINT, SYSTEM_PATH, make_rollback_pm, needs_modules, python_usable_by

pytestmark = [pytest.mark.docker, needs_modules("rollback_pm.evidence", "rollback_pm.facts", "rollback_pm.drafts")]

SECRET = "e2e-db-Secret-77"


def sh(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{args}: {result.stderr}"
    return result.stdout.strip()


def busybox_image(tag: str, revision: str, workdir: Path) -> None:
    """A tiny image from the host's busybox (no registry), labelled with its commit."""
    root = workdir / f"root-{revision[:7]}"
    (root / "bin").mkdir(parents=True)
    shutil.copy2("/bin/busybox", root / "bin" / "busybox")
    for applet in ("sh", "echo", "sleep", "seq"):
        (root / "bin" / applet).symlink_to("busybox")
    tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
    subprocess.run(
        ["docker", "import", "--change", f"LABEL org.opencontainers.image.revision={revision}", "-", tag],
        stdin=tar.stdout,
        capture_output=True,
        check=True,
        timeout=120,
    )
    tar.wait()


class Service:
    """One compose-like project of busybox containers; everything removed afterwards."""

    def __init__(self, workdir: Path) -> None:
        self.project = f"rpm-delivery-e2e-{uuid.uuid4().hex[:8]}"
        self.workdir = workdir
        self.images: list[str] = []

    def image(self, name: str, revision: str) -> str:
        tag = f"{self.project}:{name}"
        busybox_image(tag, revision, self.workdir)
        self.images.append(tag)
        return tag

    def run(self, service: str, image: str, script: str, *extra: str) -> None:
        sh(
            "docker",
            "run",
            "-d",
            "--network",
            "none",
            "--name",
            f"{self.project}-{service}-1",
            "--label",
            f"com.docker.compose.project={self.project}",
            "--label",
            f"com.docker.compose.service={service}",
            *extra,
            image,
            "sh",
            "-c",
            script,
        )

    def remove_containers(self) -> None:
        ids = sh("docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={self.project}").split()
        if ids:
            sh("docker", "rm", "-f", *ids)

    def wait_exited(self, service: str) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            state = sh("docker", "inspect", "--format", "{{.State.Status}}", f"{self.project}-{service}-1")
            if state == "exited":
                return
            time.sleep(0.2)
        pytest.fail(f"{service} did not exit")

    def close(self) -> None:
        self.remove_containers()
        if self.images:
            subprocess.run(["docker", "rmi", "-f", *self.images], capture_output=True, timeout=120)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    svc = Service(tmp_path)
    try:
        yield svc
    finally:
        svc.close()


def git_repo(path: Path) -> tuple[str, str]:
    """A workspace holding the last good commit and the bad one on top: (good, bad)."""
    env = {
        "PATH": SYSTEM_PATH,
        "HOME": str(path),
        "GIT_AUTHOR_NAME": "Ana",
        "GIT_AUTHOR_EMAIL": "ana@example.com",
        "GIT_COMMITTER_NAME": "Ana",
        "GIT_COMMITTER_EMAIL": "ana@example.com",
    }
    path.mkdir()
    sh("git", "init", "-q", "-b", "main", cwd=path, env=env)
    (path / "app.txt").write_text("v1\n")
    sh("git", "add", "app.txt", cwd=path, env=env)
    sh("git", "commit", "-q", "-m", "release 1.4", cwd=path, env=env)
    good = sh("git", "rev-parse", "HEAD", cwd=path, env=env)
    (path / "migrations.sql").write_text("ALTER TABLE users ADD tenant_id int;\n")
    sh("git", "add", "migrations.sql", cwd=path, env=env)
    sh("git", "commit", "-q", "-m", "feat: tenant column migration", cwd=path, env=env)
    return good, sh("git", "rev-parse", "HEAD", cwd=path, env=env)


SMOKE = [
    (1, "containers running", "passed", ""),
    (2, "home page", "passed", ""),
    (3, "api health", "failed", "GET /api/health -> 502 Bad Gateway"),
    (4, "login page", "skipped", "step 3 failed"),
    (5, "search", "skipped", "step 3 failed"),
    (6, "worker heartbeat", "skipped", "step 3 failed"),
]


def write_smoke(path: Path) -> None:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    path.write_text(
        "".join(
            json.dumps({"step": n, "name": name, "status": status, "ts": now, "message": msg}) + "\n"
            for n, name, status, msg in SMOKE
        )
    )


def plugin(env: dict[str, str], cwd: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    full = {**env, **{f"PLUGIN_{k.upper()}": v for k, v in settings.items()}}
    return subprocess.run(
        [str(ENTRYPOINT)], env=full, cwd=cwd, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL
    )


def all_text(*dirs: Path) -> str:
    return "".join(p.read_text(errors="replace") for d in dirs for p in d.rglob("*") if p.is_file())


def test_plugin_collects_records_drafts_and_files_the_ticket(rpm_dir, tmp_path, service):
    from rollback_pm.ledger import Ledger

    workspace = tmp_path / "workspace"
    good_sha, bad_sha = git_repo(workspace)
    write_smoke(workspace / "smoke.jsonl")
    bad, good = service.image("bad", bad_sha), service.image("good", good_sha)
    service.run(
        "api",
        bad,
        'echo "api starting"; echo "connecting to $DATABASE_URL"; '
        'echo "FATAL: column users.tenant_id does not exist" >&2; exit 1',
        "-e",
        f"DATABASE_URL=postgres://app:{SECRET}@db:5432/app",
        "-e",
        f"DB_PASSWORD={SECRET}",
    )
    service.run("web", bad, 'for i in $(seq 1 5); do echo "GET /health 502 upstream api unavailable"; done; sleep 600')
    service.wait_exited("api")

    evidence, state, drafts = tmp_path / "evidence", tmp_path / "state", tmp_path / "drafts"
    env = {
        "PATH": f"{rpm_dir}:{SYSTEM_PATH}",  # the image's PATH, where rollback-pm is installed
        "CI": "woodpecker",
        "CI_COMMIT_SHA": bad_sha,
        "CI_PREV_COMMIT_SHA": "e" * 40,
        "CI_PIPELINE_NUMBER": "42",
        "CI_PIPELINE_URL": "https://ci.example.com/repos/7/pipeline/42",
        "CI_REPO": "acme/shop",
        "CI_REPO_NAME": "shop",
        "CI_WORKSPACE": str(workspace),
        "CI_FORGE_TYPE": "gitea",
        "CI_FORGE_URL": "http://127.0.0.1:9",
        "CI_SYSTEM_URL": "https://ci.example.com",
        "PLUGIN_SERVICE": service.project,
        "PLUGIN_COMPOSE_PROJECT": service.project,
        "PLUGIN_EVIDENCE_DIR": str(evidence),
        "PLUGIN_STATE_DIR": str(state),
        "PLUGIN_DRAFTS_DIR": str(drafts),
        "PLUGIN_TRACKER": "file",
    }

    collect = plugin(env, workspace, phase="collect")
    assert collect.returncode == 0, collect.stdout + collect.stderr
    # The step runs as root here, so it can read the containers' log files: it only freezes
    # them (and the inspect documents) into the state dir's private spool; nothing is
    # processed, and nothing unredacted reaches the evidence dir, before the rollback.
    assert "container(s) frozen" in collect.stdout
    assert not evidence.exists() or not list(evidence.iterdir())
    (spool,) = (state / "spool").iterdir()
    assert stat.S_IMODE((state / "spool").stat().st_mode) == stat.S_IMODE(spool.stat().st_mode) == 0o700
    assert {stat.S_IMODE(f.stat().st_mode) for f in spool.iterdir()} == {0o600}

    # The rollback: the previous version replaces the failed containers.
    service.remove_containers()
    service.run("api", good, 'echo "api starting, version good"; sleep 600')
    service.run("web", good, 'echo "GET /health 200"; sleep 600')

    finalize = plugin(env, workspace, phase="finalize", smoke_report="smoke.jsonl")
    assert finalize.returncode == 0, finalize.stdout + finalize.stderr
    bundle = sorted(p.name for p in evidence.iterdir())
    assert len(bundle) == 3 and {Path(n).suffixes[-1] for n in bundle} == {".log", ".json"}
    assert list((state / "spool").iterdir()) == []  # processed, then deleted

    # The bundle: merged logs of both containers, checksummed in the manifest, no secret.
    log_file = next(evidence.glob("rollback-*.log"))
    log_text = log_file.read_text()
    assert "FATAL: column users.tenant_id does not exist" in log_text
    assert "GET /health 502 upstream api unavailable" in log_text
    manifest = next(evidence.glob("rollback-*.manifest.json")).read_text()
    assert hashlib.sha256(log_file.read_bytes()).hexdigest() in manifest
    assert SECRET not in all_text(evidence, state, drafts)

    with Ledger(state) as ledger:
        (incident,) = ledger.list()
    assert (incident.service, incident.environment) == (service.project, "production")
    assert (incident.deploy_sha, incident.rollback_sha) == (bad_sha, good_sha)  # from the running image's label
    assert incident.pipeline_number == "42"
    assert incident.pipeline_url == "https://ci.example.com/repos/7/pipeline/42"
    assert (incident.failed_step.step, incident.failed_step.name) == (3, "api health")
    assert sorted(Path(e.path).name for e in incident.evidence) == bundle
    assert "feat: tenant column migration" in [c.subject for c in incident.commits]

    draft = Path(incident.draft_path)
    assert draft.parent == drafts
    draft_text = draft.read_text()
    assert bad_sha[:7] in draft_text and good_sha[:7] in draft_text and "api health" in draft_text

    (ticket_file,) = (state / "tickets").glob("*.json")
    ticket = json.loads(ticket_file.read_text())
    assert incident.ticket is not None and incident.ticket.key == ticket_file.stem == ticket["key"]
    assert str(draft) in ticket["attachments"]
    assert ticket["pipeline_url"] == incident.pipeline_url

    # A restarted pipeline runs the step again: same incident, same ticket.
    again = plugin(env, workspace, phase="finalize", smoke_report="smoke.jsonl")
    assert again.returncode == 0, again.stdout + again.stderr
    with Ledger(state) as ledger:
        assert [i.id for i in ledger.list()] == [incident.id]
    assert [p.name for p in (state / "tickets").glob("*.json")] == [ticket_file.name]


@python_usable_by(65534)
def test_plugin_started_as_root_collects_as_its_user_through_the_socket_group(service):
    """What `backend_options: docker: user: "0"` does: the entrypoint joins the socket's group
    and drops to the plugin user, which can then read the containers."""
    public = Path(tempfile.mkdtemp(prefix="rpm-delivery-"))
    try:
        public.chmod(0o755)
        bin_dir = public / "bin"
        make_rollback_pm(bin_dir)
        bin_dir.chmod(0o755)
        out = public / "out"
        out.mkdir()
        os.chown(out, 65534, 65534)
        image = service.image("bad", "f" * 40)
        service.run("api", image, 'echo "api crashed"; exit 1')
        service.wait_exited("api")
        env = {
            "PATH": f"{bin_dir}:{SYSTEM_PATH}",
            "CI": "woodpecker",
            "CI_COMMIT_SHA": "f" * 40,
            "CI_PIPELINE_NUMBER": "7",
            "ROLLBACK_PM_PLUGIN_USER": "65534",
            "PLUGIN_SERVICE": service.project,
            "PLUGIN_COMPOSE_PROJECT": service.project,
            "PLUGIN_EVIDENCE_DIR": str(out / "evidence"),
            "PLUGIN_STATE_DIR": str(out / "state"),
        }

        result = plugin(env, public, phase="collect")

        assert result.returncode == 0, result.stdout + result.stderr
        files = list((out / "evidence").iterdir())
        assert len(files) == 3
        assert {f.stat().st_uid for f in files} == {65534}
        assert "api crashed" in next((out / "evidence").glob("*.log")).read_text()
    finally:
        shutil.rmtree(public, ignore_errors=True)


@python_usable_by(65534)
def test_with_log_files_the_plugin_user_reads_the_log_files_and_only_freezes_them(service):
    """`log_files` on a real engine: uid 65534 keeps the log directory's group, no more, and that
    is enough to read Docker's 0640 log files: the collect phase freezes; the finalize writes the bundle."""
    public = Path(tempfile.mkdtemp(prefix="rpm-delivery-"))
    try:
        public.chmod(0o755)
        bin_dir = public / "bin"
        make_rollback_pm(bin_dir)
        bin_dir.chmod(0o755)
        out = public / "out"
        out.mkdir()
        os.chown(out, 65534, 65534)
        image = service.image("bad", "f" * 40)
        service.run("api", image, 'echo "api crashed"; exit 1')
        service.wait_exited("api")
        log_path = Path(sh("docker", "inspect", "--format", "{{.LogPath}}", f"{service.project}-api-1"))
        env = {
            "PATH": f"{bin_dir}:{SYSTEM_PATH}",
            "CI": "woodpecker",
            "CI_COMMIT_SHA": "f" * 40,
            "CI_PIPELINE_NUMBER": "7",
            "ROLLBACK_PM_PLUGIN_USER": "65534",
            "PLUGIN_SERVICE": service.project,
            "PLUGIN_COMPOSE_PROJECT": service.project,
            "PLUGIN_EVIDENCE_DIR": str(out / "evidence"),
            "PLUGIN_STATE_DIR": str(out / "state"),
            "PLUGIN_LOG_FILES": str(log_path.parent.parent),
            "PLUGIN_LOG_LEVEL": "info",
        }

        collect = plugin(env, public, phase="collect")

        assert collect.returncode == 0, collect.stdout + collect.stderr
        assert "container(s) frozen" in collect.stdout, collect.stderr
        (spool,) = (out / "state" / "spool").iterdir()
        assert {f.stat().st_uid for f in [spool, *spool.iterdir()]} == {65534}
        assert not (out / "evidence").exists()

        finalize = plugin({k: v for k, v in env.items() if k != "PLUGIN_LOG_FILES"}, public, phase="finalize")

        assert finalize.returncode in (0, 3), finalize.stdout + finalize.stderr
        assert "api crashed" in next((out / "evidence").glob("*.log")).read_text()
        assert list((out / "state" / "spool").iterdir()) == []
    finally:
        shutil.rmtree(public, ignore_errors=True)
