"""Swarm facts from real manager answers (dockerd 20.10, one-node Swarm).

The fixtures hold, per service, what ``swarm.snapshot.take`` read: the service document,
its tasks, the nodes and the images (both imported with ``docker import`` and labelled
org.opencontainers.image.revision aaaa… for the good version, bbbb… for the bad one):

- automatic_rollback_completed.json: updated to a version that exits 3 after a second,
  ``--update-failure-action rollback``; read after Swarm's rollback completed
  (PreviousSpec is gone, as Engine 20.10 leaves it).
- automatic_rollback_started.json: the same, read while the rollback was under way.
- manual_rollback_completed.json: updated to a version that runs, then
  ``docker service rollback``; read after it completed.
"""

from __future__ import annotations

import copy
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from rollback_pm import stored_facts
from rollback_pm.models import SwarmFacts, SwarmFailures, SwarmImage, SwarmUpdate
from rollback_pm.swarm import facts
from rollback_pm.swarm.events import ServiceEvent
from rollback_pm.swarm.snapshot import ServiceSnapshot

FIXTURES = Path(__file__).parent / "fixtures"
GOOD, BAD = "a" * 40, "b" * 40


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def load(name: str) -> ServiceSnapshot:
    data = json.loads((FIXTURES / f"{name}.json").read_text())
    return ServiceSnapshot(service=data["service"], tasks=data["tasks"], nodes=data["nodes"], images=data["images"])


@pytest.fixture()
def automatic() -> ServiceSnapshot:
    return load("automatic_rollback_completed")


@pytest.fixture()
def started() -> ServiceSnapshot:
    return load("automatic_rollback_started")


@pytest.fixture()
def manual() -> ServiceSnapshot:
    return load("manual_rollback_completed")


def test_automatic_rollback_versions_come_from_the_failed_tasks(automatic: ServiceSnapshot) -> None:
    assert automatic.service.get("PreviousSpec") is None  # what Engine 20.10 leaves after its own rollback
    got, warnings = facts.service_facts(automatic)
    assert got.trigger == "automatic"
    assert got.deploy == SwarmImage(
        "rpm-swarm-exp/app:bad", "sha256:8d689098b48405b7298177f5103af8ca73ca5bd4a21098b91e034c287cf291db", BAD
    )
    assert got.rollback == SwarmImage(
        "rpm-swarm-exp/app:good", "sha256:0c3817b25ac9baa0536a5447f72d179f14cbdaae62bc9cfe600d2586df0d783b", GOOD
    )
    assert warnings == [
        "Swarm keeps no PreviousSpec after its own rollback: the bad version rpm-swarm-exp/app:bad "
        "was read from the failed tasks' specs"
    ]
    assert got.update == SwarmUpdate(
        "rollback_completed",
        utc(2026, 12, 3, 9, 24, 14, 158383),
        utc(2026, 12, 3, 9, 24, 20, 130531),
        "rollback completed",
    )
    assert got.failures == SwarmFailures(
        count=1,
        first_at=utc(2026, 12, 3, 9, 24, 18, 343890),
        last_at=utc(2026, 12, 3, 9, 24, 18, 343890),
        nodes=["vm"],
        errors=["task: non-zero exit (3)"],
        exit_codes=[3],
        first_task="rpmexp-fast2.1",
    )
    assert got.tasks_seen == 4
    assert facts.bad_version_live_at(automatic, got) == utc(2026, 12, 3, 9, 24, 14, 158383)


def test_the_rollback_started_event_names_the_bad_image_before_the_tasks_do(automatic: ServiceSnapshot) -> None:
    event = ServiceEvent(
        automatic.id, automatic.name, "update", 1796289368853880967, "rollback_started", "updating",
        image_new="rpm-swarm-exp/app:good", image_old="rpm-swarm-exp/app:bad",
    )  # fmt: skip
    got, warnings = facts.service_facts(automatic, event)
    assert got.deploy is not None and got.deploy.revision == BAD
    assert warnings == []
    assert got.update is not None and got.update.rollback_started_at == event.time


def test_manual_rollback_swaps_the_specs(manual: ServiceSnapshot) -> None:
    got, warnings = facts.service_facts(manual)
    assert (got.trigger, warnings) == ("manual", [])
    assert got.deploy is not None and (got.deploy.image, got.deploy.revision) == ("rpm-swarm-exp/app:bad", BAD)
    assert got.rollback is not None and (got.rollback.image, got.rollback.revision) == ("rpm-swarm-exp/app:good", GOOD)
    assert got.update is not None and got.update.rollback_started_at == got.update.started_at
    assert got.failures == SwarmFailures()  # the bad version ran: somebody judged it bad
    assert facts.bad_version_live_at(manual, got) == utc(
        2026, 12, 3, 9, 35, 44, 641889
    )  # its first task was created then


def test_caught_while_rolling_back(started: ServiceSnapshot) -> None:
    got, _ = facts.service_facts(started)
    assert got.update is not None and got.update.state == "rollback_started"
    assert (
        got.update.message == "update rolled back due to failure or early termination of task x6d75bzf35k96j517sezme8l1"
    )
    assert got.failures.count == 1 and got.failures.errors == ["task: non-zero exit (3)"]
    assert facts.rollback_key(started.service) == "swarm\x1flnq170oek7ryz3r2fukupo9w2\x1f2026-12-03T09:36:01.935817362Z"


