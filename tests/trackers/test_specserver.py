"""The validating server itself: it must reject what the specs do not allow, or the tracker
tests prove nothing."""

import socket

import pytest
import requests

from tests.support.fake_gitea import FakeGitea
from tests.support.fake_jira import FakeJira
from tests.support.specserver import parse_multipart


@pytest.fixture
def gitea():
    with FakeGitea() as fake:
        yield fake


def auth(fake):
    return {"Authorization": f"token {fake.token}"}


def test_valid_request_passes_and_is_recorded(gitea):
    resp = requests.post(
        f"{gitea.url}/api/v1/repos/acme/shop/labels",
        headers=auth(gitea),
        json={"name": "postmortem", "color": "#b60205"},
        timeout=5,
    )
    assert resp.status_code == 201 and resp.json()["name"] == "postmortem"
    assert gitea.failures == []
    [req] = gitea.server.calls("POST", "/repos/{owner}/{repo}/labels")
    assert req.params == {"owner": "acme", "repo": "shop"} and req.json["color"] == "#b60205"


@pytest.mark.parametrize(
    "method, path, kwargs, problem",
    [
        ("GET", "/api/v1/repos/acme/shop/nonsense", {}, "no path in the spec matches /repos/acme/shop/nonsense"),
        (
            "PUT",
            "/api/v1/repos/acme/shop/labels",
            {"json": {}},
            "PUT is not an operation of /repos/{owner}/{repo}/labels",
        ),
        ("POST", "/api/v1/repos/acme/shop/labels", {"json": {"name": "x"}}, "'color' is a required property"),
        (
            "POST",
            "/api/v1/repos/acme/shop/issues",
            {"json": {"title": "t", "due_date": "2026-05-14"}},
            "due_date: '2026-05-14' is not a 'date-time'",
        ),
        (
            "POST",
            "/api/v1/repos/acme/shop/issues",
            {"json": {"title": "t", "labels": ["postmortem"]}},
            "labels/0: 'postmortem' is not of type 'integer'",
        ),
        ("GET", "/api/v1/repos/acme/shop/issues", {"params": {"state": "any"}}, "query parameter 'state'"),
        ("GET", "/api/v1/repos/acme/shop/issues", {"params": {"limit": "ten"}}, "'ten' is not an integer"),
        (
            "GET",
            "/api/v1/repos/acme/shop/issues",
            {"params": {"per_page": "10"}},
            "query parameter 'per_page' is not in",
        ),
        (
            "POST",
            "/api/v1/repos/acme/shop/issues/1/assets",
            {"files": {"file": ("a.log", b"x")}},
            "required file field 'attachment' is missing",
        ),
        (
            "POST",
            "/api/v1/repos/acme/shop/issues",
            {"data": "title=x", "headers": {"Content-Type": "application/x-www-form-urlencoded"}},
            "Content-Type application/x-www-form-urlencoded",
        ),
    ],
)
def test_invalid_requests_are_rejected_and_recorded(gitea, method, path, kwargs, problem):
    headers = {**auth(gitea), **kwargs.pop("headers", {})}
    resp = requests.request(method, gitea.url + path, headers=headers, timeout=5, **kwargs)
    assert resp.status_code == 400
    assert len(gitea.failures) >= 1 and problem in gitea.failures[0], gitea.failures
    gitea.failures.clear()


def test_security_requirement_is_checked():
    with FakeGitea() as gitea:
        resp = requests.get(f"{gitea.url}/api/v1/repos/acme/shop/labels", timeout=5)
        assert resp.status_code == 400
        assert "no credentials for any security requirement" in gitea.failures[0]


def test_jira_v3_has_no_classic_search_and_v2_no_search_jql():
    with FakeJira(api_version=3) as cloud, FakeJira(api_version=2) as dc:
        requests.get(f"{cloud.url}/rest/api/3/search", params={"jql": "project = OPS"}, timeout=5)
        requests.get(f"{dc.url}/rest/api/2/search/jql", params={"jql": "project = OPS"}, timeout=5)
        assert "no path in the spec matches /rest/api/3/search" in cloud.failures[0]
        assert "no path in the spec matches /rest/api/2/search/jql" in dc.failures[0]


