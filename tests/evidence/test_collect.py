"""Evidence collection against a real Docker engine."""

import io
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import docker
import pytest

from rollback_pm import log
from rollback_pm.errors import DockerUnavailable, EvidenceDirError, NoContainersMatched
from rollback_pm.evidence import CollectOptions, Selection, collect, docker_client

pytestmark = pytest.mark.docker

CANARIES = ["env-Canary-11", "cmd-Canary-22", "label-Canary-33", "url-Canary-44", "bearer-Canary-55xyz",
            "pem-Canary-66"]


@pytest.fixture()
def containers(busybox_image):
    """Start containers for one test and remove them after; returns a starter."""
    tag = f"rpmev{uuid.uuid4().hex[:8]}"
    started: list[str] = []

    def start(name: str, script: str, *args: str, wait: bool = True, argv: tuple[str, ...] = ()) -> str:
        cid = subprocess.run(
            ["docker", "run", "-d", "--network", "none", "--name", f"{tag}-{name}", "--label", f"rpmtest={tag}",
             *args, busybox_image, "sh", "-c", script, *argv],
            check=True, capture_output=True, text=True).stdout.strip()
        started.append(cid)
        if wait:
            subprocess.run(["docker", "wait", cid], check=True, capture_output=True)
        return cid

    start.tag = tag  # type: ignore[attr-defined]
    yield start
    if started:
        subprocess.run(["docker", "rm", "-f", *started], capture_output=True)


def run(tmp_path: Path, tag: str, **options) -> object:
    return collect(Selection(labels=[f"rpmtest={tag}"]), CollectOptions(evidence_dir=tmp_path / "ev", **options))


def read_log(result) -> list[str]:
    return Path(result.files[0].path).read_text().splitlines()


def test_canary_secrets_reach_no_file_and_no_log_line(tmp_path, containers):
    script = ('echo "start KEY_COUNT=3"; echo "db at postgres://app:url-Canary-44@db/app"; '
              'echo "using env-Canary-11 now"; echo "Authorization: Bearer bearer-Canary-55xyz" >&2; '
              'echo "-----BEGIN PRIVATE KEY-----"; echo "pem-Canary-66"; echo "-----END PRIVATE KEY-----"; '
              'echo done')
    containers("api", script, "-e", "DB_PASSWORD=env-Canary-11", "-e", "KEY_COUNT=3", "-e",
               "TOKEN_TTL_SECONDS=300", "-e", "DATABASE_URL=postgres://app:url-Canary-44@db/app",
               "--label", "com.example.api_token=label-Canary-33")
    containers("cli", 'echo "$0 $1"', argv=("--password", "cmd-Canary-22"))
    stream = io.StringIO()
    log.configure("json", "debug", stream=stream)
    result = run(tmp_path, containers.tag)
    log.configure()
    written = "".join(Path(f.path).read_text() for f in result.files) + stream.getvalue()
    for canary in CANARIES:
        assert canary not in written, canary
    text = "\n".join(read_log(result))
    assert "start KEY_COUNT=3" in text and "done" in text
    inspect = Path(result.files[1].path).read_text()
    assert "KEY_COUNT=3" in inspect and "TOKEN_TTL_SECONDS=300" in inspect
    manifest = json.loads(Path(result.files[2].path).read_text())
    assert manifest["redactions"]["known-value"] >= 3
    assert not any(c in json.dumps(manifest) for c in CANARIES)


def test_bundle_files_modes_manifest_and_merge_order(tmp_path, containers):
    a = containers("a", "for i in 1 2 3 4 5 6 7 8; do echo a$i; sleep 0.25; done", wait=False)
    containers("b", "for i in 1 2 3 4 5 6 7 8; do echo b$i >&2; sleep 0.25; done")
    subprocess.run(["docker", "wait", a], check=True, capture_output=True)
    result = run(tmp_path, containers.tag)
    names = sorted(Path(f.path).name for f in result.files)
    assert names == [f"rollback-{result.bundle_id}{s}" for s in (".inspect.json", ".log", ".manifest.json")]
    for f in result.files:
        assert oct(os.stat(f.path).st_mode & 0o777) == "0o640"
    assert oct((tmp_path / "ev").stat().st_mode & 0o777) == "0o750"
    lines = read_log(result)
    words = [line.split()[-1] for line in lines]
    assert [w for w in words if w.startswith("a")] == [f"a{i}" for i in range(1, 9)]
    assert [w for w in words if w.startswith("b")] == [f"b{i}" for i in range(1, 9)]
    assert words != sorted(words)  # the two containers' lines really interleave
    assert {tuple(line.split()[:2]) for line in lines} == {(f"{containers.tag}-a", "stdout"),
                                                          (f"{containers.tag}-b", "stderr")}
    stamps = [line.split()[2] for line in lines]
    assert stamps == sorted(stamps)
    manifest = json.loads(Path(result.files[2].path).read_text())
    import hashlib
    for entry, f in zip(manifest["files"], result.files):
        assert entry["sha256"] == hashlib.sha256(Path(f.path).read_bytes()).hexdigest() == f.sha256
    assert {c["name"]: c["ok"] for c in manifest["containers"]} == {f"{containers.tag}-a": True,
                                                                   f"{containers.tag}-b": True}
    assert not list((tmp_path / "ev").glob(".*"))  # no temp or spool left


