"""Retries, budgets, error mapping and secret hygiene of the shared HTTP client, exercised
through real backends against the loopback fakes."""

import socket
import traceback
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from rollback_pm.errors import (
    TrackerAuthError,
    TrackerError,
    TrackerNotFoundError,
    TrackerUnavailable,
)
from rollback_pm.models import TicketRef
from rollback_pm.trackers.gitea import GiteaTracker
from rollback_pm.trackers.http import HttpClient, parse_retry_after, strip_userinfo
from rollback_pm.trackers.jira import JiraTracker

LABELS = "/repos/{owner}/{repo}/labels"
ISSUES = "/repos/{owner}/{repo}/issues"


def gitea_for(fake, clock, **kwargs):
    options = dict(kind=fake.kind, timeout=2.0, retry_budget_s=30.0, sleep=clock.sleep, clock=clock.monotonic)
    options.update(kwargs)
    return GiteaTracker(fake.url, options.pop("repo", fake.repo), options.pop("token", fake.token), **options)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def leaks(token: str, exc: BaseException) -> list[str]:
    """Every place an exception could show the token."""
    texts = {
        "str": str(exc),
        "repr": repr(exc),
        "args": repr(exc.args),
        "traceback": "".join(traceback.format_exception(exc)),
    }
    return [where for where, text in texts.items() if token in text]


def test_retry_after_seconds_and_http_date():
    assert parse_retry_after("120") == 120.0
    now = datetime(2026, 5, 13, 8, 47, 21, tzinfo=timezone.utc)
    later = format_datetime(now + timedelta(seconds=90), usegmt=True)
    assert parse_retry_after(later, now=now.timestamp()) == 90.0
    assert parse_retry_after(format_datetime(now - timedelta(seconds=5), usegmt=True), now=now.timestamp()) == 0.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_429_retry_after_is_honoured_then_success(forge, clock, logs):
    forge.server.inject("GET", ISSUES, status=429, headers={"Retry-After": "7"})
    assert gitea_for(forge, clock).find("rollback-pm-x") is None
    assert clock.sleeps == [7.0]
    assert len(forge.server.calls("GET", ISSUES)) == 2
    assert '"reason": "answered 429 Too Many Requests (Retry-After 7s)"' in logs.getvalue()


def test_retry_after_http_date_is_honoured(forge, clock):
    when = datetime.now(timezone.utc) + timedelta(seconds=30)
    forge.server.inject("GET", ISSUES, status=503, headers={"Retry-After": format_datetime(when, usegmt=True)})
    gitea_for(forge, clock).find("rollback-pm-x")
    assert len(clock.sleeps) == 1 and 27 <= clock.sleeps[0] <= 30


def test_500_then_success(forge, clock):
    forge.server.inject("GET", ISSUES, status=500, times=2)
    assert gitea_for(forge, clock).find("rollback-pm-x") is None
    assert clock.sleeps == [0.5, 1.0]  # exponential backoff when no Retry-After


def test_exhausted_budget_is_unavailable(forge, clock):
    forge.server.inject("GET", ISSUES, status=503, headers={"Retry-After": "5"}, times=100)
    with pytest.raises(TrackerUnavailable, match="would exceed the 12s retry budget") as info:
        gitea_for(forge, clock, retry_budget_s=12).find("rollback-pm-x")
    assert clock.sleeps == [5.0, 5.0]
    assert "503 Service Unavailable" in str(info.value) and "3 attempts" in str(info.value)


def test_retry_after_longer_than_budget_gives_up_at_once(forge, clock):
    forge.server.inject("GET", ISSUES, status=429, headers={"Retry-After": "3600"})
    with pytest.raises(TrackerUnavailable, match="Retry-After 3600s"):
        gitea_for(forge, clock).find("rollback-pm-x")
    assert clock.sleeps == []


def test_max_attempts(forge, clock):
    forge.server.inject("GET", ISSUES, status=502, times=100)
    with pytest.raises(TrackerUnavailable, match="4 attempts"):
        gitea_for(forge, clock, max_attempts=4).find("rollback-pm-x")
    assert len(forge.server.calls("GET", ISSUES)) == 4


def test_hang_times_out_within_the_budget(forge, clock):
    forge.server.inject("GET", ISSUES, hang=30, times=100)
    tracker = gitea_for(forge, clock, timeout=0.3, retry_budget_s=1.0)
    with pytest.raises(TrackerUnavailable, match="no answer within") as info:
        tracker.find("rollback-pm-x")
    assert "retry budget 1s" in str(info.value)
    # The budget bounds the total: virtual backoff (0.5s) + real timeouts fit in 1s.
    assert sum(clock.sleeps) < 1.0


def test_connection_refused_is_unavailable(clock):
    port = free_port()
    tracker = GiteaTracker(
        f"http://127.0.0.1:{port}",
        "acme/shop",
        "forge-token-value",
        timeout=1.0,
        retry_budget_s=30,
        max_attempts=3,
        sleep=clock.sleep,
        clock=clock.monotonic,
    )
    with pytest.raises(TrackerUnavailable, match="connection refused"):
        tracker.find("rollback-pm-x")
    assert clock.sleeps == [0.5, 1.0]


