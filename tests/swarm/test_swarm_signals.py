"""The signals stage on a Swarm bundle (rollback_pm.swarm_signals), without an engine.

The bundle is built from a snapshot captured from dockerd 20.10 after Swarm's own rollback
(tests/swarm/fixtures): the inspect JSON as ``swarm.evidence`` writes it (services with
their ``Tasks`` and each task's ``NodeHostname``), the log in the bundle's line format.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rollback_pm import swarm_signals
from rollback_pm.models import EvidenceFile
from rollback_pm.swarm import facts
from rollback_pm.swarm.snapshot import ServiceSnapshot, task_label
from tests.swarm.test_swarm_facts import load

NOISE = "ERROR upstream cache slow, retrying"
FATAL = "FATAL: migration 42 failed"


def task(snap: ServiceSnapshot, prefix: str) -> dict[str, Any]:
    [found] = [t for t in snap.tasks if str(t["ID"]).startswith(prefix)]
    return found


def write_bundle(tmp_path: Path, snap: ServiceSnapshot, lines: list[tuple[str, str, str]]) -> Path:
    stem = tmp_path / "rollback-20261203T092420Z"
    doc = {
        **snap.service,
        "Tasks": [{**t, "NodeHostname": snap.hostname(str(t.get("NodeID") or ""))} for t in snap.tasks],
    }
    Path(f"{stem}.inspect.json").write_text(json.dumps([doc]))
    names = [task_label(snap, t) for t in snap.tasks]
    Path(f"{stem}.manifest.json").write_text(
        json.dumps({"source": "swarm", "containers": [{"name": n} for n in names]})
    )
    log = Path(f"{stem}.log")
    log.write_text("".join(f"{name} stderr {ts} {text}\n" for ts, name, text in sorted(lines)))
    return log


@pytest.fixture()
def automatic() -> ServiceSnapshot:
    return load("automatic_rollback_completed")


def test_the_failed_task_said_it_and_the_restored_tasks_are_the_baseline(
    tmp_path: Path, automatic: ServiceSnapshot
) -> None:
    good_before = task_label(automatic, task(automatic, "qqdkbl02"))  # the good version the update replaced
    bad = task_label(automatic, task(automatic, "z0qellq2"))  # failed, exit 3
    good_after = task_label(automatic, task(automatic, "6vdfvqli"))  # started again by the rollback
    log = write_bundle(
        tmp_path,
        automatic,
        [
            ("2026-12-03T09:24:13.000000000Z", good_before, NOISE),
            ("2026-12-03T09:24:15.000000000Z", bad, "app bad starting"),
            ("2026-12-03T09:24:15.500000000Z", bad, NOISE),
            ("2026-12-03T09:24:16.000000000Z", bad, FATAL),
            ("2026-12-03T09:24:19.500000000Z", good_after, "app good started"),
        ],
    )
    swarm, _ = facts.service_facts(automatic)
    [report], problems, note = swarm_signals.signals_stage(
        [EvidenceFile(path=str(log), kind="log", sha256="", bytes=0, bundle="b")], swarm, bad_since=None
    )
    assert problems == []
    assert note == f"new in the bad version: compared with the restored version's tasks in {log.name} (2 lines)"
    by_name = {c.name: c for c in report.containers}
    assert set(by_name) == {task_label(automatic, t) for t in automatic.tasks}  # no service posing as a container
    failed = by_name[bad]
    assert failed.context is not None
    assert (failed.context.status, failed.context.exit_code) == ("exited", 3)
    assert failed.context.describe() == "exit code 3, status exited"
    assert failed.context.created == "2026-12-03T09:24:14.162813021Z"
    news = {s.text: s.new for s in failed.signals}
    assert news == {FATAL: True, NOISE: False}  # the restored version logs the noise too
    assert by_name[good_after].context is not None and by_name[good_after].context.status == "running"
    # Swarm stopped the good task for the update: exit 137 is the stop's, not a failure
    stopped = by_name[good_before].context
    assert stopped is not None and (stopped.status, stopped.exit_code, stopped.failing) == ("shutdown", None, False)
    cause = report.suspected_cause
    assert cause is not None and cause.container == bad and FATAL in cause.text


def test_without_the_restored_versions_lines_nothing_is_marked_new(tmp_path: Path, automatic: ServiceSnapshot) -> None:
    bad = task_label(automatic, task(automatic, "z0qellq2"))
    log = write_bundle(tmp_path, automatic, [("2026-12-03T09:24:16.000000000Z", bad, FATAL)])
    swarm, _ = facts.service_facts(automatic)
    report, note = swarm_signals.report(str(log), swarm, None)
    assert note == "the bundle holds no line of the restored version's tasks, so no signal is marked new"
    assert [s.new for c in report.containers for s in c.signals] == [None]
    swarm.rollback = None
    _, note = swarm_signals.report(str(log), swarm, None)
    assert note == "the restored version is unknown, so no signal is marked new"


def test_a_container_bundle_is_read_as_the_container_hook_reads_it(tmp_path: Path) -> None:
    stem = tmp_path / "rollback-20261203T092420Z"
    Path(f"{stem}.inspect.json").write_text(json.dumps([{"Name": "/api-1", "Id": "c" * 64, "State": {}}]))
    log = Path(f"{stem}.log")
    log.write_text(f"api-1 stderr 2026-12-03T09:24:16.000000000Z {FATAL}\n")
    [report], problems, note = swarm_signals.signals_stage(
        [EvidenceFile(path=str(log), kind="log", sha256="", bytes=0, bundle="b")], None, bad_since=None
    )
    assert problems == [] and note is None
    assert [c.name for c in report.containers] == ["api-1"]


def test_an_unreadable_bundle_costs_its_signals_only(tmp_path: Path, automatic: ServiceSnapshot) -> None:
    log = write_bundle(tmp_path, automatic, [])
    log.unlink()
    reports, problems, _ = swarm_signals.signals_stage(
        [EvidenceFile(path=str(log), kind="log", sha256="", bytes=0, bundle="b")], None, bad_since=None
    )
    assert reports == []
    assert problems == [
        f"signals not read from {log.name}: no bundle log at {log}: give the rollback-<ts>.log of a collection"
    ]
