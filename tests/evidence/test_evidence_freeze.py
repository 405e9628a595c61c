"""Freeze before the rollback, process after it: against the real engine.

The freeze copies byte ranges and inspect documents into a private spool; the finalize
turns the spool into the bundle. These tests hold the two to the one-pass ``collect``:
the same bytes in give the same bundle out, and whatever happens in between (the
container removed, its log rotating, the process killed or stopped), nothing lands under
a final name unfinished, nothing unredacted leaves the spool, and the next run recovers.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rollback_pm.errors import DockerUnavailable
from rollback_pm.evidence import CollectOptions, Selection, collect, finalize, freeze
from rollback_pm.evidence.lines import TS_LEN
from rollback_pm.evidence.spooldir import FINALIZING

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parents[2]
SECRET = "frz-Secret-Canary-42"

SCRIPT = (
    'seq 1 1500; echo "héllo ✓ 日本" >&2; head -c 40000 /dev/zero | tr "\\0" a; echo; '
    'echo "connecting with $DB_PASSWORD now"; echo "stderr line" >&2; '
    'head -c 300000 /dev/zero | tr "\\0" x; printf "\\n"; printf "no newline at end"'
)


def comparable(manifest: dict) -> dict:
    """A manifest without what differs between two runs: bundle id, times, the freeze's record."""
    out = {k: v for k, v in manifest.items() if k not in ("bundle", "created_at", "finished_at", "timings_s", "freeze")}
    out["files"] = [{k: v for k, v in f.items() if k != "name"} for f in manifest["files"]]
    return out