def test_refused_post_is_resent_but_lost_post_without_confirm_is_not(forge, clock):
    client = HttpClient(
        f"http://127.0.0.1:{free_port()}",
        service="gitea",
        authorization="token abcdefgh",
        max_attempts=3,
        sleep=clock.sleep,
        clock=clock.monotonic,
    )
    with pytest.raises(TrackerUnavailable):
        client.request("POST", "/x", json={})
    assert len(clock.sleeps) == 2  # refused: never reached the server, safe to resend
    forge.server.inject("POST", LABELS, status=502, passthrough=True)
    client = HttpClient(
        forge.url + "/api/v1",
        service="gitea",
        authorization=f"token {forge.token}",
        sleep=clock.sleep,
        clock=clock.monotonic,
    )
    with pytest.raises(TrackerUnavailable, match="not resent because it may have taken effect"):
        client.request("POST", "/repos/acme/shop/labels", json={"name": "x", "color": "#000000"})
    assert len(forge.server.calls("POST", LABELS)) == 1 and len(forge.labels) == 1


def test_401_names_the_setting_and_hides_the_token(forge, clock, logs):
    tracker = gitea_for(forge, clock, token="wrong-but-secret-token")
    with pytest.raises(TrackerAuthError, match=r"fix ROLLBACK_PM_TRACKER_TOKEN / --token-file") as info:
        tracker.find("rollback-pm-x")
    assert "401" in str(info.value)
    assert leaks("wrong-but-secret-token", info.value) == []
    assert len(forge.server.requests) == 1


def test_403_is_an_auth_error(forge, clock):
    forge.server.inject("POST", ISSUES, status=403, body={"message": "user should have specific permission"})
    tracker = gitea_for(forge, clock)
    with pytest.raises(TrackerAuthError, match="lack permission.*ROLLBACK_PM_TRACKER_TOKEN"):
        tracker._create_issue({"title": "t"}, "rollback-pm-x", 0, "0" * 32)


def test_404_names_the_repository_setting(forge, clock):
    tracker = gitea_for(forge, clock, repo="acme/typo")
    with pytest.raises(TrackerNotFoundError, match=r"ROLLBACK_PM_FORGE_REPO / --forge-repo, now acme/typo"):
        tracker.find("rollback-pm-x")


def test_other_client_errors_carry_the_servers_message(forge, clock):
    forge.server.inject("GET", ISSUES, status=418, body={"message": "short and stout"})
    with pytest.raises(TrackerError, match="answered 418 I'm a Teapot to GET .*: short and stout"):
        gitea_for(forge, clock).find("rollback-pm-x")


def test_token_never_leaks(jira, clock, logs, spec, tmp_path):
    token = jira.token
    # A server that echoes the token back in its error, then fails every retry.
    jira.server.inject("*", ".*", status=400, body={"errorMessages": [f"bad token {token}"]})
    tracker = JiraTracker(
        jira.url,
        jira.project,
        token,
        email=jira.email if jira.api_version == 3 else None,
        api_version=jira.api_version,
        sleep=clock.sleep,
        clock=clock.monotonic,
    )
    caught = []
    with pytest.raises(TrackerError) as info:
        tracker.find(spec.unique_label)
    caught.append(info.value)
    jira.server.inject("*", ".*", status=503, times=100)
    with pytest.raises(TrackerUnavailable) as info:
        tracker.create(spec)
    caught.append(info.value)
    with pytest.raises(TrackerError) as info:
        tracker.comment(TicketRef("jira", "OPS-1", ""), "hello")
    caught.append(info.value)
    # A URL with credentials in it, to a port where nothing listens.
    url = f"http://user:{token}@127.0.0.1:{free_port()}"
    refused = JiraTracker(
        url, "OPS", token, email="a@b.c", api_version=3, max_attempts=2, sleep=clock.sleep, clock=clock.monotonic
    )
    with pytest.raises(TrackerUnavailable) as info:
        refused.find("x")
    caught.append(info.value)
    assert "***" in str(caught[0])
    for exc in caught:
        assert leaks(token, exc) == []
    output = logs.getvalue()
    assert "tracker request failed; retrying" in output  # the capture works...
    assert token not in output  # ...and holds no token
    for obj in (tracker, tracker.http, tracker.http.session.auth, refused):
        assert token not in repr(obj)
    jira.server.failures.clear()  # the echoing 400s were injected on purpose


def test_userinfo_is_stripped_from_the_url():
    assert strip_userinfo("https://bot:pa55word@git.example.com:3000/x") == "https://git.example.com:3000/x"
    assert strip_userinfo("https://git.example.com") == "https://git.example.com"


def test_html_page_is_an_error_not_an_empty_result(jira, clock):
    # A login page or proxy answering 200 must not read as "no ticket yet" (-> a duplicate).
    jira.server.inject(
        "GET", ".*/search.*", status=200, body="<html><body>Log in</body></html>", headers={"Content-Type": "text/html"}
    )
    tracker = JiraTracker(
        jira.url,
        jira.project,
        jira.token,
        email=jira.email if jira.api_version == 3 else None,
        api_version=jira.api_version,
        sleep=clock.sleep,
        clock=clock.monotonic,
    )
    with pytest.raises(TrackerError, match="with text/html, not JSON: check the Jira URL"):
        tracker.find("rollback-pm-x")
