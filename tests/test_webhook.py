import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from rollback_pm.errors import ConfigError, WebhookError
from rollback_pm.webhook import Webhook

SECRET_PATH = "/services/T0001/B0002/s3cr3tW3bh00kT0k3n"


class Endpoint:
    """A Slack-like webhook on 127.0.0.1 that answers from a script: (status, headers, body) per request."""

    def __init__(self, script=()):
        self.script = list(script)
        self.requests: list[dict] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                endpoint.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                status, headers, text = endpoint.script.pop(0) if endpoint.script else (200, {}, "ok")
                payload = text.encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{SECRET_PATH}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint():
    made = []

    def make(*script):
        made.append(Endpoint(script))
        return made[-1]

    yield make
    for e in made:
        e.close()


def test_posts_slack_json(endpoint):
    server = endpoint()
    Webhook(server.url).post("Postmortem overdue: api production")
    [request] = server.requests
    assert request["path"] == SECRET_PATH
    assert request["headers"]["Content-Type"] == "application/json"
    assert request["headers"]["User-Agent"].startswith("rollback-pm/")
    assert json.loads(request["body"]) == {"text": "Postmortem overdue: api production"}


def test_retries_5xx_then_succeeds(endpoint):
    server = endpoint((500, {}, "oops"), (503, {}, ""))
    waits = []
    Webhook(server.url, sleep=waits.append).post("hello")
    assert len(server.requests) == 3
    assert waits == [1.0, 2.0]


def test_honours_retry_after_on_429(endpoint):
    server = endpoint((429, {"Retry-After": "7"}, "rate_limited"))
    waits = []
    Webhook(server.url, sleep=waits.append).post("hello")
    assert len(server.requests) == 2
    assert waits == [7.0]


def test_gives_up_after_the_budget_without_leaking_the_url(endpoint):
    server = endpoint(*[(500, {}, "internal")] * 3)
    waits = []
    with pytest.raises(WebhookError) as caught:
        Webhook(server.url, attempts=3, sleep=waits.append).post("hello")
    message = str(caught.value)
    assert message == (
        "webhook at 127.0.0.1 not reached after 3 attempt(s): HTTP 500 (internal); "
        "the next check-deadlines run tries again"
    )
    assert "s3cr3t" not in message and "T0001" not in message
    assert len(server.requests) == 3 and waits == [1.0, 2.0]


def test_retry_after_past_the_cap_stops_at_once(endpoint):
    server = endpoint((429, {"Retry-After": "3600"}, ""))
    waits = []
    with pytest.raises(WebhookError, match=r"Retry-After 3600s is past the 30s cap"):
        Webhook(server.url, sleep=waits.append).post("hello")
    assert len(server.requests) == 1 and waits == []


def test_4xx_is_not_retried(endpoint):
    server = endpoint((404, {}, "no_service"))
    with pytest.raises(WebhookError) as caught:
        Webhook(server.url, sleep=lambda s: None).post("hello")
    assert str(caught.value) == (
        "webhook at 127.0.0.1 refused the message: HTTP 404 (no_service); check the webhook_url setting"
    )
    assert len(server.requests) == 1


def test_redirect_is_a_refusal_not_followed(endpoint):
    target = endpoint()
    server = endpoint((302, {"Location": target.url}, ""))
    with pytest.raises(WebhookError, match="HTTP 302"):
        Webhook(server.url, sleep=lambda s: None).post("hello")
    assert target.requests == []


def test_unreachable_endpoint_names_no_url():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}{SECRET_PATH}"
    waits = []
    with pytest.raises(WebhookError) as caught:
        Webhook(url, attempts=2, sleep=waits.append).post("hello")
    assert str(caught.value) == (
        "webhook at 127.0.0.1 not reached after 2 attempt(s): cannot connect; the next check-deadlines run tries again"
    )
    assert waits == [1.0]


def test_a_hung_endpoint_times_out():
    with socket.socket() as listener:  # accepts connections, never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}{SECRET_PATH}"
        with pytest.raises(WebhookError, match=r"after 1 attempt\(s\): no answer within 0.2s"):
            Webhook(url, attempts=1, timeout=0.2).post("hello")


def test_not_a_url_is_a_config_error_without_echo():
    with pytest.raises(ConfigError) as caught:
        Webhook("hooks.example.com/s3cr3tW3bh00kT0k3n")
    assert "s3cr3t" not in str(caught.value)
