import io
import time
from datetime import date

import pytest

from rollback_pm import log as rlog
from rollback_pm.trackers.base import TicketSpec
from rollback_pm.trackers.markup import Doc, code, link, strong
from tests.support.fake_gitea import FakeGitea
from tests.support.fake_jira import FakeJira
from tests.support.fake_woodpecker import FakeWoodpecker


class FastClock:
    """Real elapsed time plus the waits the client asked for, which are recorded, not slept:
    tests check Retry-After was honoured exactly without waiting for it."""

    def __init__(self) -> None:
        self.offset = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.offset += seconds

    def monotonic(self) -> float:
        return time.monotonic() + self.offset


@pytest.fixture
def clock() -> FastClock:
    return FastClock()


@pytest.fixture
def logs():
    """Our structlog output, captured (debug level, JSON) for the whole test."""
    stream = io.StringIO()
    rlog.configure(log_format="json", level="debug", stream=stream)
    yield stream
    rlog.configure()


def _serve(fake):
    with fake:
        yield fake
        assert fake.failures == [], "requests broke the API spec:\n" + "\n".join(fake.failures)


@pytest.fixture
def jira_cloud():
    yield from _serve(FakeJira(api_version=3))


@pytest.fixture
def jira_dc():
    yield from _serve(FakeJira(api_version=2))


@pytest.fixture(params=[3, 2], ids=["cloud-v3", "dc-v2"])
def jira(request):
    yield from _serve(FakeJira(api_version=request.param))


@pytest.fixture(params=["gitea", "forgejo"])
def forge(request):
    yield from _serve(FakeGitea(kind=request.param))


@pytest.fixture
def woodpecker():
    yield from _serve(FakeWoodpecker())


@pytest.fixture
def spec(tmp_path) -> TicketSpec:
    draft = tmp_path / "postmortem-abc123.md"
    draft.write_text("# Postmortem\n\nRoot cause: TBD\n", encoding="utf-8")
    manifest = tmp_path / "rollback-20260513T084721Z.manifest.json"
    manifest.write_bytes(b'{"files": {}}\n\x00\xff binary tail\r\n')
    pipeline = "https://ci.example.com/repos/1/pipeline/42"
    body = (
        Doc()
        .paragraph(
            "Production rollback of ",
            strong("api"),
            " in ",
            strong("production"),
            ". The postmortem is due by 2026-05-14T08:47:21Z.",
        )
        .table(
            ["Field", "Value"],
            [["Deploy SHA", code("0123456789abcdef0123456789abcdef01234567")], ["Pipeline", link(pipeline, pipeline)]],
        )
        .paragraph(strong("Failed smoke step 3 "), code("api health"), ": 502")
        .bullets([[code("/var/log/azaion/rollback-20260513T084721Z.log"), " (2 bytes, ", code("aaaa"), ")"]])
    )
    return TicketSpec(
        incident_id="abc123",
        unique_label="rollback-pm-abc123",
        title="Postmortem: api production rollback 0123456 -> fedcba9",
        body=body,
        labels=["postmortem", "rollback", "production", "api"],
        due_date=date(2026, 5, 14),
        severity="Critical",
        pipeline_url="https://ci.example.com/repos/1/pipeline/42",
        attachments=[draft, manifest],
    )
