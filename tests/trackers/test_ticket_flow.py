"""The ticket service (find-or-create, outbox, flush) over the real backends and the fakes:
one ticket per rollback even when the tracker is down first, and no token anywhere."""

from datetime import datetime, timezone
from pathlib import Path

import pytest

from rollback_pm import tickets
from rollback_pm.ledger import Ledger
from rollback_pm.models import EvidenceFile, Incident, SmokeStep
from rollback_pm.trackers.gitea import GiteaTracker
from rollback_pm.trackers.jira import JiraTracker
from tests.support.fake_gitea import FakeGitea
from tests.support.fake_jira import FakeJira

T0 = datetime(2026, 5, 13, 8, 47, 21, tzinfo=timezone.utc)


def evidence(tmp_path: Path, bundle: str) -> list[EvidenceFile]:
    files = []
    for kind, suffix in (("log", ".log"), ("inspect", ".inspect.json"), ("manifest", ".manifest.json")):
        path = tmp_path / f"rollback-{bundle}{suffix}"
        path.write_text("{}")
        files.append(EvidenceFile(path=str(path), kind=kind, sha256="a" * 64, bytes=2, bundle=bundle))
    return files


def incident(tmp_path: Path, bundles: tuple[str, ...] = ("20260513T084721Z",)) -> Incident:
    return Incident(
        id="",
        service="api",
        environment="production",
        deploy_sha="0123456789abcdef" * 2 + "01234567",
        rollback_sha="fedcba9876543210" * 2 + "fedcba98",
        rollback_sha_source="flag",
        pipeline_number="42",
        mitigated_at=T0,
        detected_at=T0,
        pipeline_url="https://ci.example.com/repos/1/pipeline/42",
        detected_by="smoke test",
        smoke_steps=[SmokeStep(name="api health", status="failed", step=3, ts=T0, message="502")],
        evidence=[f for b in bundles for f in evidence(tmp_path, b)],
    )


@pytest.fixture(params=["jira-v3", "jira-v2", "gitea", "forgejo"])
def served(request, clock):
    kind = request.param
    fake = FakeJira(api_version=int(kind[-1])) if kind.startswith("jira") else FakeGitea(kind=kind)
    with fake:
        if kind.startswith("jira"):
            tracker = JiraTracker(
                fake.url,
                fake.project,
                fake.token,
                api_version=fake.api_version,
                email=fake.email if fake.api_version == 3 else None,
                max_attempts=2,
                sleep=clock.sleep,
                clock=clock.monotonic,
            )
        else:
            tracker = GiteaTracker(
                fake.url, fake.repo, fake.token, kind=kind, max_attempts=2, sleep=clock.sleep, clock=clock.monotonic
            )
        yield fake, tracker
        assert fake.failures == []


def test_down_then_flushed_once_then_new_bundle_commented(served, tmp_path, logs):
    fake, tracker = served
    state = tmp_path / "state"
    with Ledger(state) as ledger:
        stored, _ = ledger.upsert_incident(incident(tmp_path))
        fake.server.inject("*", ".*", status=503, times=1000)
        queued = tickets.open_ticket(ledger, tracker, ledger.get(stored.id))
        assert queued.queued and queued.ticket is None and "unavailable" in queued.message
        fake.server.clear_injections()

        flushed = tickets.flush(ledger, tracker)
        assert flushed.failed == [] and len(flushed.sent) == 1
        assert tickets.flush(ledger, tracker).sent == []  # the outbox is empty now
        rerun = tickets.open_ticket(ledger, tracker, ledger.get(stored.id))
        assert not rerun.created and rerun.comments == []

        ledger.upsert_incident(incident(tmp_path, bundles=("20260513T084721Z", "20260513T090000Z")))
        third = tickets.open_ticket(ledger, tracker, ledger.get(stored.id))
        assert len(third.comments) == 1 and "20260513T090000Z" in third.comments[0]
        assert tickets.refresh_status(ledger, tracker, ledger.get(stored.id)).status == "open"
    assert len(fake.issues) == 1
    assert fake.token not in logs.getvalue()
    for path in state.rglob("*"):
        if path.is_file():
            assert fake.token.encode() not in path.read_bytes(), path
