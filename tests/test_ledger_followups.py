"""Schema 3: when a postmortem became done, follow-ups and failure signatures (issues 19, 20)."""

import sqlite3
from datetime import datetime, timedelta, timezone

import pytest

from rollback_pm.errors import UsageError
from rollback_pm.ledger import MIGRATIONS, SCHEMA_VERSION, Ledger
from rollback_pm.models import Followup, Incident, Signature, TicketRef

T0 = datetime(2026, 5, 13, 8, 47, 21, tzinfo=timezone.utc)


def incident(ledger: Ledger, service: str = "api", pipeline: str = "42") -> str:
    stored, _ = ledger.upsert_incident(
        Incident(id="", service=service, environment="production", deploy_sha="d" * 40, pipeline_number=pipeline)
    )
    return stored.id


def test_a_version_2_ledger_gains_the_new_tables_and_keeps_its_incidents(tmp_path):
    db = sqlite3.connect(tmp_path / "ledger.sqlite3")
    for script in MIGRATIONS[:2]:
        db.executescript(script)
    db.execute("PRAGMA user_version = 2")
    db.execute(
        "INSERT INTO incidents (id, idem_key, service, environment, deploy_sha, severity, detected_by, status, "
        "created_at, updated_at) VALUES ('abc123abc123', 'k', 'api', 'production', ?, 'High', 'smoke test', 'done', "
        "'2026-05-13T08:47:21Z', '2026-05-13T08:47:21Z')",
        ("d" * 40,),
    )
    db.commit()
    db.close()
    with Ledger(tmp_path) as ledger:
        assert ledger.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION >= 3
        old = ledger.get("abc123abc123")
        assert (old.status, old.done_at) == ("done", None)  # done before the ledger kept the time
        indexes = {r["name"] for r in ledger.db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert "signatures_signature" in indexes
        assert ledger.list_followups() == [] and ledger.list_signatures() == []


def test_mark_done_keeps_the_first_time(tmp_path):
    with Ledger(tmp_path) as ledger:
        iid = incident(ledger)
        ledger.mark_done(iid, T0)
        ledger.mark_done(iid, T0 + timedelta(hours=5))  # a later run sees it done again
        got = ledger.get(iid)
        assert (got.status, got.done_at) == ("done", T0)
        assert ledger.report_rows()[0]["done_at"] == "2026-05-13T08:47:21Z"


def test_followup_upsert_is_idempotent_and_the_ticket_only_grows(tmp_path):
    with Ledger(tmp_path) as ledger:
        iid = incident(ledger)
        row = Followup(incident_id=iid, row_key="prevention-1", action="Add a migration check", owner="ana")
        first, new = ledger.upsert_followup(row)
        assert new is True
        assert (first.status, first.key, first.closed_at) == ("open", None, None)
        assert first.created_at is not None and first.created_at == first.updated_at

        row.tracker, row.key, row.url, row.target_date = (
            "jira",
            "OPS-7",
            "https://jira.example/browse/OPS-7",
            "2026-06-01",
        )
        second, new = ledger.upsert_followup(row)
        assert new is False
        assert (second.key, second.url, second.target_date) == (
            "OPS-7",
            "https://jira.example/browse/OPS-7",
            "2026-06-01",
        )
        assert second.created_at == first.created_at

        # a rerun that does not know the ticket (a changed row text) keeps it and updates the text
        third, _ = ledger.upsert_followup(
            Followup(incident_id=iid, row_key="prevention-1", action="Add a migration dry run", owner="ana")
        )
        assert (third.action, third.key, third.tracker) == ("Add a migration dry run", "OPS-7", "jira")
        assert len(ledger.list_followups(iid)) == 1


def test_followup_closed_at_is_set_once_and_cleared_on_reopen(tmp_path):
    with Ledger(tmp_path) as ledger:
        iid = incident(ledger)
        row = Followup(incident_id=iid, row_key="r1", action="fix", status="closed", closed_at=T0)
        assert ledger.upsert_followup(row)[0].closed_at == T0
        row.closed_at = T0 + timedelta(days=1)  # read back again later: the first close stands
        assert ledger.upsert_followup(row)[0].closed_at == T0
        row.status, row.closed_at = "open", None
        assert ledger.upsert_followup(row)[0].closed_at is None
        row.status = "closed"  # closed again without a time from the tracker: now
        again = ledger.upsert_followup(row)[0]
        assert again.closed_at is not None and again.closed_at > T0


def test_followup_status_is_open_or_closed(tmp_path):
    with Ledger(tmp_path) as ledger:
        iid = incident(ledger)
        with pytest.raises(UsageError, match="'Done' is not one of open, closed"):
            ledger.upsert_followup(Followup(incident_id=iid, row_key="r1", action="fix", status="Done"))


def test_followups_need_a_known_incident(tmp_path):
    with Ledger(tmp_path) as ledger, pytest.raises(sqlite3.IntegrityError):
        ledger.upsert_followup(Followup(incident_id="nope", row_key="r1", action="fix"))


def test_followups_list_per_incident(tmp_path):
    with Ledger(tmp_path) as ledger:
        a, b = incident(ledger, pipeline="1"), incident(ledger, pipeline="2")
        ledger.upsert_followup(Followup(incident_id=a, row_key="r1", action="one"))
        ledger.upsert_followup(Followup(incident_id=b, row_key="r1", action="two"))
        ledger.upsert_followup(Followup(incident_id=a, row_key="r2", action="three"))
        assert [f.action for f in ledger.list_followups(a)] == ["one", "three"]
        assert len(ledger.list_followups()) == 3
        assert {r["row_key"] for r in ledger.followup_rows()} == {"r1", "r2"}


def test_signatures_are_replaced_and_found_by_signature(tmp_path):
    with Ledger(tmp_path) as ledger:
        a, b, c = (incident(ledger, pipeline=str(n)) for n in (1, 2, 3))
        first = ledger.set_signature(Signature(incident_id=a, signature="s-old", failed_step="3 api health"))
        assert first.templates == [] and first.created_at is not None
        ledger.set_signature(
            Signature(
                incident_id=a, signature="s1", failed_step="3 api health", templates=["FATAL: column <*> missing"]
            )
        )
        ledger.set_signature(Signature(incident_id=b, signature="s1", failed_step="3 api health"))
        ledger.set_signature(Signature(incident_id=c, signature="s2", failed_step="5 login"))
        assert ledger.get_signature(a).templates == ["FATAL: column <*> missing"]
        assert ledger.get_signature(a).created_at == first.created_at
        assert sorted(s.incident_id for s in ledger.list_signatures("s1")) == sorted([a, b])
        assert ledger.list_signatures("s-old") == []
        assert len(ledger.list_signatures()) == 3
        assert ledger.get_signature("nope") is None


def test_report_rows_join_the_ticket_and_filter(tmp_path):
    with Ledger(tmp_path) as ledger:
        a = incident(ledger, service="api", pipeline="1")
        incident(ledger, service="web", pipeline="2")
        ledger.set_ticket(a, TicketRef(tracker="file", key="PM-1", url="file:///t/PM-1.json"))
        rows = {r["service"]: r for r in ledger.report_rows()}
        assert (rows["api"]["ticket_key"], rows["api"]["ticket_url"]) == ("PM-1", "file:///t/PM-1.json")
        assert rows["web"]["ticket_key"] is None
        assert [r["service"] for r in ledger.report_rows(service="web")] == ["web"]
        assert ledger.report_rows(environment="staging") == []


@pytest.mark.parametrize(
    ("table", "column", "value", "message"),
    [
        ("signatures", "templates_json", "{not json", "templates_json is not valid JSON"),
        ("signatures", "templates_json", '["ok", 3]', "templates_json[1] is int, not text"),
        ("signatures", "created_at", "yesterday", "'yesterday' is not an ISO 8601 time"),
        ("followups", "closed_at", "soon", "'soon' is not an ISO 8601 time"),
    ],
)
def test_a_damaged_row_is_a_ledger_error_naming_it(tmp_path, table, column, value, message):
    from rollback_pm.errors import LedgerError

    with Ledger(tmp_path) as ledger:
        iid = incident(ledger)
        ledger.set_signature(Signature(iid, "s1"))
        ledger.upsert_followup(Followup(incident_id=iid, row_key="r1", action="fix"))
        ledger.db.execute(f"UPDATE {table} SET {column} = ?", (value,))
        with pytest.raises(LedgerError, match="has a damaged record") as caught:
            ledger.list_signatures() if table == "signatures" else ledger.list_followups()
        assert iid in str(caught.value) and message in str(caught.value)