def test_jira_checks_adf_and_xsrf_header():
    with FakeJira(api_version=3) as jira:
        key = jira.add_issue("x", [])
        session = requests.Session()
        session.auth = (jira.email, jira.token)
        resp = session.post(f"{jira.url}/rest/api/3/issue/{key}/comment", json={"body": "plain string"}, timeout=5)
        assert resp.status_code == 400
        resp = session.post(
            f"{jira.url}/rest/api/3/issue/{key}/attachments", files={"file": ("a.txt", b"x")}, timeout=5
        )
        assert resp.status_code == 403
        assert len(jira.failures) == 2
        assert "/comment: comment body is not a valid ADF document: not an object" in jira.failures[0]
        assert "/attachments: attachment upload without X-Atlassian-Token: no-check" in jira.failures[1]


def test_fake_responses_are_checked_against_the_spec():
    with FakeGitea() as gitea:
        gitea.labels.append({"id": "not-an-int", "name": "x"})
        requests.get(f"{gitea.url}/api/v1/repos/acme/shop/labels", headers=auth(gitea), timeout=5)
        assert (
            "the fake's 200 response breaks the spec: 0/id: 'not-an-int' is not of type 'integer'" in gitea.failures[0]
        )


def test_injected_answers_then_normal_service(gitea):
    gitea.server.inject("GET", "/repos/{owner}/{repo}/labels", status=429, headers={"Retry-After": "7"}, times=2)
    url = f"{gitea.url}/api/v1/repos/acme/shop/labels"
    first = requests.get(url, headers=auth(gitea), timeout=5)
    second = requests.get(url, headers=auth(gitea), timeout=5)
    third = requests.get(url, headers=auth(gitea), timeout=5)
    assert [r.status_code for r in (first, second, third)] == [429, 429, 200]
    assert first.headers["Retry-After"] == "7"


def test_injected_hang_and_drop(gitea):
    url = f"{gitea.url}/api/v1/repos/acme/shop/labels"
    gitea.server.inject("GET", r"/repos/acme/shop/labels", hang=30)
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(url, headers=auth(gitea), timeout=0.2)
    gitea.server.inject("GET", r"/repos/acme/shop/labels", drop=True)
    with pytest.raises(requests.exceptions.ConnectionError, match="without response"):
        requests.get(url, headers=auth(gitea), timeout=5)


def test_passthrough_injection_keeps_the_effect(gitea):
    gitea.server.inject("POST", "/repos/{owner}/{repo}/labels", status=502, passthrough=True)
    resp = requests.post(
        f"{gitea.url}/api/v1/repos/acme/shop/labels",
        headers=auth(gitea),
        json={"name": "x", "color": "#000000"},
        timeout=5,
    )
    assert resp.status_code == 502
    assert [lab["name"] for lab in gitea.labels] == ["x"]


def test_multipart_is_parsed_byte_exactly():
    payload = b"line1\r\nline2\n\x00\xff--not-a-boundary\r\n"
    prepared = requests.Request(
        "POST", "http://127.0.0.1/", files={"attachment": ("r.log", payload, "text/plain")}, data={"note": "hi"}
    ).prepare()
    parts = parse_multipart(prepared.headers["Content-Type"], prepared.body)
    assert [(p.name, p.filename, p.data) for p in parts] == [("note", None, b"hi"), ("attachment", "r.log", payload)]


def test_server_binds_loopback_only(gitea):
    host = gitea.url.split("//")[1].split(":")[0]
    assert host == "127.0.0.1"
    with socket.create_connection((host, int(gitea.url.rsplit(":", 1)[1])), timeout=2):
        pass
