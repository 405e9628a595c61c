"""The Swarm hook's decisions that need no engine: which incident, whether it is done, masking."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from rollback_pm.config import load_settings
from rollback_pm.errors import UsageError
from rollback_pm.ledger import Ledger, incident_id
from rollback_pm.models import EvidenceFile, Incident, SwarmFacts, SwarmFailures, SwarmUpdate
from rollback_pm.swarm.events import ServiceEvent
from rollback_pm.swarm.snapshot import ServiceSnapshot
from rollback_pm.swarm_hook import _mask, _primary, finalized, incident_for_event, selection_of

FIXTURES = Path(__file__).parent / "fixtures"
STARTED = datetime(2026, 12, 3, 9, 24, 14, tzinfo=timezone.utc)


def settings(tmp_path: Path, **flags: object):  # type: ignore[no-untyped-def]
    (tmp_path / "none.toml").write_text("")
    return load_settings({"state_dir": str(tmp_path / "state"), **flags}, env={}, config_path=tmp_path / "none.toml")


def snap(name: str, started: str | None = None) -> ServiceSnapshot:
    data = json.loads((FIXTURES / "manual_rollback_completed.json").read_text())
    service = copy.deepcopy(data["service"])
    service["Spec"]["Name"] = name
    service["UpdateStatus"] = {"State": "completed", "StartedAt": started} if started else None
    return ServiceSnapshot(service, data["tasks"], data["nodes"], data["images"])


def test_selection_of_the_settings(tmp_path: Path) -> None:
    assert selection_of(settings(tmp_path)) is None
    chosen = selection_of(settings(tmp_path, swarm_service=["api", " "], stack="shop"))
    assert chosen is not None and (chosen.services, chosen.stack) == (["api"], "shop")


def test_the_pipelines_service_among_a_stack(tmp_path: Path) -> None:
    api, web = snap("shop_api", "2026-12-03T09:00:00Z"), snap("shop_web", "2026-12-03T09:30:00Z")
    for s in (api, web):
        s.service["Spec"]["Labels"]["com.docker.stack.namespace"] = "shop"
    assert _primary(settings(tmp_path, service="api"), [api, web]).snap is api
    assert _primary(settings(tmp_path), [web]).snap is web
    latest = _primary(settings(tmp_path, service="shop"), [api, web])
    assert latest.snap is web and "the stack's service updated last" in latest.extra_warnings[0]
    with pytest.raises(UsageError, match="give --service NAME"):
        _primary(settings(tmp_path), [api, web])


def swarm_facts(state: str, **update: object) -> SwarmFacts:
    return SwarmFacts(service="web", service_id="svc1", update=SwarmUpdate(state=state, **update))  # type: ignore[arg-type]


def test_finalized_means_a_terminal_state_evidence_and_a_draft() -> None:
    evidence = [EvidenceFile("/e/rollback-x.log", "log", "0" * 64, 1, "x")]
    done = Incident(
        id="i", service="web", environment="production", deploy_sha="", swarm=swarm_facts("rollback_completed")
    )
    assert not finalized(done)  # no evidence, no draft yet
    done.evidence, done.draft_path = evidence, "/d/draft.md"
    assert finalized(done)
    done.swarm = swarm_facts("rollback_started")
    assert not finalized(done) and not finalized(None)


def test_a_replayed_event_finds_the_incident_it_belongs_to(tmp_path: Path) -> None:
    facts = swarm_facts(
        "rollback_completed",
        started_at=STARTED,
        completed_at=STARTED + timedelta(seconds=30),
        rollback_started_at=STARTED + timedelta(seconds=20),
    )
    incident = Incident(id="", service="web", environment="production", deploy_sha="", swarm=facts)
    with Ledger(tmp_path) as ledger:
        ledger.upsert_incident(incident, idem_key="swarm\x1fsvc1\x1f2026-12-03T09:24:14.000000000Z")

        def at(seconds: int, service_id: str = "svc1") -> ServiceEvent:
            when = int((STARTED + timedelta(seconds=seconds)).timestamp()) * 1_000_000_000
            return ServiceEvent(service_id, "web", "update", when, "rollback_completed")

        assert incident_for_event(ledger, at(20)) is not None  # its rollback_started
        assert incident_for_event(ledger, at(30)) is not None  # its completion
        assert incident_for_event(ledger, at(600)) is None  # a later rollback
        assert incident_for_event(ledger, at(20, "svc2")) is None  # another service of that name
    assert incident.id == incident_id("swarm\x1fsvc1\x1f2026-12-03T09:24:14.000000000Z")


def test_swarms_free_text_is_masked() -> None:
    facts = swarm_facts("rollback_started", message="task failed: DB_PASSWORD=hunter2hunter2 rejected")
    facts.failures = SwarmFailures(count=1, errors=["starting container failed: postgres://app:s3cretPass@db/app"])
    _mask(facts)
    assert facts.update is not None and facts.update.message == "task failed: DB_PASSWORD=[REDACTED] rejected"
    assert "s3cretPass" not in facts.failures.errors[0] and "[REDACTED]" in facts.failures.errors[0]
