"""Credentials stay with the origin they were given for: a tracker, Woodpecker or the
webhook answering with a redirect to another scheme, host or port gets no Authorization
header there (a second loopback server records what arrives), and https -> http is refused."""

import json
import ssl
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from rollback_pm.errors import TrackerError, WebhookError, WoodpeckerError
from rollback_pm.facts.woodpecker import WoodpeckerClient
from rollback_pm.trackers.gitea import GiteaTracker
from rollback_pm.trackers.jira import JiraTracker
from rollback_pm.webhook import Webhook


class Recorder:
    """A plain HTTP(S) server on loopback that records every request's headers; it answers
    JSON, or a redirect to ``redirect_to`` when that is set."""

    def __init__(self, tls: ssl.SSLContext | None = None, redirect_to: str | None = None) -> None:
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.redirect_to = redirect_to
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                owner.requests.append((self.command, self.path, dict(self.headers.items())))
                if owner.redirect_to:
                    self.send_response(302)
                    self.send_header("Location", owner.redirect_to + self.path)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = json.dumps({"issues": [], "id": 7, "full_name": "acme/shop"}).encode()
                if "/issues" in self.path and "/rest/" not in self.path:
                    body = b"[]"
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = _answer

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "Recorder":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def authorizations(self) -> list[str | None]:
        return [{k.lower(): v for k, v in headers.items()}.get("authorization") for _, _, headers in self.requests]


@pytest.fixture
def elsewhere():
    with Recorder() as recorder:
        yield recorder


def redirect_everything(fake, target: str) -> None:
    fake.server.inject("*", ".*", status=302, headers={"Location": target}, times=100, body={})


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])  # another host; the same host on another port
def test_jira_cloud_basic_auth_is_dropped_on_a_cross_origin_redirect(jira_cloud, elsewhere, host, clock):
    redirect_everything(jira_cloud, f"http://{host}:{elsewhere.port}/rest/api/3/search/jql")
    tracker = JiraTracker(
        jira_cloud.url, "OPS", jira_cloud.token, email=jira_cloud.email, api_version=3, sleep=clock.sleep
    )
    assert tracker.find("rollback-pm-x") is None  # the other server's answer
    assert jira_cloud.server.requests[0].header("authorization").startswith("Basic ")
    assert elsewhere.authorizations() == [None]


def test_jira_dc_bearer_is_dropped_on_a_cross_origin_redirect(jira_dc, elsewhere, clock):
    redirect_everything(jira_dc, f"http://localhost:{elsewhere.port}/rest/api/2/search")
    tracker = JiraTracker(jira_dc.url, "OPS", jira_dc.token, api_version=2, sleep=clock.sleep)
    assert tracker.find("rollback-pm-x") is None
    assert jira_dc.server.requests[0].header("authorization") == f"Bearer {jira_dc.token}"
    assert elsewhere.authorizations() == [None]
    assert all(jira_dc.token not in json.dumps(h) for _, _, h in elsewhere.requests)


def test_forge_token_is_dropped_on_a_cross_origin_redirect(forge, elsewhere, clock):
    redirect_everything(forge, f"http://localhost:{elsewhere.port}/api/v1/repos/acme/shop/issues")
    tracker = GiteaTracker(forge.url, forge.repo, forge.token, kind=forge.kind, sleep=clock.sleep)
    assert tracker.find("rollback-pm-x") is None
    assert forge.server.requests[0].header("authorization") == f"token {forge.token}"
    assert elsewhere.authorizations() == [None]


def test_woodpecker_token_is_dropped_on_a_cross_origin_redirect(woodpecker, elsewhere, clock):
    redirect_everything(woodpecker, f"http://localhost:{elsewhere.port}/api/repos/lookup/acme/shop")
    client = WoodpeckerClient(woodpecker.server.origin, woodpecker.token, sleep=clock.sleep)
    assert client.lookup_repo("acme/shop")["id"] == 7
    assert woodpecker.server.requests[0].header("authorization") == f"Bearer {woodpecker.token}"
    assert elsewhere.authorizations() == [None]


def test_same_origin_redirect_keeps_the_credentials(forge, clock):
    # a forge behind a proxy that moves the API: same scheme, host and port
    forge.server.inject(
        "GET", ".*/acme/old/issues", status=301, headers={"Location": f"{forge.server.url}/repos/acme/shop/issues"}
    )
    tracker = GiteaTracker(forge.url, "acme/old", forge.token, kind=forge.kind, sleep=clock.sleep)
    assert tracker.find("rollback-pm-x") is None
    assert [r.header("authorization") for r in forge.server.requests] == [f"token {forge.token}"] * 2


def test_webhook_follows_no_redirect(elsewhere):
    with Recorder(redirect_to=f"http://localhost:{elsewhere.port}") as moved:
        hook = Webhook(f"http://127.0.0.1:{moved.port}/services/T000/B000/s3cr3tw3bh00k", attempts=1)
        with pytest.raises(WebhookError) as err:
            hook.post("overdue")
    assert len(moved.requests) == 1 and elsewhere.requests == []
    assert "HTTP 302" in str(err.value) and "s3cr3tw3bh00k" not in str(err.value)


@pytest.fixture
def tls(tmp_path, monkeypatch):
    """A self-signed certificate for 127.0.0.1, trusted by requests through REQUESTS_CA_BUNDLE."""
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert)]
        + ["-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True,
        capture_output=True,
        timeout=60,
    )
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


@pytest.mark.parametrize("client", ["jira", "gitea", "woodpecker"])
def test_https_to_http_redirect_is_refused(tls, elsewhere, client, clock):
    with Recorder(tls=tls, redirect_to=f"http://127.0.0.1:{elsewhere.port}") as secure:
        url = f"https://127.0.0.1:{secure.port}"
        if client == "jira":
            call = JiraTracker(url, "OPS", "jira-t0ken-xyz", api_version=2, sleep=clock.sleep).find
            expected = TrackerError
        elif client == "gitea":
            call = GiteaTracker(url, "acme/shop", "forge-t0ken-xyz", sleep=clock.sleep).find
            expected = TrackerError
        else:
            call = WoodpeckerClient(url, "wp-t0ken-xyz", sleep=clock.sleep).lookup_repo
            expected = WoodpeckerError
        with pytest.raises(expected) as err:
            call("acme/shop")
    assert len(secure.requests) == 1 and secure.authorizations()[0] is not None  # TLS carried it
    assert elsewhere.requests == []
    assert f"redirected from https to http://127.0.0.1:{elsewhere.port}, refused" in str(err.value)
    assert "t0ken-xyz" not in str(err.value)
