"""The follow-up calls (create_followup, update_followup, relate, find_user) when the tracker
fails: 401 names the token setting and leaks nothing, 404 names what to check, 429 waits
for Retry-After, 500 is retried (or, for a create, confirmed before it is sent again).
Against the spec-validated Jira (Cloud v3, Data Center v2), Gitea and Forgejo fakes."""

from __future__ import annotations

import pytest

from rollback_pm.errors import TrackerAuthError, TrackerError, TrackerNotFoundError, TrackerUnavailable
from rollback_pm.models import TicketRef
from rollback_pm.trackers.gitea import GiteaTracker
from rollback_pm.trackers.jira import JiraTracker
from rollback_pm.trackers.markup import Doc
from tests.support.fake_gitea import FakeGitea
from tests.support.fake_jira import FakeJira
from tests.trackers.test_followup_backends import spec
from tests.trackers.test_tracker_http import leaks

LABEL = "rollback-pm-abc123abc123"
FORGE_ISSUES = "/repos/{owner}/{repo}/issues"
FORGE_ISSUE = "/repos/{owner}/{repo}/issues/{index}"
FORGE_COMMENTS = "/repos/{owner}/{repo}/issues/{index}/comments"
FORGE_ASSIGNEES = "/repos/{owner}/{repo}/assignees"


def jira_for(fake: FakeJira, clock, token: str | None = None) -> JiraTracker:
    email = fake.email if fake.api_version == 3 else None
    return JiraTracker(
        fake.url,
        fake.project,
        token or fake.token,
        email=email,
        api_version=fake.api_version,
        sleep=clock.sleep,
        clock=clock.monotonic,
    )


def forge_for(fake: FakeGitea, clock, token: str | None = None) -> GiteaTracker:
    return GiteaTracker(
        fake.url, fake.repo, token or fake.token, kind=fake.kind, sleep=clock.sleep, clock=clock.monotonic
    )


def jira_parent(fake: FakeJira) -> TicketRef:
    key = fake.add_issue("Postmortem: api production rollback", [LABEL, "postmortem"])
    return TicketRef("jira", key, f"{fake.url}/browse/{key}")


def forge_parent(fake: FakeGitea) -> TicketRef:
    number = fake.add_issue("Postmortem: api production rollback", [LABEL, "postmortem"])
    return TicketRef(fake.kind, f"{fake.repo}#{number}", f"{fake.url}/{fake.repo}/issues/{number}")


# -- 401: the token setting is named, the token shown nowhere, nothing is created


def test_jira_401_on_a_follow_up_names_the_token_setting(jira, clock):
    parent = jira_parent(jira)
    tracker = jira_for(jira, clock, token="wrong-but-secret-followup-token")
    with pytest.raises(TrackerAuthError, match=r"401.*ROLLBACK_PM_TRACKER_TOKEN / --token-file") as info:
        tracker.create_followup(spec(parent))
    assert leaks("wrong-but-secret-followup-token", info.value) == []
    assert sorted(jira.issues) == [parent.key] and clock.sleeps == []  # not retried, nothing made
    for call in (lambda: tracker.find_user("@ana"), lambda: tracker.relate(parent, parent, Doc())):
        with pytest.raises(TrackerAuthError):
            call()


def test_forge_401_on_a_follow_up_names_the_token_setting(forge, clock):
    parent = forge_parent(forge)
    tracker = forge_for(forge, clock, token="wrong-but-secret-followup-token")
    with pytest.raises(TrackerAuthError, match=r"401.*ROLLBACK_PM_TRACKER_TOKEN / --token-file") as info:
        tracker.create_followup(spec(parent))
    assert leaks("wrong-but-secret-followup-token", info.value) == []
    assert len(forge.issues) == 1 and clock.sleeps == []
    with pytest.raises(TrackerAuthError):
        tracker.find_user("@ana")


# -- 404: the ticket (or the link's issues) to check are named


def test_jira_404_names_the_follow_up_and_the_issues_of_a_link(jira, clock):
    tracker = jira_for(jira, clock)
    parent = jira_parent(jira)
    gone = TicketRef("jira", "OPS-404", "")
    with pytest.raises(TrackerNotFoundError, match="OPS-404 still exists"):
        tracker.update_followup(gone, title="Dry-run every migration", due_date=None, assignee=None)
    with pytest.raises(TrackerNotFoundError, match=f"issues OPS-404 and {parent.key} exist"):
        tracker.relate(gone, parent, Doc())
    assert jira.links == [] and clock.sleeps == []


def test_forge_404_names_the_follow_up(forge, clock):
    tracker = forge_for(forge, clock)
    forge_parent(forge)
    gone = TicketRef(forge.kind, f"{forge.repo}#404", "")
    with pytest.raises(TrackerNotFoundError, match=f"{forge.repo}#404 still exists"):
        tracker.update_followup(gone, title="Dry-run every migration", due_date=None, assignee=None)
    with pytest.raises(TrackerNotFoundError, match=f"{forge.repo}#404 still exists"):
        tracker.relate(gone, forge_parent(forge), Doc().paragraph("see #1"))


