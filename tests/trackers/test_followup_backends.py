"""What follow-ups need of each backend (Jira and the forges against the spec-validated fakes,
the file tracker on disk, none): a follow-up ticket created once (a lost answer is found by
its label, not created twice), linked, assigned, updated, its status read back; owners
looked up as users; a site without the "Relates" link type. Failures: test_followup_errors."""

from __future__ import annotations

import json
from datetime import date

import pytest

from rollback_pm.errors import TrackerError, TrackerNotFoundError
from rollback_pm.models import TicketRef
from rollback_pm.trackers.base import FollowupSpec, TicketSpec, answers
from rollback_pm.trackers.file import FileTracker
from rollback_pm.trackers.gitea import GiteaTracker
from rollback_pm.trackers.jira import JiraTracker
from rollback_pm.trackers.markup import Doc, issue_ref, to_adf, to_markdown, to_wiki
from rollback_pm.trackers.none import NoneTracker
from tests.support.fake_jira import LINK_TYPES, FakeJira


def jira_tracker(fake: FakeJira, clock=None) -> JiraTracker:
    options = {"sleep": clock.sleep, "clock": clock.monotonic} if clock else {}
    email = fake.email if fake.api_version == 3 else None
    return JiraTracker(fake.url, fake.project, fake.token, email=email, api_version=fake.api_version, **options)


def spec(parent: TicketRef, assignee: str | None = None) -> FollowupSpec:
    return FollowupSpec(
        incident_id="abc123abc123",
        unique_label="rollback-pm-abc123abc123-1.1-4072870f",
        title="Add a migration dry run to CI",
        body=Doc().paragraph("Follow-up of ", issue_ref(parent.key), "."),
        parent=parent,
        labels=["rollback-pm-abc123abc123", "followup"],
        due_date=date(2026, 6, 1),
        assignee=assignee,
    )


def test_a_search_for_the_incidents_label_never_answers_a_follow_up():
    incident = "rollback-pm-abc"
    assert answers(incident, [incident, "postmortem"])
    assert not answers(incident, [incident, "followup", f"{incident}-1.1-deadbeef"])
    assert answers(f"{incident}-1.1-deadbeef", [incident, "followup", f"{incident}-1.1-deadbeef"])
    assert not answers(incident, ["postmortem"])


def test_an_issue_reference_is_live_only_on_the_forges():
    doc = Doc().paragraph("see ", issue_ref("acme/shop#12"), " and ", issue_ref("#3"), " not ", issue_ref("OPS-1 #4"))
    assert to_markdown(doc) == "see acme/shop#12 and #3 not OPS-1 #\u200b4"
    assert "acme/shop\\#\u200b12" in to_wiki(doc)  # Jira links by its own issue links, not by text
    assert to_adf(doc)["content"][0]["content"][1] == {"type": "text", "text": "acme/shop#12"}


def test_jira_follow_up_is_created_linked_and_assigned_once(jira, clock):
    tracker = jira_tracker(jira, clock)
    parent_key = jira.add_issue("Postmortem: api production rollback", ["rollback-pm-abc123abc123", "postmortem"])
    parent = TicketRef("jira", parent_key, f"{jira.url}/browse/{parent_key}")
    ana = tracker.find_user("@ana")
    assert ana == ("5b10ac8d82e05b22cc7d4ef5" if jira.api_version == 3 else "ana")
    jira.server.inject("POST", f"/rest/api/{jira.api_version}/issue", status=502, passthrough=True)
    ticket = tracker.create_followup(spec(parent, ana))
    assert len(jira.issues) == 2  # the lost answer was confirmed by the label, not sent again
    fields = jira.issue(ticket.key)["fields"]
    assert (fields["summary"], fields["duedate"]) == ("Add a migration dry run to CI", "2026-06-01")
    assert jira.linked(ticket.key) == [("Relates", parent_key)]
    assert tracker.find("rollback-pm-abc123abc123").key == parent_key
    tracker.relate(ticket, parent, Doc())  # a duplicate link is answered as created, and stored once
    assert jira.linked(parent_key) == [("Relates", ticket.key)]

    tracker.update_followup(ticket, title="Dry-run every migration", due_date=None, assignee=None)
    fields = jira.issue(ticket.key)["fields"]
    assert (fields["summary"], fields["duedate"]) == ("Dry-run every migration", None)


