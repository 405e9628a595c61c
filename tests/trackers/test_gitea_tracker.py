import base64
import re

import pytest

from rollback_pm.errors import ConfigError, TrackerNotFoundError, TrackerUnavailable
from rollback_pm.models import TicketRef
from rollback_pm.trackers.base import Tracker
from rollback_pm.trackers.gitea import GiteaTracker, label_color
from rollback_pm.trackers.markup import Doc, code, to_markdown


def tracker_for(fake, clock=None, **kwargs):
    options = dict(kind=fake.kind, timeout=2.0, retry_budget_s=20.0)
    if clock is not None:
        options.update(sleep=clock.sleep, clock=clock.monotonic)
    options.update(kwargs)
    return GiteaTracker(fake.url, fake.repo, fake.token, **options)


def test_is_a_tracker_named_by_kind():
    gitea = GiteaTracker("https://git.example.com/api/v1/", "acme/shop", "t0ken-value")
    forgejo = GiteaTracker("https://code.example.com", "acme/shop", "t0ken-value", kind="forgejo")
    assert isinstance(gitea, Tracker) and gitea.name == "gitea" and forgejo.name == "forgejo"
    assert gitea.http.base_url == "https://git.example.com/api/v1"
    with pytest.raises(ConfigError, match="owner/name.*ROLLBACK_PM_FORGE_REPO"):
        GiteaTracker("https://git.example.com", "shop", "t0ken-value")
    with pytest.raises(ConfigError, match="gitea or forgejo"):
        GiteaTracker("https://git.example.com", "acme/shop", "t0ken-value", kind="github")


def test_create_full_issue(forge, spec):
    tracker = tracker_for(forge, assignees=("oncall",))
    assert tracker.find(spec.unique_label) is None
    ticket = tracker.create(spec)

    assert ticket == TicketRef(
        tracker=forge.kind, key="acme/shop#1", url=f"{forge.url}/acme/shop/issues/1", status="open"
    )
    assert tracker.last_warnings == []
    issue = forge.issue(1)
    assert issue["title"] == spec.title
    # the body, and the create attempt's marker (claim.py) hidden at its end
    assert re.fullmatch(
        re.escape(to_markdown(spec.body)) + r"\n\n<!-- rollback-pm attempt=[0-9a-f]{32} -->\n", issue["body"]
    )
    assert forge.label_names(1) == ["postmortem", "rollback", "production", "api", "rollback-pm-abc123"]
    assert {lab["name"]: lab["color"] for lab in forge.labels}["postmortem"] == label_color("postmortem")[1:]
    assert issue["due_date"] == "2026-05-14T12:00:00Z"
    assert issue["assignees"] == ["oncall"]
    assert [(a["name"], a["size"]) for a in issue["assets"]] == [
        ("postmortem-abc123.md", 30),
        ("rollback-20260513T084721Z.manifest.json", 30),
    ]
    assert issue["asset_data"][issue["assets"][1]["id"]] == spec.attachments[1].read_bytes()
    # Labels were created once each, passed by id, and the issue posted once.
    create = forge.server.calls("POST", "/repos/{owner}/{repo}/issues")
    assert len(create) == 1 and all(isinstance(i, int) for i in create[0].json["labels"])
    assert len(forge.labels) == 5


def test_find_existing_and_reuse_labels(forge, spec):
    forge.add_issue("someone else's", ["postmortem"])
    tracker = tracker_for(forge)
    created = tracker.create(spec)
    assert tracker.find(spec.unique_label) == created
    spec.unique_label = "rollback-pm-second"
    second = tracker.create(spec)
    assert second.key == "acme/shop#3"
    assert sorted(lab["name"] for lab in forge.labels) == sorted(
        ["postmortem", "rollback", "production", "api", "rollback-pm-abc123", "rollback-pm-second"]
    )


def test_unknown_label_search_returns_no_ticket(forge):
    # The forge ignores label names it does not know and lists every issue: the client must
    # not take one of them for the incident's ticket.
    forge.add_issue("an open issue", ["postmortem"])
    forge.add_issue("another one")
    assert tracker_for(forge).find("rollback-pm-never-created") is None
    [search] = forge.server.calls("GET", "/repos/{owner}/{repo}/issues")
    assert search.query["state"] == ["all"] and search.query["type"] == ["issues"]


def test_closed_ticket_is_found_and_resolved(forge, spec):
    tracker = tracker_for(forge)
    ticket = tracker.create(spec)
    assert tracker.status(ticket) == "open"
    forge.close_issue(1)
    assert tracker.status(ticket) == "resolved"
    assert tracker.find(spec.unique_label) == TicketRef(forge.kind, ticket.key, ticket.url, "resolved")


def test_comment_label_attach(forge, spec, tmp_path):
    tracker = tracker_for(forge)
    ticket = tracker.create(spec)
    tracker.comment(ticket, Doc().paragraph("New evidence bundle ", code("20260513T090000Z")))
    tracker.add_label(ticket, "overdue")
    tracker.add_label(ticket, "overdue")
    log = tmp_path / "rollback-20260513T090000Z.log"
    log.write_bytes(b"api | stderr | boom\n")
    tracker.attach(ticket, log)
    issue = forge.issue(1)
    assert [c["body"] for c in issue["comments"]] == ["New evidence bundle `20260513T090000Z`"]
    assert forge.label_names(1)[-1] == "overdue" and forge.label_names(1).count("overdue") == 1
    assert issue["assets"][-1]["name"] == "rollback-20260513T090000Z.log"


