import base64
import json

import pytest

from rollback_pm.errors import (
    ConfigError,
    TrackerAuthError,
    TrackerNotFoundError,
    TrackerUnavailable,
)
from rollback_pm.models import TicketRef
from rollback_pm.trackers.base import Tracker
from rollback_pm.trackers.jira import JiraTracker
from rollback_pm.trackers.markup import Doc, adf_text, code


def tracker_for(fake, clock=None, **kwargs):
    token = kwargs.pop("token", fake.token)
    options = dict(
        email=fake.email if fake.api_version == 3 else None,
        api_version=fake.api_version,
        timeout=2.0,
        retry_budget_s=20.0,
    )
    if clock is not None:
        options.update(sleep=clock.sleep, clock=clock.monotonic)
    options.update(kwargs)
    return JiraTracker(fake.url, fake.project, token, **options)


def test_is_a_tracker_and_defaults_api_by_host():
    cloud = JiraTracker("https://acme.atlassian.net", "OPS", "t0ken-value", email="a@b.c")
    dc = JiraTracker("https://jira.acme.internal/", "OPS", "t0ken-value")
    assert isinstance(cloud, Tracker) and cloud.name == "jira"
    assert (cloud.api_version, cloud.search_path) == (3, "/rest/api/3/search/jql")
    assert (dc.api_version, dc.search_path) == (2, "/rest/api/2/search")
    # Cloud on REST v2 still has to use /search/jql (the classic search is gone there).
    assert (
        JiraTracker("https://acme.atlassian.net", "OPS", "t0ken-value", email="a@b.c", api_version=2).search_path
        == "/rest/api/2/search/jql"
    )


def test_cloud_without_email_names_the_setting():
    with pytest.raises(ConfigError, match="ROLLBACK_PM_JIRA_EMAIL / --jira-email"):
        JiraTracker("https://acme.atlassian.net", "OPS", "t0ken-value")


def test_create_full_ticket(jira, spec):
    tracker = tracker_for(jira)
    assert tracker.find(spec.unique_label) is None
    ticket = tracker.create(spec)

    assert ticket == TicketRef(tracker="jira", key="OPS-1", url=f"{jira.url}/browse/OPS-1", status="open")
    assert tracker.last_warnings == []
    issue = jira.issue("OPS-1")
    fields = issue["fields"]
    assert fields["summary"] == "Postmortem: api production rollback 0123456 -> fedcba9"
    assert fields["labels"] == ["postmortem", "rollback", "production", "api", "rollback-pm-abc123"]
    assert fields["duedate"] == "2026-05-14"
    assert fields["priority"]["name"] == "Highest"
    assert fields["issuetype"]["name"] == "Task"
    if jira.api_version == 3:
        assert fields["description"]["type"] == "doc"
        assert "Failed smoke step 3 api health: 502" in adf_text(fields["description"])
    else:
        assert "*Failed smoke step 3* {{api health}}: 502" in fields["description"]
        assert "||Field||Value||" in fields["description"]
    assert [(a["filename"], a["size"]) for a in issue["attachments"]] == [
        ("postmortem-abc123.md", 30),
        ("rollback-20260513T084721Z.manifest.json", 30),
    ]
    assert issue["attachment_data"][issue["attachments"][1]["id"]] == spec.attachments[1].read_bytes()
    assert [link["object"]["url"] for link in issue["remotelinks"]] == [spec.pipeline_url]
    # The create path searched first and posted exactly once.
    assert len(jira.server.calls("POST", f"/rest/api/{jira.api_version}/issue")) == 1


def test_auth_headers_per_api_version(jira, spec):
    tracker_for(jira).find(spec.unique_label)
    header = jira.server.requests[-1].header("authorization")
    if jira.api_version == 3:
        assert header == "Basic " + base64.b64encode(f"{jira.email}:{jira.token}".encode()).decode()
        assert jira.server.requests[-1].route == "/rest/api/3/search/jql"
    else:
        assert header == f"Bearer {jira.token}"
        assert jira.server.requests[-1].route == "/rest/api/2/search"


def test_find_existing_picks_the_labelled_issue(jira, spec):
    jira.add_issue("unrelated", ["postmortem"])
    tracker = tracker_for(jira)
    created = tracker.create(spec)
    jira.add_issue("another postmortem", ["postmortem", "rollback-pm-other"])
    assert tracker.find(spec.unique_label) == created
    assert tracker.find("rollback-pm-nothing") is None


def test_comment_label_status(jira, spec):
    tracker = tracker_for(jira)
    ticket = tracker.create(spec)
    tracker.comment(
        ticket,
        Doc()
        .paragraph("New evidence bundle ", code("20260513T090000Z"), ":")
        .bullets([[code("/var/log/azaion/x.log"), " (9 bytes)"]]),
    )
    tracker.add_label(ticket, "postmortem overdue")
    tracker.add_label(ticket, "postmortem overdue")
    issue = jira.issue(ticket.key)
    assert issue["fields"]["labels"][-1] == "postmortem-overdue"
    assert issue["fields"]["labels"].count("postmortem-overdue") == 1
    [comment] = issue["comments"]
    if jira.api_version == 3:
        assert adf_text(comment["body"]) == "New evidence bundle 20260513T090000Z: /var/log/azaion/x.log (9 bytes)"
    else:
        assert comment["body"] == "New evidence bundle {{20260513T090000Z}}:\n\n* {{/var/log/azaion/x.log}} (9 bytes)"
    assert tracker.status(ticket) == "open"
    jira.set_status(ticket.key, "Done")
    assert tracker.status(ticket) == "resolved"
    assert tracker.find(spec.unique_label).status == "resolved"


