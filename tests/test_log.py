"""Our own logs: exceptions keep their traceback, never a secret."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest

from rollback_pm import log

SECRET = "tb-secret-9f2Qx7-registered"
UNREGISTERED = "tb-local-4kZp1-never-registered"


class TrackerDown(Exception):
    pass


def _read_token(token: str) -> None:
    unrelated = UNREGISTERED  # a local of the failing frame: must not be dumped
    raise KeyError(f"no scope for {token} ({len(unrelated)})")


def _open_ticket(token: str) -> None:
    try:
        _read_token(token)
    except KeyError as exc:
        raise TrackerDown(f"tracker refused token {token}") from exc


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    out = io.StringIO()
    log.register_secret(SECRET)
    yield out
    log.configure()


def log_failure(out: io.StringIO, log_format: str) -> str:
    log.configure(log_format, "debug", stream=out)
    try:
        _open_ticket(SECRET)
    except TrackerDown:
        log.get_logger("test").error("ticket failed", exc_info=True)
    return out.getvalue()


def test_json_logs_carry_the_traceback_as_structured_stacks(stream):
    line = log_failure(stream, "json")

    event = json.loads(line)
    assert "exc_info" not in event
    assert (event["event"], event["level"]) == ("ticket failed", "error")
    raised, cause = event["exception"]  # the raised exception first, then its cause
    assert (raised["exc_type"], raised["exc_value"], raised["is_cause"]) == (
        "TrackerDown",
        "tracker refused token ***",
        False,
    )
    assert (cause["exc_type"], cause["exc_value"], cause["is_cause"]) == ("KeyError", "'no scope for *** (31)'", True)
    assert [(f["name"], f["filename"]) for f in raised["frames"]] == [
        ("log_failure", __file__),
        ("_open_ticket", __file__),
    ]
    assert [f["name"] for f in cause["frames"]] == ["_open_ticket", "_read_token"]
    assert all(isinstance(f["lineno"], int) and "locals" not in f for s in (raised, cause) for f in s["frames"])
    assert SECRET not in line
    assert UNREGISTERED not in line


def test_console_logs_show_the_traceback_masked(stream):
    text = log_failure(stream, "console")

    assert "ticket failed" in text
    assert "Traceback (most recent call last)" in text
    assert "in _read_token" in text and "in _open_ticket" in text
    assert "TrackerDown: tracker refused token ***" in text
    assert SECRET not in text