def test_label_lookup_pages_through_many_labels(forge, spec):
    for i in range(120):
        forge.add_issue(f"old {i}", [f"rollback-pm-old{i:03d}"])
    tracker_for(forge).create(spec)
    pages = [r.query["page"] for r in forge.server.calls("GET", "/repos/{owner}/{repo}/labels")]
    assert pages == [["1"], ["2"], ["3"]]
    assert len(forge.labels) == 125


def test_refused_assignee_still_creates_the_issue(forge, spec, clock):
    tracker = tracker_for(forge, clock, assignees=("nobody",))
    ticket = tracker.create(spec)
    assert ticket.key == "acme/shop#1" and forge.issue(1)["assignees"] == []
    assert "assignees nobody were refused" in tracker.last_warnings[0]


def test_attachment_type_refused_is_a_warning_not_a_lost_ticket(forge, spec, tmp_path):
    blob = tmp_path / "core.bin"
    blob.write_bytes(b"\x7fELF")
    spec.attachments.append(blob)
    tracker = tracker_for(forge)
    ticket = tracker.create(spec)
    assert ticket.key == "acme/shop#1" and len(forge.issue(1)["assets"]) == 2
    assert (
        "core.bin was not attached" in tracker.last_warnings[0]
        and "File type is not allowed" in tracker.last_warnings[0]
    )


def test_lost_create_answer_is_found_not_duplicated(forge, spec, clock):
    forge.server.inject("POST", "/repos/{owner}/{repo}/issues", status=504, passthrough=True)
    ticket = tracker_for(forge, clock).create(spec)
    assert ticket.key == "acme/shop#1" and list(forge.issues) == [1]
    assert len(forge.server.calls("POST", "/repos/{owner}/{repo}/issues")) == 1


def test_create_that_dies_midway_is_found_on_the_rerun(forge, spec, clock):
    # The issue is created but the connection drops, and the forge stays down past the
    # budget: create fails (the caller queues it). The re-run's find() sees the issue.
    forge.server.inject("POST", "/repos/{owner}/{repo}/issues", drop=True, passthrough=True)
    # the three reads before the create (numbers 1-3: none yet) pass, the ones after fail
    forge.server.inject("GET", "/repos/{owner}/{repo}/issues/{index}", status=503, times=100, skip=3)
    tracker = tracker_for(forge, clock, max_attempts=3)
    with pytest.raises(TrackerUnavailable):
        tracker.create(spec)
    assert list(forge.issues) == [1]
    forge.server.clear_injections()
    found = tracker.find(spec.unique_label)
    assert found is not None and found.key == "acme/shop#1"
    assert list(forge.issues) == [1]


def test_lost_label_creation_is_not_duplicated(forge, spec, clock):
    forge.server.inject("POST", "/repos/{owner}/{repo}/labels", status=502, passthrough=True)
    tracker_for(forge, clock).create(spec)
    assert sorted(lab["name"] for lab in forge.labels) == sorted(
        ["postmortem", "rollback", "production", "api", "rollback-pm-abc123"]
    )


def test_lost_comment_is_not_posted_twice(forge, spec, clock):
    tracker = tracker_for(forge, clock)
    ticket = tracker.create(spec)
    forge.server.inject("POST", "/repos/{owner}/{repo}/issues/{index}/comments", status=502, passthrough=True)
    tracker.comment(ticket, "only once")
    assert [c["body"] for c in forge.issue(1)["comments"]] == ["only once"]


def test_unknown_issue_is_not_found(forge):
    with pytest.raises(TrackerNotFoundError, match="acme/shop#9 still exists"):
        tracker_for(forge).status(TicketRef(forge.kind, "acme/shop#9", ""))


def test_open_pr_commits_the_draft_once(forge):
    tracker = tracker_for(forge)
    draft = "# Postmortem: api production\n\nRoot cause: TBD\n"
    url = tracker.open_pr(
        "postmortem/abc123",
        "docs/postmortems/2026-05-13-api.md",
        draft,
        "Postmortem draft: api production",
        "Edit the draft in place.",
    )
    assert url == f"{forge.url}/acme/shop/pulls/1"
    assert forge.branches["postmortem/abc123"]["docs/postmortems/2026-05-13-api.md"] == draft.encode()
    assert forge.pulls[0]["base"] == "main" and forge.pulls[0]["head"] == "postmortem/abc123"
    again = tracker.open_pr(
        "postmortem/abc123",
        "docs/postmortems/2026-05-13-api.md",
        "changed",
        "Postmortem draft: api production",
        "Edit the draft in place.",
    )
    assert again == url and len(forge.pulls) == 1
    assert forge.branches["postmortem/abc123"]["docs/postmortems/2026-05-13-api.md"] == draft.encode()
    [commit] = forge.server.calls("POST", "/repos/{owner}/{repo}/contents/{filepath}")
    assert base64.b64decode(commit.json["content"]) == draft.encode()
    assert commit.json["new_branch"] == "postmortem/abc123"


def test_open_pr_finishes_after_a_partial_run(forge, clock):
    tracker = tracker_for(forge, clock)
    forge.server.inject("POST", "/repos/{owner}/{repo}/pulls", status=503, times=10)
    with pytest.raises(TrackerUnavailable):
        tracker_for(forge, clock, max_attempts=2).open_pr("postmortem/x", "pm.md", "draft", "t", "b")
    assert "postmortem/x" in forge.branches and forge.pulls == []
    forge.server.clear_injections()
    url = tracker.open_pr("postmortem/x", "pm.md", "draft", "t", "b")
    assert url.endswith("/pulls/1")
    assert len(forge.server.calls("POST", "/repos/{owner}/{repo}/contents/{filepath}")) == 1