# -- 429: Retry-After honoured, and a refused create is sent again (it was not processed)


def test_jira_429_waits_for_retry_after_on_every_follow_up_call(jira, clock):
    tracker = jira_for(jira, clock)
    parent = jira_parent(jira)
    v = jira.api_version
    jira.server.inject("GET", f"/rest/api/{v}/user/assignable/search", status=429, headers={"Retry-After": "7"})
    jira.server.inject("POST", f"/rest/api/{v}/issue", status=429, headers={"Retry-After": "3"})
    jira.server.inject("POST", f"/rest/api/{v}/issueLink", status=429, headers={"Retry-After": "2"})
    ticket = tracker.create_followup(spec(parent, tracker.find_user("@ana")))
    assert clock.sleeps == [7.0, 3.0, 2.0]
    assert sorted(jira.issues) == sorted([parent.key, ticket.key])  # the refused create, sent once more
    assert jira.linked(ticket.key) == [("Relates", parent.key)]
    assert tracker.last_warnings == []
    jira.server.inject("PUT", f"/rest/api/{v}/issue/{{issueIdOrKey}}", status=429, headers={"Retry-After": "5"})
    tracker.update_followup(ticket, title="Dry-run every migration", due_date=None, assignee=None)
    assert clock.sleeps[-1] == 5.0 and jira.issue(ticket.key)["fields"]["summary"] == "Dry-run every migration"


def test_forge_429_waits_for_retry_after_on_every_follow_up_call(forge, clock):
    tracker = forge_for(forge, clock)
    parent = forge_parent(forge)
    forge.server.inject("GET", FORGE_ASSIGNEES, status=429, headers={"Retry-After": "7"})
    forge.server.inject("POST", FORGE_ISSUES, status=429, headers={"Retry-After": "3"})
    forge.server.inject("POST", FORGE_COMMENTS, status=429, headers={"Retry-After": "2"})
    ticket = tracker.create_followup(spec(parent, tracker.find_user("@ana")))
    assert clock.sleeps == [7.0, 3.0, 2.0]
    mine = int(ticket.key.rsplit("#", 1)[1])
    assert sorted(forge.issues) == [1, mine] and forge.issue(mine)["assignees"] == ["ana"]
    assert forge.references(1) == [mine] and len(forge.issue(1)["comments"]) == 1
    forge.server.inject("PATCH", FORGE_ISSUE, status=429, headers={"Retry-After": "5"})
    tracker.update_followup(ticket, title="Dry-run every migration", due_date=None, assignee=None)
    assert clock.sleeps[-1] == 5.0 and forge.issue(mine)["title"] == "Dry-run every migration"


def test_a_retry_after_past_the_budget_gives_up_at_once(jira_cloud, clock):
    tracker = jira_for(jira_cloud, clock)
    jira_cloud.server.inject("GET", "/rest/api/3/user/assignable/search", status=429, headers={"Retry-After": "3600"})
    with pytest.raises(TrackerUnavailable, match="Retry-After 3600s"):
        tracker.find_user("@ana")
    assert clock.sleeps == []


# -- 500: idempotent calls are retried; a create or a comment is confirmed before it is resent


def test_jira_500_is_retried_and_a_lost_link_is_made_once(jira, clock):
    tracker = jira_for(jira, clock)
    parent = jira_parent(jira)
    v = jira.api_version
    jira.server.inject("GET", f"/rest/api/{v}/issueLinkType", status=500)
    jira.server.inject("POST", f"/rest/api/{v}/issueLink", status=500, passthrough=True)  # linked, answer lost
    ticket = tracker.create_followup(spec(parent))
    assert clock.sleeps == [0.5, 0.5]
    assert jira.linked(parent.key) == [("Relates", ticket.key)]  # the resent link was not stored twice
    jira.server.inject("PUT", f"/rest/api/{v}/issue/{{issueIdOrKey}}", status=500, times=2)
    tracker.update_followup(ticket, title="Dry-run every migration", due_date=None, assignee=None)
    assert clock.sleeps[2:] == [0.5, 1.0]
    assert jira.issue(ticket.key)["fields"]["summary"] == "Dry-run every migration"


def test_jira_500_on_create_is_searched_before_it_is_sent_again(jira, clock):
    tracker = jira_for(jira, clock)
    parent = jira_parent(jira)
    jira.server.inject("POST", f"/rest/api/{jira.api_version}/issue", status=500)  # not made
    ticket = tracker.create_followup(spec(parent))
    assert sorted(jira.issues) == sorted([parent.key, ticket.key])
    assert jira.linked(ticket.key) == [("Relates", parent.key)]