def test_cap_keeps_the_newest_bytes(tmp_path, containers):
    containers("big", "seq 1 20000")
    result = run(tmp_path, containers.tag, max_bytes_per_container=20_000)
    lines = read_log(result)
    assert lines[-1].endswith(" 20000")
    assert not any(line.endswith(" 1") for line in lines)
    [c] = result.containers
    assert c.truncated and c.original_bytes == sum(len(str(i)) + 1 for i in range(1, 20001))
    assert 10_000 < c.kept_bytes <= 20_000
    manifest = json.loads(Path(result.files[2].path).read_text())
    assert manifest["containers"][0]["truncated"] is True


def test_total_cap_keeps_the_newest_across_containers(tmp_path, containers):
    containers("one", "seq 1 3000")
    containers("two", "seq 5001 8000")
    result = run(tmp_path, containers.tag, max_total_bytes=5_000)
    data = Path(result.files[0].path).read_bytes()
    assert len(data) <= 5_000 and data.endswith(b" 8000\n")


def test_since_filters_older_lines(tmp_path, containers):
    containers("s", "echo old; sleep 2; echo new")
    doc = docker.APIClient(version="auto").inspect_container(f"{containers.tag}-s")
    started = datetime.fromisoformat(doc["State"]["StartedAt"][:26] + "+00:00")
    result = run(tmp_path, containers.tag, since=started.replace(microsecond=0) + __import__("datetime").timedelta(seconds=1.5))
    assert [line.split()[-1] for line in read_log(result)] == ["new"]


def test_fast_path_and_api_path_give_the_same_lines(tmp_path, containers):
    script = 'seq 1 3000; echo "err line" >&2; printf "no newline at end"'
    containers("same", script)
    fast = run(tmp_path, containers.tag, fast_path="auto")
    api = run(tmp_path, containers.tag, fast_path="never")
    assert fast.containers[0].path_used == "json-file" and api.containers[0].path_used == "api"
    assert Path(fast.files[0].path).read_bytes() == Path(api.files[0].path).read_bytes()


def test_tty_container(tmp_path, containers):
    containers("tty", "echo one; echo two", "-t")
    for mode in ("auto", "never"):
        result = run(tmp_path, containers.tag, fast_path=mode)
        assert [line.split(" ", 3)[-1] for line in read_log(result)] == ["one", "two"]


def test_no_match_names_the_selection(tmp_path, busybox_image):
    with pytest.raises(NoContainersMatched, match="no container matches label rpmtest=nothing-here"):
        collect(Selection(labels=["rpmtest=nothing-here"]), CollectOptions(evidence_dir=tmp_path))


def test_name_regex_is_anchored(tmp_path, containers):
    containers("web-1", "echo w")
    containers("web-10", "echo w10")
    result = collect(Selection(name_regex=f"{containers.tag}-web-1"), CollectOptions(evidence_dir=tmp_path))
    assert [c.name for c in result.containers] == [f"{containers.tag}-web-1"]


def test_dead_docker_socket(tmp_path):
    with pytest.raises(DockerUnavailable, match="DOCKER_HOST"):
        docker_client(f"unix://{tmp_path}/missing.sock")


def test_evidence_dir_rules(tmp_path, containers):
    containers("x", "echo x")
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    sel = Selection(labels=[f"rpmtest={containers.tag}"])
    with pytest.raises(EvidenceDirError, match="is a symlink"):
        collect(sel, CollectOptions(evidence_dir=tmp_path / "link"))
    (tmp_path / "file").write_text("")
    with pytest.raises(EvidenceDirError, match="is not a directory"):
        collect(sel, CollectOptions(evidence_dir=tmp_path / "file"))
    with pytest.raises(EvidenceDirError, match="below the floor"):
        collect(sel, CollectOptions(evidence_dir=real, min_free_mb=10**9))
    assert list(real.iterdir()) == []


def test_budget_expiry_gives_a_partial_bundle(tmp_path, containers):
    containers("slow", "seq 1 200000")
    result = run(tmp_path, containers.tag, timeout=0.0)
    assert result.partial and result.degraded
    assert len(result.files) == 3
    manifest = json.loads(Path(result.files[2].path).read_text())
    assert manifest["partial"] is True and "time budget" in manifest["containers"][0]["error"]


class VanishingClient(docker.APIClient):
    """A real client; removing a container for real just before it is inspected."""

    victim = ""

    def inspect_container(self, container):
        if container == self.victim:
            subprocess.run(["docker", "rm", "-f", container], capture_output=True)
        return super().inspect_container(container)


def test_a_vanished_container_is_recorded_and_the_others_complete(tmp_path, containers):
    containers("stays", "echo stays")
    gone = containers("goes", "echo goes")
    client = VanishingClient(version="auto")
    client.victim = gone
    result = collect(Selection(labels=[f"rpmtest={containers.tag}"]), CollectOptions(evidence_dir=tmp_path),
                     client=client)
    assert result.degraded
    by_name = {c.name: c for c in result.containers}
    assert by_name[f"{containers.tag}-stays"].ok
    assert not by_name[f"{containers.tag}-goes"].ok and "inspect failed" in by_name[f"{containers.tag}-goes"].error
    assert read_log(result)[0].endswith("stays")


def test_sigkill_mid_run_leaves_nothing_under_a_final_name(tmp_path, containers):
    containers("huge", "yes 'a fairly long log line to make the collection take a while' | head -n 1500000")
    code = ("import sys; from pathlib import Path; from rollback_pm.evidence import *; "
            f"collect(Selection(labels=['rpmtest={containers.tag}']), CollectOptions(evidence_dir=Path(sys.argv[1])))")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "ev")], cwd=Path(__file__).parents[2])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not list((tmp_path / "ev").glob(".*")) if (tmp_path / "ev").exists() else True:
        time.sleep(0.05)
        if time.monotonic() > deadline:
            break
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not list((tmp_path / "ev").glob("rollback-*"))