def run_py(code: str, *args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


FINALIZE_CHILD = r"""
import io, json, sys
from rollback_pm import log
from rollback_pm.evidence import finalize
stream = io.StringIO()
log.configure("json", "debug", stream=stream)
[bundle] = finalize(sys.argv[1], key=sys.argv[2])
print(json.dumps({"files": [f.path for f in bundle.files], "log": stream.getvalue()}))
"""


def test_a_spool_makes_the_bundle_a_single_pass_makes(tmp_path, containers):
    p = containers.prefix
    containers.run(
        "rot", SCRIPT, env={"DB_PASSWORD": SECRET}, log_opts={"max-size": "20k", "max-file": "100", "compress": "true"}
    )
    containers.run(
        "loc", SCRIPT, env={"DB_PASSWORD": SECRET}, log_driver="local", log_opts={"max-size": "50k", "max-file": "100"}
    )
    containers.run("tty", 'echo one; head -c 20000 /dev/zero | tr "\\0" c; echo; printf end', tty=True)
    containers.run("plain", "i=0; while [ $i -lt 3000 ]; do echo plain $i; echo err $i >&2; i=$((i+1)); done")
    selection = Selection(name_regex=f"{p}.*")
    state = tmp_path / "state"

    frozen = freeze(selection, CollectOptions(evidence_dir=tmp_path / "frozen"), state, key="rollback-1")

    assert frozen is not None and not frozen.degraded, frozen.errors
    assert [c.name for c in frozen.containers] == [f"{p}loc", f"{p}plain", f"{p}rot", f"{p}tty"]
    assert not (tmp_path / "frozen").exists()  # nothing reaches the evidence dir before the finalize
    spool = frozen.spool
    assert stat.S_IMODE(os.stat(spool).st_mode) == stat.S_IMODE(os.stat(spool.parent).st_mode) == 0o700
    assert {stat.S_IMODE(f.stat().st_mode) for f in spool.iterdir()} == {0o600}
    assert {f.stat().st_uid for f in spool.iterdir()} == {os.geteuid()}
    assert SECRET.encode() in (spool / "docs.json").read_bytes()  # unredacted, and only here

    # The finalize as the hook runs it: its own process, so the merge runs while the logs are read.
    child = run_py(FINALIZE_CHILD, str(state), "rollback-1")
    out, err = child.communicate(timeout=300)
    assert child.returncode == 0, err
    report = json.loads(out)
    assert "evidence.merged_while_reading" in report["log"]
    assert not spool.exists() and os.listdir(state / "spool") == []

    single = collect(selection, CollectOptions(evidence_dir=tmp_path / "single"))
    assert not single.degraded, single.errors
    by_kind = {Path(f).name.rsplit(".", 2)[-2] if f.endswith(".json") else "log": Path(f) for f in report["files"]}
    assert by_kind["log"].read_bytes() == Path(single.file("log").path).read_bytes()
    assert by_kind["inspect"].read_bytes() == Path(single.file("inspect").path).read_bytes()
    manifest = json.loads(by_kind["manifest"].read_text())
    assert comparable(manifest) == comparable(single.manifest)
    assert SECRET not in by_kind["log"].read_text() + by_kind["inspect"].read_text()

    # The manifest records the freeze: when, and exactly which bytes of which files.
    record = manifest["freeze"]
    assert record["spool"] == frozen.spool_id and record["frozen_at"] == frozen.frozen_at.isoformat()
    assert manifest["created_at"] == frozen.frozen_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    rot = next(c for c in record["containers"] if c["name"] == f"{p}rot")
    assert rot["left_behind_bytes"] == 0 and len(rot["files"]) > 3
    assert sum(f["compressed"] for f in rot["files"]) >= 2  # rotated and compressed, frozen whole
    for item in rot["files"]:
        assert item["start"] == 0 and item["end"] == item["size_at_freeze"] and item["inode"] > 0
        assert item["method"] in ("reflink", "copy_file_range", "sendfile", "read-write")
    assert sum(f["end"] - f["start"] for f in rot["files"]) == rot["frozen_bytes"]


@pytest.mark.parametrize("driver", ["json-file", "local"])
def test_under_a_cap_the_freeze_keeps_the_newest_lines_and_says_what_it_left(tmp_path, containers, driver):
    info = containers.run("big", "seq 1 200000", log_driver=driver, log_opts={"max-size": "100m"})
    selection = Selection(containers=[info["Id"]])
    cap = 1 << 20
    frozen = freeze(
        selection, CollectOptions(evidence_dir=tmp_path / "ev", max_bytes_per_container=cap), tmp_path, key="k"
    )
    assert frozen is not None
    [bundle] = finalize(tmp_path, key="k")

    [result] = bundle.containers
    data = Path(bundle.file("log").path).read_bytes()
    numbers = [int(line.rsplit(b" ", 1)[1]) for line in data.splitlines()]
    assert numbers == list(range(numbers[0], 200001)) and numbers[0] > 1  # whole lines, the newest, no gap
    line = len(f"{result.name} stdout ") + TS_LEN + 1 + 7
    assert cap * 0.9 < result.kept_bytes <= cap and result.kept_bytes == len(data)
    assert result.truncated and result.ok
    assert any(n.startswith("frozen: the newest ") and "left behind" in n for n in result.notes)
    [record] = bundle.manifest["freeze"]["containers"]
    assert record["left_behind_bytes"] > 0 and record["raw_bytes"] > record["frozen_bytes"]
    [item] = record["files"]
    assert 0 < item["start"] < item["end"] == item["size_at_freeze"]

    # A single pass over the same bytes (the same newest lines) writes the same log.
    single = collect(selection, CollectOptions(evidence_dir=tmp_path / "single", max_bytes_per_container=len(data)))
    assert Path(single.file("log").path).read_bytes() == data
    assert single.containers[0].kept_bytes == result.kept_bytes and line < result.kept_bytes


def test_a_container_removed_right_after_the_freeze_still_gets_its_evidence(tmp_path, containers):
    gone = containers.run("gone", 'echo "FATAL: migration failed"; seq 1 2000; exit 1')
    stays = containers.run("stays", "echo still here")
    frozen = freeze(
        Selection(name_regex=f"{containers.prefix}.*"), CollectOptions(evidence_dir=tmp_path / "ev"), tmp_path, key="k"
    )
    assert frozen is not None
    containers.remove(gone["Id"])  # the rollback replaces it; its log files go with it
    assert not os.path.exists(gone["LogPath"])

    [bundle] = finalize(tmp_path, key="k")

    assert not bundle.degraded, bundle.errors
    text = Path(bundle.file("log").path).read_text()
    assert f"{containers.prefix}gone stdout " in text and "FATAL: migration failed" in text and text.count("\n") == 2002
    assert [d["Id"] for d in bundle.inspect_docs] == [gone["Id"], stays["Id"]]
    assert bundle.inspect_docs[0]["State"]["ExitCode"] == 1


def test_a_container_removed_between_its_inspect_and_the_freeze_is_recorded(tmp_path, containers, monkeypatch):
    import importlib

    freeze_module = importlib.import_module("rollback_pm.evidence.freeze")

    gone = containers.run("gone", "echo bye")
    containers.run("stays", "echo still here")
    real = freeze_module.inspect_all

    def inspect_then_remove(*args, **kwargs):
        found = real(*args, **kwargs)
        containers.remove(gone["Id"])
        return found

    monkeypatch.setattr(freeze_module, "inspect_all", inspect_then_remove)
    frozen = freeze(
        Selection(name_regex=f"{containers.prefix}.*"), CollectOptions(evidence_dir=tmp_path / "ev"), tmp_path, key="k"
    )
    assert frozen is not None and frozen.degraded
    by = {c.name.rsplit("-", 1)[1]: c for c in frozen.containers}
    assert by["gone"].error == "container vanished (removed) before its logs were frozen" and by["stays"].ok
    [bundle] = finalize(tmp_path, key="k")
    by = {c.name.rsplit("-", 1)[1]: c for c in bundle.containers}
    assert by["gone"].error == "container vanished (removed) before its logs were read" and by["stays"].ok
    assert Path(bundle.file("log").path).read_text().endswith(" still here\n")


@pytest.mark.parametrize("compress", ["false", "true"])
def test_rotation_during_the_freeze(tmp_path, containers, compress):
    """Docker rotates (max-size/max-file) while the freeze opens and copies: each freeze is one
    consistent set, its lines whole and in order with no gap, whatever was renamed or deleted."""
    info = containers.run(
        "busy",
        "i=0; while true; do echo line $i; i=$((i+1)); done",
        log_opts={"max-size": "30k", "max-file": "3", "compress": compress},
        wait=False,
    )
    deadline = time.monotonic() + 60
    while int(containers.client.logs(info["Id"], tail=1).split()[-1] or 0) < 20000:  # rotated many times over
        assert time.monotonic() < deadline, "the container never got to line 20000"
        time.sleep(0.1)
    selection = Selection(containers=[info["Id"]])
    for _ in range(6):
        assert freeze(selection, CollectOptions(evidence_dir=tmp_path / "ev"), tmp_path, key="k") is not None
    containers.remove(info["Id"])
    bundles = finalize(tmp_path, key="k")
    assert len(bundles) == 6
    for bundle in bundles:
        [result] = bundle.containers
        assert result.ok, result.error
        numbers = [int(x.rsplit(" ", 1)[1]) for x in Path(bundle.file("log").path).read_text().splitlines()]
        assert len(numbers) > 500 and numbers == list(range(numbers[0], numbers[0] + len(numbers)))


SLOW_FREEZE = r"""
import sys, time
from pathlib import Path
from rollback_pm.evidence import kcopy, CollectOptions, Selection, freeze
kcopy.CHUNK = 16 * 1024
kcopy._reflink = lambda *a: None
real = kcopy._copy_with
def slow(method, src, dst, start, end, check):
    def check_slowly():
        time.sleep(0.05)
        check()
    return real(method, src, dst, start, end, check_slowly)
kcopy._copy_with = slow
freeze(Selection(name_regex=sys.argv[2]), CollectOptions(evidence_dir=Path(sys.argv[1]) / "ev"), sys.argv[1], key="k")
print("frozen")
"""

SLOW_FINALIZE = r"""
import sys, time
from rollback_pm.evidence import finalize, spool
real = spool.Spool.write
def slow(self, data):
    time.sleep(0.05)
    real(self, data)
spool.Spool.write = slow
finalize(sys.argv[1], key="k")
print("finalized")
"""


def wait_for(condition, what: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, f"{what}: the process ended first: {proc.communicate()}"
        assert time.monotonic() < deadline, f"{what}: never happened"
        time.sleep(0.02)


def partial_spools(state: Path) -> list[str]:
    spool = state / "spool"
    return [n for n in os.listdir(spool) if n.endswith(".partial")] if spool.exists() else []


def test_sigkill_during_the_freeze_leaves_nothing_under_a_final_name_and_the_next_run_recovers(tmp_path, containers):
    containers.run("log", "seq 1 300000")
    regex = f"{containers.prefix}.*"
    proc = run_py(SLOW_FREEZE, str(tmp_path), regex)
    try:
        wait_for(
            lambda: any(
                n.startswith("c0.") for p in partial_spools(tmp_path) for n in os.listdir(tmp_path / "spool" / p)
            ),
            "copying",
            proc,
        )
    finally:
        proc.kill()
        proc.communicate()
    assert [n for n in os.listdir(tmp_path / "spool") if not n.endswith(".partial")] == []  # no complete spool
    assert not (tmp_path / "ev").exists()

    frozen = freeze(Selection(name_regex=regex), CollectOptions(evidence_dir=tmp_path / "ev"), tmp_path, key="k")
    assert frozen is not None
    assert os.listdir(tmp_path / "spool") == [frozen.spool_id]  # the killed freeze's partial spool is gone
    [bundle] = finalize(tmp_path, key="k")
    assert Path(bundle.file("log").path).read_text().endswith(" 300000\n")
    assert sorted(os.listdir(tmp_path / "ev")) == sorted(Path(f.path).name for f in bundle.files)
    assert os.listdir(tmp_path / "spool") == []


def test_sigkill_during_the_finalize_leaves_nothing_under_a_final_name_and_the_next_run_recovers(tmp_path, containers):
    containers.run("a", "seq 1 100000")
    containers.run("b", "seq 100001 200000")
    selection = Selection(name_regex=f"{containers.prefix}.*")
    frozen = freeze(selection, CollectOptions(evidence_dir=tmp_path / "ev"), tmp_path, key="k")
    assert frozen is not None
    proc = run_py(SLOW_FINALIZE, str(tmp_path))
    evidence = tmp_path / "ev"
    try:
        wait_for(
            lambda: evidence.exists() and any(n.endswith(".spool.tmp") for n in os.listdir(evidence)),
            "processing",
            proc,
        )
    finally:
        proc.kill()
        proc.communicate()
    assert all(n.startswith(".rollback-") for n in os.listdir(evidence))  # only hidden temps and the lock
    assert os.listdir(tmp_path / "spool") == [frozen.spool_id]
    assert (frozen.spool / FINALIZING).exists()

    # The next finalize, even another rollback's, takes over the one a killed finalize left.
    parked = []
    assert finalize(tmp_path, key="another-rollback", park=lambda key, b: parked.append((key, b))) == []
    [(key, bundle)] = parked
    assert key == "k" and not bundle.degraded
    assert sorted(os.listdir(evidence)) == sorted(Path(f.path).name for f in bundle.files)
    lines = Path(bundle.file("log").path).read_text().splitlines()
    assert len(lines) == 200000 and os.listdir(tmp_path / "spool") == []


def test_a_finalize_killed_after_writing_the_bundle_does_not_write_a_second(tmp_path, containers, monkeypatch):
    containers.run("a", "echo one")
    frozen = freeze(
        Selection(name_regex=f"{containers.prefix}.*"), CollectOptions(evidence_dir=tmp_path / "ev"), tmp_path, key="k"
    )
    assert frozen is not None

    def die(key, bundle):
        raise KeyboardInterrupt  # stopped after the bundle, before its spool was deleted

    with pytest.raises(KeyboardInterrupt):
        finalize(tmp_path, key="k", park=die)
    first = sorted(os.listdir(tmp_path / "ev"))
    assert len(first) == 3 and frozen.spool.exists()
    [again] = finalize(tmp_path, key="k")
    assert sorted(os.listdir(tmp_path / "ev")) == first  # the same bundle, found by the spool id in its manifest
    assert sorted(Path(f.path).name for f in again.files) == first and not frozen.spool.exists()
    assert again.inspect_docs[0]["Name"] == f"/{containers.prefix}a"


STOP_COLLECT = r"""
import signal, sys
from rollback_pm.cli import main
# Ctrl-C as a terminal's foreground process gets it: a suite started with `&` from a script
# hands its children SIGINT ignored, and Python then (rightly) leaves it ignored.
signal.signal(signal.SIGINT, signal.default_int_handler)
sys.argv = ["rollback-pm", "--state-dir", sys.argv[1] + "/state", "collect", "--evidence-dir", sys.argv[1] + "/ev",
            "--name", sys.argv[2], "--docker-host", sys.argv[3], "--min-free-mb", "0"]
main()
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stopped_collect_removes_its_temps_and_lock(tmp_path, containers, stalling_proxy, signum):
    big = containers.run("big", "seq 1 300000")
    stalling_proxy.stall = [f"/containers/{big['Id']}/logs"]
    stalling_proxy.after_bytes = 2 * 1024 * 1024  # mid-stream, spool segments written, when stopped
    proc = run_py(STOP_COLLECT, str(tmp_path), f"{containers.prefix}.*", stalling_proxy.url)
    evidence = tmp_path / "ev"
    wait_for(
        lambda: evidence.exists() and any(n.endswith(".spool.tmp") for n in os.listdir(evidence)), "spooling", proc
    )
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "rollback-pm: interrupted" in err, (proc.returncode, err)
    assert os.listdir(evidence) == []  # no spool temp, no half-written file, no lock


STOP_FREEZE = SLOW_FREEZE.replace('print("frozen")', "")
STOP_FINALIZE = SLOW_FINALIZE.replace('print("finalized")', "")


def test_sigterm_during_the_freeze_and_the_finalize_cleans_up(tmp_path, containers):
    containers.run("a", "seq 1 300000")
    containers.run("b", "seq 1 300000")
    regex = f"{containers.prefix}.*"
    proc = run_py(STOP_FREEZE, str(tmp_path), regex)
    wait_for(lambda: bool(partial_spools(tmp_path)), "freezing", proc)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert os.listdir(tmp_path / "spool") == []  # the partial spool removed on the way out

    frozen = freeze(Selection(name_regex=regex), CollectOptions(evidence_dir=tmp_path / "ev"), tmp_path, key="k")
    assert frozen is not None
    proc = run_py(STOP_FINALIZE, str(tmp_path))
    evidence = tmp_path / "ev"
    wait_for(
        lambda: evidence.exists() and any(n.endswith(".spool.tmp") for n in os.listdir(evidence)), "processing", proc
    )
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert os.listdir(evidence) == []  # temps, the merging child's file and the lock are gone
    assert os.listdir(tmp_path / "spool") == [frozen.spool_id]  # kept whole for the next finalize
    [bundle] = finalize(tmp_path, key="k")
    assert len(Path(bundle.file("log").path).read_text().splitlines()) == 600000


def test_an_engine_that_never_answers_is_cut_off_at_the_timeout(tmp_path, silent_engine, stalling_proxy, containers):
    options = CollectOptions(evidence_dir=tmp_path / "ev", timeout=3, docker_host=silent_engine.url)
    for attempt in (
        lambda: collect(Selection(labels=["app=web"]), options),
        lambda: freeze(Selection(labels=["app=web"]), options, tmp_path / "state", key="k"),
    ):
        started = time.monotonic()
        with pytest.raises(
            DockerUnavailable, match=r"did not answer within 2s: it accepts connections but does not respond"
        ):
            attempt()
        assert time.monotonic() - started < 3 + 10  # a guard against hanging, not a speed figure
    # An engine that answers the version, then goes silent on the list call: the same deadline.
    containers.run("x", "echo x")
    stalling_proxy.stall = ["/containers/json"]
    options = CollectOptions(evidence_dir=tmp_path / "ev", timeout=3, docker_host=stalling_proxy.url)
    started = time.monotonic()
    with pytest.raises(DockerUnavailable, match="failed to list containers: engine did not answer within"):
        freeze(Selection(name_regex=f"{containers.prefix}.*"), options, tmp_path / "state", key="k")
    assert time.monotonic() - started < 3 + 10
    assert os.listdir(tmp_path / "ev") == []  # made by collect's first check, nothing in it


def test_the_cli_honours_timeout_against_a_silent_engine(tmp_path, silent_engine):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ROLLBACK_PM_", "DOCKER_"))}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "rollback_pm",
            "--state-dir",
            str(tmp_path / "state"),
            "collect",
            "--label",
            "a=b",
            "--evidence-dir",
            str(tmp_path / "ev"),
            "--timeout",
            "4",
            "--docker-host",
            silent_engine.url,
        ],
        cwd=ROOT,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"rollback-pm: Docker engine at {silent_engine.url} did not answer within 3s" in result.stderr


@pytest.fixture()
def full_disk(tmp_path):
    """A 2 MiB tmpfs: a real ENOSPC, not a mock."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (CI runs the suite as root)")
    mount = tmp_path / "full"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.parametrize("fast_path", ["always", "never"])
def test_a_disk_filling_up_while_spooling_is_an_evidence_dir_error(tmp_path, containers, full_disk, fast_path):
    containers.run("big", "seq 1 300000")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ROLLBACK_PM_", "DOCKER_"))}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "rollback_pm",
            "--state-dir",
            str(tmp_path / "state"),
            "collect",
            "--name",
            f"{containers.prefix}.*",
            "--evidence-dir",
            str(full_disk),
            "--min-free-mb",
            "0",
        ],
        cwd=ROOT,
        env={**env, "PYTHONPATH": str(ROOT), "ROLLBACK_PM_FAST_PATH": fast_path},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stderr
    assert f"rollback-pm: evidence directory {full_disk} ran out of space while the logs were written" in result.stderr
    assert "Free space there" in result.stderr and "internal error" not in result.stderr
    assert os.listdir(full_disk) == []