def test_forge_500_on_the_cross_reference_is_confirmed_then_posted_once(forge, clock):
    tracker = forge_for(forge, clock)
    parent = forge_parent(forge)
    forge.server.inject("POST", FORGE_COMMENTS, status=500)  # not posted: the search finds none, it is sent again
    ticket = tracker.create_followup(spec(parent))
    mine = int(ticket.key.rsplit("#", 1)[1])
    assert len(forge.issue(1)["comments"]) == 1 and forge.references(1) == [mine]
    forge.server.inject("POST", FORGE_COMMENTS, status=500, passthrough=True)  # posted, answer lost
    tracker.relate(parent, ticket, Doc().paragraph("Follow-up opened again"))
    assert [c["body"] for c in forge.issue(1)["comments"]][1:] == ["Follow-up opened again"]
    forge.server.inject("PATCH", FORGE_ISSUE, status=500, times=2)
    tracker.update_followup(ticket, title="Dry-run every migration", due_date=None, assignee="alice")
    assert (forge.issue(mine)["title"], forge.issue(mine)["assignees"]) == ("Dry-run every migration", ["alice"])


def test_a_follow_up_whose_link_cannot_be_made_is_kept_with_a_warning(jira, forge, clock):
    """The ticket matters more than its link: it is returned, and the warning says what is missing."""
    j = jira_for(jira, clock)
    jparent = jira_parent(jira)
    jira.server.inject("POST", f"/rest/api/{jira.api_version}/issueLink", status=503, times=100)
    ticket = j.create_followup(spec(jparent))
    assert ticket.key in jira.issues and jira.links == []
    assert len(j.last_warnings) == 1
    assert j.last_warnings[0].startswith(f"{ticket.key}: not linked to {jparent.key}: jira at ")
    assert "answered 503 Service Unavailable" in j.last_warnings[0]

    f = forge_for(forge, clock)
    fparent = forge_parent(forge)
    forge.server.inject("POST", FORGE_COMMENTS, status=503, times=100)
    ticket = f.create_followup(spec(fparent))
    mine = int(ticket.key.rsplit("#", 1)[1])
    # No comment on the incident's issue; the follow-up's own body still references it.
    assert forge.issue(1)["comments"] == [] and forge.references(1) == [mine]
    assert f.last_warnings[0].startswith(f"{fparent.key}: the follow-up {ticket.key} was not mentioned there: ")


# -- a refused optional field: the rest of the update is saved, the warning names it


def test_jira_update_without_the_due_date_on_the_edit_screen_saves_the_rest(clock):
    with FakeJira(api_version=2, unavailable_fields=("duedate",)) as fake:
        tracker = jira_for(fake, clock)
        ticket = tracker.create_followup(spec(jira_parent(fake)))
        assert "does not accept duedate" in tracker.last_warnings[0]
        tracker.update_followup(ticket, title="Dry-run every migration", due_date=None, assignee="no-such-user")
        assert fake.issue(ticket.key)["fields"]["summary"] == "Dry-run every migration"
        assert fake.issue(ticket.key)["fields"]["assignee"] is None
        # the fake names one refused field per answer (as some Jira versions do): one warning each
        assert [w.split(" (")[0] for w in tracker.last_warnings] == [
            f"{ticket.key}: jira does not accept duedate",
            f"{ticket.key}: jira does not accept assignee",
        ]
        assert all(w.endswith("updated the follow-up without it") for w in tracker.last_warnings)
        assert fake.failures == []


def test_jira_update_refused_for_another_reason_is_an_error(jira, clock):
    tracker = jira_for(jira, clock)
    ticket = tracker.create_followup(spec(jira_parent(jira)))
    jira.server.inject(
        "PUT", f"/rest/api/{jira.api_version}/issue/{{issueIdOrKey}}", status=400, body={"errors": {"summary": "no"}}
    )
    with pytest.raises(TrackerError, match=f"jira refused to update {ticket.key}: .*summary"):
        tracker.update_followup(ticket, title="Dry-run every migration", due_date=None, assignee=None)


def test_forge_update_with_a_refused_assignee_saves_the_rest(forge, clock):
    tracker = forge_for(forge, clock)
    ticket = tracker.create_followup(spec(forge_parent(forge), "ana"))
    tracker.update_followup(ticket, title="Dry-run every migration", due_date=None, assignee="nobody")
    issue = forge.issue(int(ticket.key.rsplit("#", 1)[1]))
    assert (issue["title"], issue["due_date"], issue["assignees"]) == ("Dry-run every migration", None, ["ana"])
    assert tracker.last_warnings == [
        f"{ticket.key}: assignee nobody was refused (Assignee does not exist: [name: nobody]); "
        "updated the follow-up without it (check the follow-up owners setting)"
    ]