@pytest.mark.parametrize(
    ("owner", "who"),
    [
        ("@ana", "ana"),
        ("Anand Rao", "anand"),
        ("bo.chen@example.com", "bo"),
        ("BO CHEN", "bo"),
        ("an", None),
        ("zed", None),
    ],
)
def test_jira_owners_are_users_only_when_exactly_one_matches(jira, owner, who):
    tracker = jira_tracker(jira)
    ids = {u["name"]: (u["accountId"] if jira.api_version == 3 else u["name"]) for u in jira.users}
    assert tracker.find_user(owner) == (ids[who] if who else None)


def test_jira_without_the_relates_link_type_still_creates_the_follow_up(clock):
    with FakeJira(api_version=3, link_types=tuple(t for t in LINK_TYPES if t["name"] != "Relates")) as fake:
        tracker = jira_tracker(fake, clock)
        parent_key = fake.add_issue("Postmortem", ["rollback-pm-abc123abc123"])
        ticket = tracker.create_followup(spec(TicketRef("jira", parent_key, "")))
        assert fake.linked(ticket.key) == []
        assert "no 'Relates' issue link type (it has: Blocks, Cloners, Duplicate)" in tracker.last_warnings[0]
        with pytest.raises(TrackerError, match="ask a Jira admin to restore it"):
            tracker.relate(ticket, TicketRef("jira", parent_key, ""), Doc())
        assert fake.failures == []


def test_jira_refuses_an_unknown_assignee_and_the_ticket_is_still_made(jira_cloud, clock):
    tracker = jira_tracker(jira_cloud, clock)
    parent_key = jira_cloud.add_issue("Postmortem", ["rollback-pm-abc123abc123"])
    ticket = tracker.create_followup(spec(TicketRef("jira", parent_key, ""), assignee="no-such-account"))
    assert jira_cloud.issue(ticket.key)["fields"]["assignee"] is None
    assert "does not accept assignee" in tracker.last_warnings[0]


def test_forge_follow_up_references_the_incidents_issue_both_ways(forge, clock):
    tracker = GiteaTracker(
        forge.url, forge.repo, forge.token, kind=forge.kind, sleep=clock.sleep, clock=clock.monotonic
    )
    number = forge.add_issue("Postmortem", ["rollback-pm-abc123abc123", "postmortem"])
    parent = TicketRef(forge.kind, f"{forge.repo}#{number}", f"{forge.url}/{forge.repo}/issues/{number}")
    assert tracker.find_user("Alice Smith") == "alice" and tracker.find_user("@nobody") is None
    forge.server.inject("POST", "/repos/{owner}/{repo}/issues", status=502, passthrough=True)
    ticket = tracker.create_followup(spec(parent, "ana"))
    mine = int(ticket.key.rsplit("#", 1)[1])
    assert sorted(forge.issues) == [number, mine]  # found by its label after the lost answer
    issue = forge.issue(mine)
    assert (issue["title"], issue["due_date"], issue["assignees"]) == (
        "Add a migration dry run to CI",
        "2026-06-01T12:00:00Z",
        ["ana"],
    )
    assert forge.references(number) == [mine] and forge.references(mine) == [number]
    assert tracker.find("rollback-pm-abc123abc123").key == parent.key

    tracker.update_followup(ticket, title="Dry-run every migration", due_date=None, assignee="alice")
    issue = forge.issue(mine)
    assert (issue["title"], issue["due_date"], issue["assignees"]) == ("Dry-run every migration", None, ["alice"])


def file_parent(tracker: FileTracker) -> TicketRef:
    return tracker.create(
        TicketSpec(
            incident_id="abc123abc123",
            unique_label="rollback-pm-abc123abc123",
            title="Postmortem: api production rollback",
            body=Doc().paragraph("the incident"),
            labels=["postmortem"],
        )
    )


