"""Woodpecker answers are outside input: bounded in size, checked field by field, and a wrong
one is a WoodpeckerError naming what was wrong (the hook then degrades), never an internal error."""

from __future__ import annotations

import base64
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from rollback_pm.errors import WoodpeckerError
from rollback_pm.facts import woodpecker as wp
from rollback_pm.facts.woodpecker import WoodpeckerClient, deploy_finished, log_lines, pipeline_steps, smoke_step

T = 1778662000  # 2026-05-13T08:46:40Z
PIPELINE = "/repos/{repo_id}/pipelines/{pipeline_number}"
LOGS = "/repos/{repo_id}/logs/{pipeline_number}/{step_id}"
HINT = "check that ROLLBACK_PM_WOODPECKER_URL / --woodpecker-url (default CI_SYSTEM_URL) is the Woodpecker server"


@pytest.fixture
def shop(woodpecker):
    repo_id = woodpecker.add_repo("acme/shop")
    woodpecker.add_pipeline(
        repo_id,
        42,
        [{"name": "deploy", "steps": [{"name": "smoke-api", "state": "failure", "started": T, "finished": T + 9}]}],
    )
    return repo_id


def client_for(fake) -> WoodpeckerClient:
    return WoodpeckerClient(fake.url, fake.token, timeout=2.0)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"workflows": "all of them"}, "woodpecker's pipeline 42: workflows is a JSON string, not an array"),
        ([1, 2], "woodpecker's pipeline 42 is a JSON array, not an object"),
        (
            {"workflows": [{"children": [7]}]},
            "woodpecker's pipeline 42: workflow 1: step 1 is a JSON number, not an object",
        ),
        (
            {"workflows": [{"children": [{"name": "smoke", "state": "failure", "finished": 10**30}]}]},
            "woodpecker's step 'smoke': finished is 1000000000000000000000000000000, not a whole number from 0 to "
            "9007199254740992",
        ),
        (
            {"workflows": [{"children": [{"name": "smoke", "state": "failure", "finished": 99999999999}]}]},
            "woodpecker's step 'smoke': finished is 99999999999, not a unix time between 2000-01-01 and now + 1 day",
        ),
        (
            {"workflows": [{"children": [{"name": ["smoke"], "state": "failure"}]}]},
            "woodpecker's step name is a JSON array, not a string",
        ),
        (
            {"workflows": [{"children": [{"name": "smoke", "state": "failure", "started": 1.5e400}]}]},
            "woodpecker's step 'smoke': started is Infinity, not a whole number from 0 to 9007199254740992",
        ),
    ],
)
def test_a_wrong_pipeline_answer_names_what_was_wrong(woodpecker, shop, body, message):
    woodpecker.server.inject("GET", PIPELINE, status=200, body=body)
    with pytest.raises(WoodpeckerError) as caught:
        client_for(woodpecker).smoke_steps("acme/shop", 42)
    assert str(caught.value).startswith(message)
    assert str(caught.value).endswith(HINT)


def test_a_lookup_answer_that_is_not_an_object(woodpecker, shop):
    woodpecker.server.inject("GET", "/repos/lookup/{repo_full_name}", status=200, body=["acme/shop"])
    with pytest.raises(WoodpeckerError, match="record of acme/shop is a JSON array, not an object"):
        client_for(woodpecker).smoke_steps("acme/shop", 42)


def test_an_html_answer_is_not_json(woodpecker, shop):
    woodpecker.server.inject("GET", PIPELINE, status=200, body="<html>login</html>")
    with pytest.raises(WoodpeckerError, match="answer for pipeline 42 is text/plain, not JSON"):
        client_for(woodpecker).smoke_steps("acme/shop", 42)


def test_a_log_larger_than_the_bound_leaves_the_step_without_excerpt(woodpecker, shop, logs):
    woodpecker.server.inject("GET", LOGS, status=200, body=b"[" + b" " * (9 * 1024 * 1024) + b"]")
    (step,) = client_for(woodpecker).smoke_steps("acme/shop", 42)[0]
    assert (step.status, step.log_excerpt) == ("failed", "")
    assert "larger than 8 MiB" in logs.getvalue()


class _Chunked(BaseHTTPRequestHandler):
    """An answer with no Content-Length, streamed until the client stops reading."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        chunk = b" " * 65536
        try:
            for _ in range(20):  # 1.25 MiB, more than the bound set below
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args: object) -> None:
        pass


def test_an_unannounced_large_answer_is_read_only_up_to_the_bound(monkeypatch):
    monkeypatch.setattr(wp, "MAX_ANSWER_BYTES", 1024 * 1024)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Chunked)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = WoodpeckerClient(f"http://127.0.0.1:{server.server_address[1]}", "token-value", timeout=5.0)
        with pytest.raises(WoodpeckerError, match="answer for pipeline 3 is larger than 1 MiB"):
            client.pipeline(1, 3)
    finally:
        server.shutdown()
        server.server_close()


# -- the parse functions on their own


def test_log_lines_reads_base64_and_byte_arrays_in_line_order():
    entries = [
        {"id": 2, "line": 1, "type": 0, "data": base64.b64encode(b"second\n").decode()},
        {"id": 1, "line": 0, "type": 1, "data": list(b"first")},
        {"id": 3, "line": 2, "type": 3, "data": "bWV0YQ=="},  # metadata: not output
        {"id": 4, "line": 3, "type": 0, "data": "not base64 at all!"},
    ]
    assert log_lines(entries) == ["first", "second", "not base64 at all!"]
    assert log_lines(entries, last_lines=1) == ["not base64 at all!"]
    assert log_lines(None) == []


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ({"data": "x"}, "step log is a JSON object, not an array"),
        ([{"type": "stdout"}], 'step log entry 1: type is "stdout", not a whole number'),
        ([{"data": {"b": 1}}], "step log has an entry whose data is a JSON object, neither base64 text nor bytes"),
        ([{"data": [256]}], "step log has an entry whose data is a JSON array, neither base64 text nor bytes"),
        ([{"line": -1}], "step log entry 1: line is -1, not a whole number"),
    ],
)
def test_log_lines_refuses_entries_of_the_wrong_shape(entries, message):
    with pytest.raises(WoodpeckerError, match=f"^woodpecker's {message}"):
        log_lines(entries)


def test_steps_messages_and_deploy_time():
    pipeline = {
        "workflows": [
            {
                "children": [
                    {"name": "deploy-prod", "state": "success", "finished": T},
                    {"name": "rollback-deploy", "state": "success", "finished": T + 99},
                    {"name": "smoke", "state": "killed", "exit_code": True, "error": "x" * 5000},
                    {"name": "smoke-2", "state": "failure", "exit_code": 22},
                ]
            },
            {"children": None},
        ]
    }
    steps = pipeline_steps(pipeline, 7)
    assert deploy_finished(steps) == wp.datetime.fromtimestamp(T, wp.timezone.utc)
    killed, failed = smoke_step(steps[2]), smoke_step(steps[3])
    assert (killed.status, len(killed.message)) == ("failed", wp.MAX_MESSAGE)
    assert failed.message == "exit code 22"
    with pytest.raises(WoodpeckerError, match="more than 1000 steps"):
        pipeline_steps({"workflows": [{"children": [{}] * 600}, {"children": [{}] * 600}]}, 7)
