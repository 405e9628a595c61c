"""Service events: parsing real lines from dockerd 20.10 and anything else the stream might carry.

fixtures/events.jsonl was read from `/events?filters={"type":["service"]}` on a single-node
Swarm while services were created, updated to a failing version (Swarm rolled back by
itself: rpmexp-web), and rolled back by hand (`docker service rollback`: rpmexp-manual).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from rollback_pm.swarm.events import MAX_EVENT_BYTES, LineSplitter, ServiceEvent, parse_event, parse_line

FIXTURES = Path(__file__).parent / "fixtures"


def real_events() -> list[ServiceEvent]:
    lines = (FIXTURES / "events.jsonl").read_bytes().splitlines()
    events = [parse_line(line) for line in lines]
    assert all(e is not None for e in events)
    return [e for e in events if e is not None]


def test_automatic_rollback_events_carry_the_states_and_the_bad_image() -> None:
    web = [e for e in real_events() if e.name == "rpmexp-web"]
    started = next(e for e in web if e.state == "rollback_started")
    assert started == ServiceEvent(
        service_id="pfgafqkm32jn9zvg56rghuc5t",
        name="rpmexp-web",
        action="update",
        time_ns=1796289368853880967,
        state="rollback_started",
        old_state="updating",
        image_new="rpm-swarm-exp/app:good",
        image_old="rpm-swarm-exp/app:bad",
    )
    assert started.is_rollback
    assert started.time == datetime(2026, 12, 3, 9, 16, 8, 853880, tzinfo=timezone.utc)
    completed = next(e for e in web if e.state == "rollback_completed")
    assert (completed.is_rollback, completed.old_state, completed.image_old) == (True, "rollback_started", None)
    assert [e.state for e in web if not e.is_rollback] == [None, "updating"]


def test_manual_rollback_starts_from_a_completed_update() -> None:
    manual = [e for e in real_events() if e.name == "rpmexp-manual" and e.is_rollback]
    assert [(e.state, e.old_state) for e in manual] == [
        ("rollback_started", "completed"),
        ("rollback_completed", "rollback_started"),
    ]


def test_create_and_remove_are_not_rollbacks() -> None:
    actions = {e.action for e in real_events() if not e.is_rollback}
    assert actions == {"create", "remove", "update"}


def test_what_is_not_a_service_event_is_none() -> None:
    assert parse_line(b'{"Type":"container","Action":"die","Actor":{"ID":"x"},"timeNano":5}') is None
    assert parse_line(b'{"Type":"service","Action":"update","Actor":{},"timeNano":5}') is None
    assert parse_line(b'{"Type":"service","Action":"update","Actor":{"ID":"s"},"timeNano":true}') is None
    assert parse_line(b"not json") is None
    assert parse_line(b"[1, 2]") is None
    assert parse_line(b"\xff\xfe") is None


def test_seconds_stand_in_for_a_missing_time_nano() -> None:
    event = parse_event({"Type": "service", "Action": "update", "Actor": {"ID": "s1"}, "time": 1796289368})
    assert event is not None and event.time_ns == 1796289368_000000000 and event.name == "s1"


def test_an_oversized_line_is_refused() -> None:
    line = json.dumps(
        {"Type": "service", "Action": "update", "Actor": {"ID": "s"}, "timeNano": 1, "pad": "x" * MAX_EVENT_BYTES}
    )
    assert parse_line(line.encode()) is None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_parse_event_never_raises(value: object) -> None:
    parse_event(value)
    parse_event({"Type": "service", "Action": "update", "Actor": value, "timeNano": 7})
    parse_event({"Type": "service", "Action": "update", "Actor": {"ID": "x", "Attributes": value}, "timeNano": 7})


@given(st.binary(max_size=300))
def test_parse_line_never_raises(data: bytes) -> None:
    parse_line(data)


@given(st.lists(st.binary(min_size=1, max_size=40).filter(lambda b: b"\n" not in b), max_size=8), st.data())
def test_line_splitter_gives_the_same_lines_however_the_stream_is_cut(lines: list[bytes], data: st.DataObject) -> None:
    stream = b"".join(line + b"\n" for line in lines)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    splitter = LineSplitter()
    got: list[bytes] = []
    start = 0
    for cut in [*cuts, len(stream)]:
        got += splitter.feed(stream[start:cut])
        start = cut
    assert got == [line for line in lines if line.strip()]


def test_line_splitter_drops_an_endless_line_and_recovers() -> None:
    splitter = LineSplitter()
    chunk = b"x" * (MAX_EVENT_BYTES // 2)
    assert splitter.feed(chunk) == []
    assert splitter.feed(chunk) == []
    assert splitter.feed(chunk) == []  # past the bound: held no longer
    assert len(splitter._partial) == 0
    assert splitter.feed(b'tail\n{"a": 1}\n') == [b'{"a": 1}']
