"""What a tracker can do is in its capabilities: callers ask those, never its name."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from rollback_pm import deadlines
from rollback_pm.drafts import DraftResult
from rollback_pm.errors import TrackerError
from rollback_pm.hook import pull_request_stage
from rollback_pm.ledger import Ledger
from rollback_pm.models import Incident, TicketRef
from rollback_pm.tickets import open_ticket
from rollback_pm.trackers import Capabilities, Tracker
from rollback_pm.trackers.base import NoPullRequests, TicketSpec
from rollback_pm.trackers.file import FileTracker
from rollback_pm.trackers.gitea import GiteaTracker
from rollback_pm.trackers.jira import JiraTracker
from rollback_pm.trackers.markup import Doc
from rollback_pm.trackers.none import NoneTracker

DEPLOY = "0123456789abcdef0123456789abcdef01234567"
T0 = datetime(2026, 5, 13, 8, 47, 21, tzinfo=timezone.utc)


TOKEN = "capabilities-test-t0ken-5e1f"  # registered as a secret: must not mask other tests' text


def backends(tmp_path: Path) -> dict[str, Tracker]:
    return {
        "file": FileTracker(tmp_path),
        "none": NoneTracker(),
        "jira": JiraTracker("https://jira.example.com", "OPS", TOKEN),
        "gitea": GiteaTracker("https://git.example.com", "ops/pm", TOKEN),
        "forgejo": GiteaTracker("https://git.example.com", "ops/pm", TOKEN, kind="forgejo"),
    }


def test_every_backend_declares_what_it_can_do(tmp_path):
    seen = {}
    for name, tracker in backends(tmp_path).items():
        assert isinstance(tracker, Tracker), name
        assert tracker.name == name
        caps = tracker.capabilities
        seen[name] = (caps.tickets, caps.status, caps.pull_requests, caps.links)
    assert seen == {
        "file": (True, True, False, True),
        "none": (False, False, False, False),
        "jira": (True, True, False, True),
        "gitea": (True, True, True, False),
        "forgejo": (True, True, True, False),
    }


def test_every_backend_has_what_follow_ups_need(tmp_path):
    needed = ("find", "create_followup", "update_followup", "relate", "find_user", "status", "comment", "add_label")
    for name, tracker in backends(tmp_path).items():
        assert all(callable(getattr(tracker, m, None)) for m in needed), name
    none = NoneTracker()
    assert none.find_user("@ana") is None
    assert FileTracker(tmp_path).find_user(" @ana ") == "ana"  # no user list: the owner as written


@pytest.mark.parametrize("name", ["file", "none", "jira"])
def test_a_backend_without_pull_requests_refuses_by_saying_so(tmp_path, name):
    with pytest.raises(TrackerError, match=f"the {name} tracker cannot open pull requests"):
        backends(tmp_path)[name].open_pr("b", "p", "c", "t", "b")


class Recorder(NoPullRequests):
    """A backend the code has never heard of: only its capabilities say what it does."""

    name = "custom"

    def __init__(self, capabilities: Capabilities) -> None:
        self.capabilities = capabilities
        self.calls: list[str] = []

    def find(self, unique_label: str) -> TicketRef | None:
        self.calls.append("find")
        return TicketRef(tracker=self.name, key="C-1", url="https://c/1")

    def create(self, spec: TicketSpec) -> TicketRef:
        raise AssertionError("found, so never created")

    def comment(self, ticket: TicketRef, text: Doc | str) -> None:
        self.calls.append("comment")

    def add_label(self, ticket: TicketRef, label: str) -> None:
        self.calls.append("label")

    def attach(self, ticket: TicketRef, path: Path) -> None:
        self.calls.append("attach")

    def status(self, ticket: TicketRef) -> str:
        self.calls.append("status")
        return "open"

    def open_pr(self, branch: str, path: str, content: str, title: str, body: str) -> str:
        if not self.capabilities.pull_requests:
            return super().open_pr(branch, path, content, title, body)
        self.calls.append(f"pr {branch} {path}")
        return "https://c/pulls/1"


def stored(ledger: Ledger, tmp_path: Path) -> Incident:
    incident, _ = ledger.upsert_incident(
        Incident(id="", service="api", environment="production", deploy_sha=DEPLOY, mitigated_at=T0)
    )
    return incident


def overdue_check(ledger: Ledger, tracker: Tracker, incident: Incident) -> deadlines.Check:
    """check-deadlines' decision for one incident, 6h after its 24h deadline."""
    return deadlines.check_incident(
        ledger, tracker, incident, now=T0 + timedelta(hours=30), hours=24, warn_before=4 * 3600, webhook=None
    )


def test_without_tickets_nothing_is_opened_or_notified(tmp_path):
    tracker = Recorder(Capabilities(tickets=False, status=False))
    with Ledger(tmp_path / "state") as ledger:
        incident = stored(ledger, tmp_path)
        outcome = open_ticket(ledger, tracker, incident)
        assert (outcome.ticket, outcome.message) == (None, "no ticket (tracker custom)")
        ledger.set_ticket(incident.id, TicketRef(tracker="custom", key="C-1", url="https://c/1"))
        check = overdue_check(ledger, tracker, ledger.get(incident.id))
    assert (check.state, check.unchecked, check.notices) == ("overdue", None, [])
    assert tracker.calls == []


def test_with_tickets_and_status_the_backend_is_asked(tmp_path):
    tracker = Recorder(Capabilities())
    with Ledger(tmp_path / "state") as ledger:
        incident = stored(ledger, tmp_path)
        assert open_ticket(ledger, tracker, incident).ticket.key == "C-1"
        check = overdue_check(ledger, tracker, ledger.get(incident.id))
    assert [n.channel for n in check.notices] == ["ticket-comment", "ticket-label"]
    assert tracker.calls == ["find", "status", "comment", "label"]


def test_pull_requests_only_where_the_backend_opens_them(tmp_path):
    draft_path = tmp_path / "postmortem.md"
    draft_path.write_text("# draft\n")
    draft = DraftResult(draft_path, "0" * 64, True, None, "created")
    without = Recorder(Capabilities())
    with_prs = Recorder(Capabilities(pull_requests=True))
    with Ledger(tmp_path / "state") as ledger:
        incident = stored(ledger, tmp_path)
        assert pull_request_stage(ledger, without, incident, draft) == (
            None,
            ["--open-pr needs a tracker that opens pull requests (gitea or forgejo), not custom"],
        )
        assert pull_request_stage(ledger, with_prs, incident, draft) == ("https://c/pulls/1", [])
        assert pull_request_stage(ledger, with_prs, incident, draft) == (None, [])  # once per incident
    assert without.calls == []
    assert with_prs.calls == [f"pr postmortem/{incident.id} _docs/06_metrics/postmortem.md"]