def test_the_key_is_the_same_from_rollback_started_to_completed(started: ServiceSnapshot) -> None:
    later = copy.deepcopy(started.service)
    later["UpdateStatus"].update(
        State="rollback_completed", CompletedAt="2026-12-03T09:36:12Z", Message="rollback completed"
    )
    assert facts.rollback_key(later) == facts.rollback_key(started.service)
    later["UpdateStatus"]["State"] = "completed"
    assert facts.rollback_key(later) is None  # no rollback: no Swarm identity


def test_an_event_belongs_to_the_current_rollback_only_when_it_is_not_older(automatic: ServiceSnapshot) -> None:
    started_at = 1796289854158383362  # 2026-12-03T09:24:14.158383362Z
    event = ServiceEvent(automatic.id, automatic.name, "update", started_at + 4_000_000_000, "rollback_started")
    assert facts.belongs_to_current(automatic.service, event)
    older = ServiceEvent(automatic.id, automatic.name, "update", started_at - 60_000_000_000, "rollback_started")
    assert not facts.belongs_to_current(automatic.service, older)


def test_a_pipeline_redeploy_is_matched_by_the_deploy_sha(manual: ServiceSnapshot) -> None:
    service = copy.deepcopy(manual.service)
    service["UpdateStatus"] = {"State": "completed", "Message": "update completed"}
    snap = ServiceSnapshot(service, manual.tasks, manual.nodes, manual.images)
    deploy, rollback, _ = facts.versions(snap, deploy_sha=BAD)
    assert (deploy and deploy.revision, rollback and rollback.revision) == (BAD, GOOD)
    # Spec runs the good version now: without a SHA, "after the rollback" reads it that way too
    deploy, rollback, _ = facts.versions(snap)
    assert (deploy and deploy.revision, rollback and rollback.revision) == (BAD, GOOD)
    # before the rollback (hook --phase collect) the current spec is the bad one
    deploy, rollback, _ = facts.versions(snap, before_rollback=True)
    assert (deploy and deploy.revision, rollback and rollback.revision) == (GOOD, BAD)


def test_merge_keeps_what_the_later_read_lost(started: ServiceSnapshot) -> None:
    early, _ = facts.service_facts(started)
    assert early.update is not None
    early.update.rollback_started_at = utc(2026, 12, 3, 9, 36, 6)
    late = copy.deepcopy(early)
    assert late.update is not None
    late.update.state, late.update.message = "rollback_completed", "rollback completed"
    late.update.rollback_started_at = None
    late.failures = SwarmFailures()
    merged = facts.merged(None, early, late)
    assert merged is not None and merged.update is not None
    assert merged.update.state == "rollback_completed"
    assert merged.update.message.startswith("update rolled back due to failure")
    assert merged.update.rollback_started_at == utc(2026, 12, 3, 9, 36, 6)
    assert merged.failures.count == 1


def test_timeline_tells_swarms_side(started: ServiceSnapshot) -> None:
    got, _ = facts.service_facts(started)
    assert got.update is not None
    got.update.rollback_started_at = utc(2026, 12, 3, 9, 36, 6)
    texts = [(e.text, e.source) for e in facts.timeline_events(got)]
    assert texts == [
        ("first failed task of bbbbbbb: rpmexp-auto.1: task: non-zero exit (3)", "Docker Swarm"),
        (
            "Swarm began rolling rpmexp-auto back to aaaaaaa by itself: update rolled back due to failure or "
            "early termination of task x6d75bzf35k96j517sezme8l1",
            "Docker Swarm",
        ),
    ]


def test_tasks_become_the_drafts_container_rows(automatic: ServiceSnapshot) -> None:
    rows = {s.id[:4]: s for s in facts.task_states(automatic)}
    failed = rows["z0qe"]
    assert (failed.name, failed.status, failed.exit_code, failed.image) == (
        "rpmexp-fast2.1.z0qellq2m7hn@vm", "failed", 3, "rpm-swarm-exp/app:bad",
    )  # fmt: skip
    assert rows["6vdf"].status == "running" and rows["6vdf"].exit_code is None and rows["6vdf"].finished_at is None


def test_facts_survive_the_ledgers_json(automatic: ServiceSnapshot) -> None:
    from dataclasses import asdict

    from rollback_pm.timeutil import iso

    got, _ = facts.service_facts(automatic)
    back = stored_facts.incident_facts(json.dumps({"swarm": asdict(got)}, default=iso))["swarm"]
    assert isinstance(back, SwarmFacts)
    assert back.deploy == got.deploy and back.rollback == got.rollback
    assert back.update is not None and back.update.completed_at == utc(2026, 12, 3, 9, 24, 20)
    assert back.failures.first_at == utc(2026, 12, 3, 9, 24, 18) and back.failures.errors == got.failures.errors


def test_garbled_documents_give_no_facts_rather_than_an_error() -> None:
    snap = ServiceSnapshot(
        service={
            "ID": "x",
            "Spec": {"Name": "s"},
            "UpdateStatus": {"State": "rollback_completed", "StartedAt": "soon"},
        },
        tasks=[{"ID": "t", "Status": {"State": "failed", "Timestamp": "later", "ContainerStatus": {"ExitCode": "3"}}}],
        nodes={},
    )
    got, _ = facts.service_facts(snap)
    assert got.update is not None and got.update.started_at is None
    assert (got.failures.count, got.failures.first_at, got.failures.exit_codes) == (1, None, [])


def test_environment_from_the_service_label(manual: ServiceSnapshot) -> None:
    assert facts.environment(manual, "production") == "production"
    service = copy.deepcopy(manual.service)
    service["Spec"]["Labels"]["rollback-pm.environment"] = "staging"
    assert facts.environment(ServiceSnapshot(service, [], {}), "production") == "staging"
