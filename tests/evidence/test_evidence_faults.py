"""When things go wrong: dead engine, hung or vanished containers, deadline, SIGKILL, bad selection."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import docker
import pytest

from rollback_pm.errors import DockerUnavailable, EvidenceDirError, NoContainersMatched, UsageError
from rollback_pm.evidence import CollectOptions, Selection, collect, docker_client, select_containers

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parents[2]


def names(result) -> dict[str, object]:
    return {c.name.rsplit("-", 1)[1]: c for c in result.containers}


def test_dead_engine_is_a_clear_error(tmp_path, monkeypatch):
    missing = tmp_path / "missing.sock"
    with pytest.raises(
        DockerUnavailable, match=rf"not reachable at unix://{missing}: .*No such file.*Start dockerd or set DOCKER_HOST"
    ):
        docker_client(f"unix://{missing}")
    refused = tmp_path / "refused.sock"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(refused))
    listener.close()  # the socket file stays, nobody listens: what a stopped dockerd leaves
    monkeypatch.setenv("DOCKER_HOST", f"unix://{refused}")
    with pytest.raises(DockerUnavailable, match=rf"not reachable at unix://{refused}: Connection refused"):
        collect(Selection(labels=["app=web"]), CollectOptions(evidence_dir=tmp_path / "ev"))
    assert list((tmp_path / "ev").iterdir()) == []  # nothing written, no temp left
    # The evidence dir is checked first: its error wins over the engine's.
    (tmp_path / "link").symlink_to(tmp_path / "ev")
    with pytest.raises(EvidenceDirError, match="is a symlink"):
        collect(Selection(labels=["app=web"]), CollectOptions(evidence_dir=tmp_path / "link"))


def test_hung_container_logs_give_a_partial_bundle_and_the_others_complete(tmp_path, containers, stalling_proxy):
    containers.run("ok", "echo fine; echo also fine >&2")
    hung = containers.run("hung", "seq 1 100000")
    stalling_proxy.stall = [f"/containers/{hung['Id']}/logs"]
    stalling_proxy.after_bytes = 64 * 1024  # headers and some lines, then silence
    client = docker_client(stalling_proxy.url)

    result = collect(
        Selection(name_regex=f"{containers.prefix}.*"),
        CollectOptions(evidence_dir=tmp_path, fast_path="never", timeout=6),
        client=client,
    )

    assert result.partial and result.degraded
    by = names(result)
    assert by["ok"].ok and by["ok"].kept_bytes > 0
    assert not by["hung"].ok and by["hung"].error.startswith("deadline reached")
    lines = Path(result.file("log").path).read_text().splitlines()
    hung_numbers = [int(x.rsplit(" ", 1)[1]) for x in lines if x.startswith(f"{containers.prefix}hung ")]
    # What came before the stall is kept, whole lines in order.
    assert 1000 < len(hung_numbers) < 100000 and hung_numbers == list(range(1, len(hung_numbers) + 1))
    assert by["hung"].kept_bytes == sum(len(x) + 1 for x in lines if x.startswith(f"{containers.prefix}hung "))
    manifest = json.loads(Path(result.file("manifest").path).read_text())
    assert manifest["partial"] is True and manifest["deadline_reached"] is True and manifest["complete"] is False
    assert any(e.startswith(f"{containers.prefix}hung: deadline reached") for e in manifest["errors"])
    assert [f.kind for f in result.files] == ["log", "inspect", "manifest"]


def test_hung_inspect_is_cut_off_and_the_others_complete(tmp_path, containers, stalling_proxy):
    containers.run("ok", "echo fine")
    hung = containers.run("hung", "echo never read")
    stalling_proxy.stall = [f"/containers/{hung['Id']}/json"]
    result = collect(
        Selection(name_regex=f"{containers.prefix}.*"),
        CollectOptions(evidence_dir=tmp_path, timeout=12),
        client=docker_client(stalling_proxy.url),
    )
    by = names(result)
    assert by["ok"].ok and Path(result.file("log").path).read_text().endswith(" fine\n")
    assert not by["hung"].ok and "inspect" in by["hung"].error and by["hung"].path_used == ""
    assert [d["Name"] for d in result.inspect_docs] == [f"/{containers.prefix}ok"]


class VanishingClient(docker.APIClient):
    """A real client that really removes ``victim`` right after the step named in ``after``."""

    victim = ""
    after = "list"

    def _get(self, url, *args, **kwargs):
        response = super()._get(url, *args, **kwargs)
        step = "list" if url.endswith("/containers/json") else "inspect" if url.endswith(f"{self.victim}/json") else ""
        if self.victim and step == self.after:
            docker.APIClient(version="auto").remove_container(self.victim, force=True)
            self.victim = ""
        return response


@pytest.mark.parametrize(
    ("after", "fast_path", "error"),
    [
        ("list", "auto", "container vanished (removed) before its inspect"),
        ("inspect", "auto", "container vanished (removed) before its logs were read"),
        ("inspect", "never", "container vanished (removed) before its logs were read"),
    ],
)
def test_a_vanished_container_is_recorded_and_the_others_complete(tmp_path, containers, after, fast_path, error):
    containers.run("stays", "echo stays")
    gone = containers.run("goes", "echo goes")
    client = VanishingClient(version="auto")
    client.victim, client.after = gone["Id"], after
    result = collect(
        Selection(name_regex=f"{containers.prefix}.*"),
        CollectOptions(evidence_dir=tmp_path, fast_path=fast_path),
        client=client,
    )
    by = names(result)
    assert by["stays"].ok and not by["goes"].ok and by["goes"].error == error
    assert result.degraded and result.partial
    assert Path(result.file("log").path).read_text().splitlines()[0].endswith(" stays")
    assert f"{containers.prefix}goes: {error}" in result.errors


def test_sigkill_mid_run_leaves_nothing_under_a_final_name(tmp_path, containers, stalling_proxy):
    big = containers.run("big", "seq 1 100000")
    stalling_proxy.stall = [f"/containers/{big['Id']}/logs"]
    stalling_proxy.after_bytes = 200 * 1024  # the collector is mid-stream when killed
    evidence = tmp_path / "ev"
    code = (
        "import sys; from pathlib import Path; from rollback_pm.evidence import *; "
        "collect(Selection(name_regex=sys.argv[2]), CollectOptions(evidence_dir=Path(sys.argv[1]), "
        "fast_path='never', timeout=60), client=docker_client(sys.argv[3]))"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(evidence), f"{containers.prefix}.*", stalling_proxy.url], cwd=ROOT
    )
    try:
        deadline = time.monotonic() + 60
        while not (evidence.exists() and any(n.endswith(".spool.tmp") for n in os.listdir(evidence))):
            assert proc.poll() is None and time.monotonic() < deadline, "collector never started spooling"
            time.sleep(0.05)
        time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    left = os.listdir(evidence)
    assert left and all(n.startswith(".rollback-") for n in left)  # only hidden temps and the lock
    # The next run (its process is gone) removes them and writes a whole bundle.
    stalling_proxy.stall = []
    result = collect(Selection(name_regex=f"{containers.prefix}.*"), CollectOptions(evidence_dir=evidence))
    assert sorted(os.listdir(evidence)) == sorted(Path(f.path).name for f in result.files)
    assert Path(result.file("log").path).read_text().endswith(" 100000\n")


def test_selection(tmp_path, containers):
    p = containers.prefix
    containers.run("web-1", "echo w1", labels={"app": "web", "tier": "front", "com.docker.compose.project": f"{p}proj"})
    containers.run("web-10", "echo w10", labels={"app": "web", "tier": "back"})
    running = containers.run("web-run", "echo run; sleep 60", labels={"app": "web"}, wait=False)
    client = docker_client()
    pick = lambda **kw: [c["Names"][0][1:] for c in select_containers(client, Selection(**kw))]  # noqa: E731

    assert pick(name_regex=f"{p}web-1") == [f"{p}web-1"]  # anchored: not web-10
    assert pick(name_regex=f"{p}web-.*") == [f"{p}web-1", f"{p}web-10", f"{p}web-run"]
    assert pick(labels=["app=web", "tier=back"], name_regex=f"{p}.*") == [f"{p}web-10"]  # labels are ANDed
    assert pick(compose_project=f"{p}proj") == [f"{p}web-1"]
    assert pick(containers=[running["Id"][:10], f"{p}web-1"]) == [f"{p}web-1", f"{p}web-run"]
    assert pick(name_regex=f"{p}.*", all_states=False) == [f"{p}web-run"]
    with pytest.raises(
        NoContainersMatched, match=rf"no container matches label app=nope, name /{p}.*/\. .*docker ps -a"
    ):
        select_containers(client, Selection(labels=["app=nope"], name_regex=f"{p}.*"))
    with pytest.raises(NoContainersMatched, match="no container selection given"):
        select_containers(client, Selection())
    with pytest.raises(UsageError, match="not a valid regular expression"):
        select_containers(client, Selection(name_regex="web-("))

    result = collect(Selection(containers=[f"{p}web-1", f"{p}missing"]), CollectOptions(evidence_dir=tmp_path))
    assert [c.name for c in result.containers] == [f"{p}web-1"] and result.partial
    assert result.errors == [f"--container {p}missing matched no container (with the other criteria)"]