def test_file_follow_ups_are_tickets_of_their_own_linked_both_ways(tmp_path):
    tracker = FileTracker(tmp_path)
    parent = file_parent(tracker)
    ticket = tracker.create_followup(spec(parent, tracker.find_user(" @ana ")))
    assert (ticket.tracker, ticket.key, ticket.status) == ("file", "FU-1", "open")
    data = json.loads((tmp_path / "tickets" / "followups" / "FU-1.json").read_text())
    assert data["title"] == "Add a migration dry run to CI"
    assert data["labels"] == ["followup", "rollback-pm-abc123abc123", "rollback-pm-abc123abc123-1.1-4072870f"]
    assert (data["due_date"], data["assignee"], data["parent"], data["links"]) == (
        "2026-06-01",
        "ana",
        "PM-abc123abc123",
        ["PM-abc123abc123"],
    )
    assert "Follow-up of PM-abc123abc123." in data["body"]
    assert json.loads((tmp_path / "tickets" / "PM-abc123abc123.json").read_text())["links"] == ["FU-1"]
    # tickets/ keeps one file per incident (ledger check/rebuild read it so); follow-ups live below
    assert sorted(p.name for p in (tmp_path / "tickets").iterdir()) == ["PM-abc123abc123.json", "followups"]
    assert tracker.find("rollback-pm-abc123abc123").key == parent.key
    assert tracker.find("rollback-pm-abc123abc123-1.1-4072870f").key == "FU-1"
    assert tracker.find("rollback-pm-abc123abc123-2.1-00000000") is None

    other = FollowupSpec(**{**spec(parent).__dict__, "unique_label": "rollback-pm-abc123abc123-2.1-00000000"})
    assert tracker.create_followup(other).key == "FU-2"
    tracker.relate(ticket, parent, Doc())  # already linked: nothing added
    assert json.loads((tmp_path / "tickets" / "PM-abc123abc123.json").read_text())["links"] == ["FU-1", "FU-2"]

    tracker.update_followup(ticket, title="Dry-run every migration", due_date=None, assignee=None)
    data = json.loads((tmp_path / "tickets" / "followups" / "FU-1.json").read_text())
    assert (data["title"], data["due_date"], data["assignee"]) == ("Dry-run every migration", None, "ana")
    assert tracker.status(ticket) == "open"
    data["status"] = "resolved"  # a human closes it by editing the file
    (tmp_path / "tickets" / "followups" / "FU-1.json").write_text(json.dumps(data))
    assert tracker.status(ticket) == "resolved"


def test_file_follow_up_of_a_vanished_ticket_is_made_with_a_warning(tmp_path):
    tracker = FileTracker(tmp_path)
    parent = file_parent(tracker)
    (tmp_path / "tickets" / "PM-abc123abc123.json").unlink()
    ticket = tracker.create_followup(spec(parent))
    assert ticket.key == "FU-1" and tracker.find("rollback-pm-abc123abc123-1.1-4072870f").key == "FU-1"
    assert tracker.last_warnings[0].startswith("PM-abc123abc123: the follow-up FU-1 is not linked there: ticket file ")
    with pytest.raises(TrackerNotFoundError, match="FU-7.json is gone"):
        tracker.update_followup(TicketRef("file", "FU-7", ""), title="x", due_date=None, assignee=None)


def test_file_tracker_refuses_a_symlinked_follow_up_directory(tmp_path):
    tracker = FileTracker(tmp_path)
    parent = file_parent(tracker)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "tickets" / "followups").symlink_to(elsewhere)
    with pytest.raises(TrackerError, match="follow-up ticket directory"):
        tracker.create_followup(spec(parent))
    assert list(elsewhere.iterdir()) == []


def test_the_none_tracker_keeps_nothing():
    tracker = NoneTracker()
    parent = TicketRef("none", "-", "")
    assert tracker.create_followup(spec(parent, "ana")) == TicketRef("none", "-", "", "open")
    assert tracker.update_followup(parent, title="x", due_date=None, assignee="ana") is None
    assert tracker.relate(parent, parent, Doc()) is None and tracker.find_user("@ana") is None
