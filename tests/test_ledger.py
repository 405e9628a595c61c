import multiprocessing
import sqlite3
from datetime import datetime, timezone

import pytest

from rollback_pm.errors import IncidentNotFound, LedgerError
from rollback_pm.ledger import MIGRATIONS, SCHEMA_VERSION, Ledger, idempotency_key, incident_id
from rollback_pm.models import EvidenceFile, Incident, SmokeStep, TicketRef

DEPLOY = "d" * 40
ROLLBACK = "c" * 40
T0 = datetime(2026, 5, 13, 8, 47, 21, tzinfo=timezone.utc)


def make_incident(**over) -> Incident:
    values = dict(
        id="",
        service="api",
        environment="production",
        deploy_sha=DEPLOY,
        rollback_sha=ROLLBACK,
        rollback_sha_source="flag",
        pipeline_number="42",
        mitigated_at=T0,
        smoke_steps=[SmokeStep(name="api health", status="failed", step=3, ts=T0, source="smoke.jsonl")],
        evidence=[
            EvidenceFile(path="/e/rollback-1.log", kind="log", sha256="0" * 64, bytes=10, bundle="20260513T084721Z")
        ],
    )
    values.update(over)
    return Incident(**values)


def test_id_derives_from_the_idempotency_key():
    key = idempotency_key("api", "production", DEPLOY, ROLLBACK, "42")
    assert incident_id(key) == incident_id(idempotency_key("api", "production", DEPLOY, ROLLBACK, "42"))
    assert incident_id(key) != incident_id(idempotency_key("api", "production", DEPLOY, ROLLBACK, "43"))
    assert len(incident_id(key)) == 12


def test_rerun_updates_the_same_incident_without_duplicates(tmp_path):
    with Ledger(tmp_path) as ledger:
        first, new1 = ledger.upsert_incident(make_incident())
        second_evidence = EvidenceFile(
            path="/e/rollback-2.log", kind="log", sha256="1" * 64, bytes=20, bundle="20260513T090000Z"
        )
        later = T0.replace(hour=9)
        again, new2 = ledger.upsert_incident(
            make_incident(mitigated_at=later, evidence=[*make_incident().evidence, second_evidence])
        )
        assert (new1, new2) == (True, False)
        assert again.id == first.id
        assert len(ledger.list()) == 1
        assert [e.path for e in again.evidence] == ["/e/rollback-1.log", "/e/rollback-2.log"]
        assert len(again.smoke_steps) == 1
        assert again.mitigated_at == T0  # the first mitigation time stands


def test_facts_are_not_erased_by_a_retry_that_lacks_them(tmp_path):
    with Ledger(tmp_path) as ledger:
        ledger.upsert_incident(make_incident(warnings=["only previous pipeline"], started_at=T0))
        again, _ = ledger.upsert_incident(make_incident(warnings=[], started_at=None, smoke_steps=[]))
        assert again.warnings == ["only previous pipeline"]
        assert again.started_at == T0
        assert again.failed_step.name == "api health"


def test_wal_and_schema_version(tmp_path):
    with Ledger(tmp_path) as ledger:
        assert ledger.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert ledger.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert oct((tmp_path / "ledger.sqlite3").stat().st_mode & 0o777) == "0o640"


def test_migrates_a_version_1_ledger(tmp_path):
    db = sqlite3.connect(tmp_path / "ledger.sqlite3")
    db.executescript(MIGRATIONS[0])
    db.execute("PRAGMA user_version = 1")
    db.execute(
        "INSERT INTO incidents (id, idem_key, service, environment, deploy_sha, severity, detected_by, "
        "created_at, updated_at) VALUES ('abc123abc123', 'k', 'api', 'production', ?, 'High', "
        "'smoke test', '2026-05-13T08:47:21Z', '2026-05-13T08:47:21Z')",
        (DEPLOY,),
    )
    db.commit()
    db.close()
    with Ledger(tmp_path) as ledger:
        assert ledger.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        old = ledger.get("abc123abc123")
        assert old.service == "api" and old.owner is None
        ledger.mark_good("api", "production", ROLLBACK)
        assert ledger.last_good("api", "production") == ROLLBACK


def test_refuses_a_newer_schema(tmp_path):
    db = sqlite3.connect(tmp_path / "ledger.sqlite3")
    db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(LedgerError, match="newer than this rollback-pm knows"):
        Ledger(tmp_path)


def test_unwritable_state_dir(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(LedgerError, match="set --state-dir or ROLLBACK_PM_STATE_DIR"):
        Ledger(blocker / "state")


def test_prefix_lookup_and_not_found(tmp_path):
    with Ledger(tmp_path) as ledger:
        stored, _ = ledger.upsert_incident(make_incident())
        assert ledger.get(stored.id[:6]).id == stored.id
        with pytest.raises(IncidentNotFound, match="no incident 'ffff'"):
            ledger.get("ffff")


def test_ticket_outbox_and_notifications(tmp_path):
    with Ledger(tmp_path) as ledger:
        stored, _ = ledger.upsert_incident(make_incident())
        first = ledger.enqueue(stored.id, "open", {}, "down")
        assert ledger.enqueue(stored.id, "open", {}, "still down") == first  # one pending entry
        assert [r["attempts"] for r in ledger.pending_outbox()] == [2]
        ledger.outbox_done(first)
        assert ledger.pending_outbox() == []
        ledger.set_ticket(stored.id, TicketRef(tracker="file", key="PM-1", url="file:///x"))
        assert ledger.get(stored.id).ticket.key == "PM-1"
        assert ledger.record_notification(stored.id, "overdue", "ticket") is True
        assert ledger.record_notification(stored.id, "overdue", "ticket") is False


def _race(state_dir: str, barrier) -> None:  # runs in a child process
    barrier.wait()
    with Ledger(state_dir) as ledger:
        ledger.upsert_incident(make_incident())


def test_two_processes_end_with_one_incident(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_race, args=(str(tmp_path), barrier)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    with Ledger(tmp_path) as ledger:
        incidents = ledger.list()
        assert len(incidents) == 1
        assert len(incidents[0].evidence) == 1
