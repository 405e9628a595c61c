"""collect() end to end against the real engine: bundle files, merge order, manifest."""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from pathlib import Path

import pytest

from rollback_pm.evidence import CollectOptions, Selection, collect, docker_client
from rollback_pm.models import EvidenceFile

pytestmark = pytest.mark.docker

TS = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z"


def _lines(path: str) -> list[str]:
    return Path(path).read_text().splitlines()


def test_bundle_files_merge_order_and_manifest(containers, tmp_path):
    # Two containers log at the same time; the bundle interleaves them by timestamp.
    containers.run("a", "for i in 1 2 3 4 5 6; do echo a$i; echo A$i >&2; sleep 0.25; done", wait=False)
    containers.run("b", "for i in 1 2 3 4 5 6; do echo b$i; sleep 0.25; done", wait=True)
    containers.client.wait(containers.created[0], timeout=30)
    evidence = tmp_path / "evidence"

    result = collect(
        Selection(name_regex=f"{containers.prefix}.*"), CollectOptions(evidence_dir=evidence, fast_path="never")
    )

    assert not result.partial and not result.degraded and result.errors == []
    assert re.fullmatch(r"\d{8}T\d{6}Z", result.bundle_id)
    names = sorted(os.listdir(evidence))
    assert names == [f"rollback-{result.bundle_id}{s}" for s in (".inspect.json", ".log", ".manifest.json")]
    assert stat.S_IMODE(os.stat(evidence).st_mode) == 0o750
    for name in names:
        assert stat.S_IMODE(os.stat(evidence / name).st_mode) == 0o640

    log = result.file("log")
    lines = _lines(log.path)
    a, b = f"{containers.prefix}a", f"{containers.prefix}b"
    assert all(re.fullmatch(rf"({a} stdout|{a} stderr|{b} stdout) {TS} [aAb]\d", line) for line in lines)
    words = [line.split(" ")[3] for line in lines]
    for letter, stream in (("a", "stdout"), ("A", "stderr"), ("b", "stdout")):
        mine = [line for line in lines if line.split(" ")[3][0] == letter]
        assert [m.split(" ")[3] for m in mine] == [f"{letter}{i}" for i in range(1, 7)]
        assert all(m.split(" ")[1] == stream for m in mine)
    first_b = words.index("b1")
    assert any(w.startswith("a") for w in words[first_b:])  # the containers really interleave
    stamps = [line.split(" ")[2] for line in lines]
    assert stamps == sorted(stamps)

    by_name = {c.name: c for c in result.containers}
    assert set(by_name) == {a, b}
    for c in result.containers:
        assert c.ok and c.error is None and c.path_used == "api" and not c.truncated
        assert c.kept_bytes == c.original_bytes == sum(len(line) + 1 for line in lines if line.startswith(c.name + " "))

    manifest = json.loads(Path(result.file("manifest").path).read_text())
    assert manifest["bundle"] == result.bundle_id and manifest["complete"] is True
    assert manifest["selection"]["name_regex"] == f"{containers.prefix}.*"
    assert manifest["tool"]["name"] == "rollback-pm"
    assert set(manifest["timings_s"]) >= {"select_s", "inspect_s", "logs_s", "merge_write_s", "total_s"}
    for entry in manifest["files"]:
        data = (evidence / entry["name"]).read_bytes()
        assert entry["sha256"] == hashlib.sha256(data).hexdigest() and entry["bytes"] == len(data)
    assert [f.kind for f in result.files] == ["log", "inspect", "manifest"]
    for f in result.files:
        assert isinstance(f, EvidenceFile) and f.bundle == result.bundle_id
        assert hashlib.sha256(Path(f.path).read_bytes()).hexdigest() == f.sha256 and os.path.getsize(f.path) == f.bytes
    assert [c["name"] for c in manifest["containers"]] == [a, b]

    docs = json.loads(Path(result.file("inspect").path).read_text())
    assert [d["Name"] for d in docs] == [f"/{a}", f"/{b}"]
    assert docs == result.inspect_docs
    assert docs[0]["ImageSummary"]["RepoTags"] == ["rollback-pm-test/busybox:1"]
    assert docs[0]["ImageSummary"]["Id"] in result.image_docs


def test_second_bundle_in_same_second_gets_suffix(containers, tmp_path):
    containers.run("s", "echo hello")
    selection = Selection(containers=[f"{containers.prefix}s"])
    from datetime import datetime, timezone

    now = datetime(2026, 5, 13, 8, 47, 21, tzinfo=timezone.utc)
    first = collect(selection, CollectOptions(evidence_dir=tmp_path), now=now)
    second = collect(selection, CollectOptions(evidence_dir=tmp_path), now=now)
    third = collect(selection, CollectOptions(evidence_dir=tmp_path), now=now)
    assert [first.bundle_id, second.bundle_id, third.bundle_id] == [
        "20260513T084721Z",
        "20260513T084721Z-1",
        "20260513T084721Z-2",
    ]
    assert Path(first.file("log").path).read_bytes() == Path(third.file("log").path).read_bytes()
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]  # no temp or lock left


def test_explicit_client_and_id_prefix(containers, tmp_path):
    info = containers.run("p", "echo by-id")
    client = docker_client()
    result = collect(Selection(containers=[info["Id"][:12]]), CollectOptions(evidence_dir=tmp_path), client=client)
    assert [c.id for c in result.containers] == [info["Id"]]
    assert _lines(result.file("log").path)[0].endswith(" by-id")