def test_project_without_priority_field_still_gets_its_ticket(spec, clock):
    from tests.support.fake_jira import FakeJira

    with FakeJira(api_version=3, unavailable_fields=("priority",)) as jira:
        tracker = tracker_for(jira, clock)
        ticket = tracker.create(spec)
        assert ticket.key == "OPS-1"
        assert jira.issue("OPS-1")["fields"]["priority"] is None
        assert len(tracker.last_warnings) == 1 and "priority" in tracker.last_warnings[0]
        assert jira.failures == []


def test_wrong_project_names_the_setting(jira, spec):
    tracker = JiraTracker(
        jira.url, "NOPE", jira.token, email=jira.email if jira.api_version == 3 else None, api_version=jira.api_version
    )
    with pytest.raises(TrackerNotFoundError, match="ROLLBACK_PM_JIRA_PROJECT / --jira-project, now NOPE"):
        tracker.find(spec.unique_label)
    with pytest.raises(TrackerNotFoundError, match="ROLLBACK_PM_JIRA_PROJECT / --jira-project"):
        tracker.create(spec)


def test_unknown_issue_is_not_found(jira):
    tracker = tracker_for(jira)
    with pytest.raises(TrackerNotFoundError, match="OPS-99 still exists"):
        tracker.status(TicketRef(tracker="jira", key="OPS-99", url=""))


def test_bad_token_is_an_auth_error_naming_the_setting(jira, spec):
    tracker = tracker_for(jira, token="wrong-token-value")
    with pytest.raises(TrackerAuthError, match="ROLLBACK_PM_TRACKER_TOKEN / --token-file") as info:
        tracker.find(spec.unique_label)
    assert "wrong-token-value" not in str(info.value)
    assert len(jira.server.requests) == 1  # auth errors are not retried


def test_lost_create_answer_is_found_not_duplicated(jira_cloud, spec, clock):
    # Jira creates the issue, then the gateway answers 502: the client must search again
    # and take the issue it finds instead of creating a second one.
    jira_cloud.server.inject("POST", "/rest/api/3/issue", status=502, passthrough=True)
    ticket = tracker_for(jira_cloud, clock).create(spec)
    assert ticket.key == "OPS-1"
    assert list(jira_cloud.issues) == ["OPS-1"]
    assert len(jira_cloud.server.calls("POST", "/rest/api/3/issue")) == 1
    assert len(jira_cloud.issue("OPS-1")["attachments"]) == 2
    # The search waited for Jira's index to catch up with the create before looking.
    assert clock.sleeps == [2.0]


def test_create_refused_before_processing_is_resent(jira_cloud, spec, clock):
    jira_cloud.server.inject("POST", "/rest/api/3/issue", status=503, headers={"Retry-After": "3"})
    ticket = tracker_for(jira_cloud, clock).create(spec)
    assert ticket.key == "OPS-1" and list(jira_cloud.issues) == ["OPS-1"]
    assert len(jira_cloud.server.calls("POST", "/rest/api/3/issue")) == 2
    assert clock.sleeps == [3.0]


def test_create_down_tracker_raises_unavailable_without_creating(jira_dc, spec, clock):
    jira_dc.server.inject("*", ".*", status=503, times=100)
    with pytest.raises(TrackerUnavailable, match="jira at .* is unavailable"):
        tracker_for(jira_dc, clock, max_attempts=3).create(spec)
    assert jira_dc.issues == {}


def test_lost_comment_is_not_posted_twice(jira_dc, spec, clock):
    tracker = tracker_for(jira_dc, clock)
    ticket = tracker.create(spec)
    jira_dc.server.inject("POST", "/rest/api/2/issue/{issueIdOrKey}/comment", drop=True, passthrough=True)
    tracker.comment(ticket, "second bundle")
    assert [c["body"] for c in jira_dc.issue(ticket.key)["comments"]] == ["second bundle"]


def test_lost_attachment_is_not_uploaded_twice(jira_cloud, spec, clock):
    tracker = tracker_for(jira_cloud, clock)
    ticket = tracker.create(spec)
    jira_cloud.server.inject("POST", "/rest/api/3/issue/{issueIdOrKey}/attachments", status=504, passthrough=True)
    tracker.attach(ticket, spec.attachments[0])
    names = [a["filename"] for a in jira_cloud.issue(ticket.key)["attachments"]]
    assert names == ["postmortem-abc123.md", "rollback-20260513T084721Z.manifest.json", "postmortem-abc123.md"]


def test_descriptions_stay_under_jira_limit(jira, spec):
    spec.body = Doc()
    for i in range(1000):
        spec.body.paragraph(f"line {i} " + "x" * 80)
    ticket = tracker_for(jira).create(spec)
    description = jira.issue(ticket.key)["fields"]["description"]
    text = json.dumps(description) if jira.api_version == 3 else description
    assert "(truncated: " in text and "the full text is attached" in text
    assert len(text) < 32_767
