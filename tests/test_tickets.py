import json
from datetime import date, datetime, timezone
from pathlib import Path

from rollback_pm.ledger import Ledger
from rollback_pm.models import EvidenceFile, Incident, SmokeStep
from rollback_pm.tickets import flush, open_ticket, refresh_status, ticket_spec
from rollback_pm.trackers.file import FileTracker
from rollback_pm.trackers.markup import to_markdown

DEPLOY = "0123456789abcdef0123456789abcdef01234567"
ROLLBACK = "fedcba9876543210fedcba9876543210fedcba98"
T0 = datetime(2026, 5, 13, 8, 47, 21, tzinfo=timezone.utc)


def evidence(tmp_path: Path, bundle: str) -> list[EvidenceFile]:
    files = []
    for kind, suffix in (("log", ".log"), ("inspect", ".inspect.json"), ("manifest", ".manifest.json")):
        path = tmp_path / f"rollback-{bundle}{suffix}"
        path.write_text("{}")
        files.append(EvidenceFile(path=str(path), kind=kind, sha256="a" * 64, bytes=2, bundle=bundle))
    return files


def incident(tmp_path: Path, bundles=("20260513T084721Z",)) -> Incident:
    return Incident(
        id="",
        service="api",
        environment="production",
        deploy_sha=DEPLOY,
        rollback_sha=ROLLBACK,
        rollback_sha_source="flag",
        pipeline_number="42",
        mitigated_at=T0,
        detected_at=T0,
        pipeline_url="https://ci.example.com/repos/1/pipeline/42",
        detected_by="smoke test",
        smoke_steps=[SmokeStep(name="api health", status="failed", step=3, ts=T0, message="502")],
        evidence=[f for b in bundles for f in evidence(tmp_path, b)],
    )


def test_spec_title_labels_due_and_attachments(tmp_path):
    spec = ticket_spec(incident(tmp_path), deadline_hours=24)
    assert spec.title == "Postmortem: api production rollback 0123456 -> fedcba9"
    assert spec.labels == ["postmortem", "rollback", "production", "api"]
    assert spec.due_date == date(2026, 5, 14)
    assert "**Failed smoke step 3** `api health`: 502" in to_markdown(spec.body)
    assert [p.name for p in spec.attachments] == [
        "rollback-20260513T084721Z.log",
        "rollback-20260513T084721Z.manifest.json",
    ]


def test_open_once_then_comment_only_new_bundles(tmp_path):
    state = tmp_path / "state"
    tracker = FileTracker(state)
    with Ledger(state) as ledger:
        stored, _ = ledger.upsert_incident(incident(tmp_path))
        first = open_ticket(ledger, tracker, ledger.get(stored.id))
        assert first.created and first.ticket.key == f"PM-{stored.id}"
        again = open_ticket(ledger, tracker, ledger.get(stored.id))
        assert not again.created and again.comments == []
        ledger.upsert_incident(incident(tmp_path, bundles=("20260513T084721Z", "20260513T090000Z")))
        third = open_ticket(ledger, tracker, ledger.get(stored.id))
        assert len(third.comments) == 1 and "20260513T090000Z" in third.comments[0]
        assert open_ticket(ledger, tracker, ledger.get(stored.id)).comments == []
    tickets = list((state / "tickets").glob("*.json"))
    assert len(tickets) == 1
    data = json.loads(tickets[0].read_text())
    assert data["title"] == "Postmortem: api production rollback 0123456 -> fedcba9"
    assert f"rollback-pm-{stored.id}" in data["labels"]
    assert len(data["comments"]) == 1


def test_found_by_label_when_the_ledger_lost_it(tmp_path):
    state = tmp_path / "state"
    with Ledger(state) as ledger:
        stored, _ = ledger.upsert_incident(incident(tmp_path))
        open_ticket(ledger, FileTracker(state), ledger.get(stored.id))
        ledger.db.execute("DELETE FROM tickets")
        outcome = open_ticket(ledger, FileTracker(state), ledger.get(stored.id))
        assert not outcome.created and outcome.ticket.key == f"PM-{stored.id}"
    assert len(list((state / "tickets").glob("*.json"))) == 1


def test_unwritable_ticket_dir_queues_then_flush_sends(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    (state / "tickets").write_text("not a directory")  # the tracker fails like a down server
    with Ledger(state) as ledger:
        stored, _ = ledger.upsert_incident(incident(tmp_path))
        outcome = open_ticket(ledger, FileTracker(state), ledger.get(stored.id))
        assert outcome.queued and outcome.ticket is None
        assert "ticket flush" in outcome.message
        assert len(ledger.pending_outbox()) == 1
        result = flush(ledger, FileTracker(state))
        assert result.sent == [] and len(result.failed) == 1
        (state / "tickets").unlink()
        result = flush(ledger, FileTracker(state))
        assert result.sent == [
            f"{stored.id}: created PM-{stored.id} {(state / 'tickets' / f'PM-{stored.id}.json').as_uri()}"
        ]
        assert ledger.pending_outbox() == []
        assert flush(ledger, FileTracker(state)).sent == []


def test_status_is_read_back_and_cached(tmp_path):
    state = tmp_path / "state"
    tracker = FileTracker(state)
    with Ledger(state) as ledger:
        stored, _ = ledger.upsert_incident(incident(tmp_path))
        ref = open_ticket(ledger, tracker, ledger.get(stored.id)).ticket
        path = state / "tickets" / f"{ref.key}.json"
        data = json.loads(path.read_text())
        data["status"] = "resolved"
        path.write_text(json.dumps(data))
        assert refresh_status(ledger, tracker, ledger.get(stored.id)).status == "resolved"
        assert ledger.get(stored.id).ticket.status == "resolved"
