"""Task log lines with details=1: ``<ts> <attrs> <message>``, the attrs as dockerd writes them.

dockerd (api/server/httputils/write_log_stream.go) sorts the attributes by key and writes
each as ``url.QueryEscape(key)=url.QueryEscape(value)``, comma-separated, then a space.
The Swarm context (node, service and task ids) is dropped: the line's prefix names the task.
"""

from __future__ import annotations

import struct
from urllib.parse import quote_plus

from hypothesis import given
from hypothesis import strategies as st

from rollback_pm.evidence.lines import LineBuilder
from rollback_pm.swarm.evidence import strip_details, task_demux

CONTEXT = {
    "com.docker.swarm.node.id": "vjwoakv94n3u9mdrzmzzuorqv",
    "com.docker.swarm.service.id": "pfgafqkm32jn9zvg56rghuc5t",
    "com.docker.swarm.task.id": "i1g8mcha8vscvv4h6f3hrqv0t",
}
TS = b"2026-12-03T09:16:08.397187184Z"


def details(attrs: dict[str, str]) -> bytes:
    """What dockerd puts before the message."""
    return ",".join(f"{quote_plus(k)}={quote_plus(v)}" for k, v in sorted(attrs.items())).encode() + b" "


def frame(stream: int, payload: bytes) -> bytes:
    return struct.pack(">BxxxL", stream, len(payload)) + payload


def test_a_real_line_loses_the_swarm_context() -> None:
    line = (
        b"com.docker.swarm.node.id=vjwoakv94n3u9mdrzmzzuorqv,com.docker.swarm.service.id=pfgafqkm32jn9zvg56rghuc5t,"
        b"com.docker.swarm.task.id=i1g8mcha8vscvv4h6f3hrqv0t FATAL migration 42 failed\n"
    )
    assert strip_details(line) == b"FATAL migration 42 failed\n"


def test_other_attributes_stay_in_front_of_the_message() -> None:
    line = details({**CONTEXT, "env": "prod", "region": "eu west"}) + b"hello\n"
    assert strip_details(line) == b"env=prod,region=eu+west hello\n"


def test_text_without_attributes_is_left_alone() -> None:
    assert strip_details(b"plain text here\n") == b"plain text here\n"
    assert strip_details(b"a=1 but,not attrs\n") == b"a=1 but,not attrs\n"
    assert strip_details(b"no-space-at-all\n") == b"no-space-at-all\n"
    assert strip_details(b" details were empty\n") == b"details were empty\n"


@given(
    st.dictionaries(st.text(min_size=1, max_size=10), st.text(max_size=10), max_size=3),
    st.binary(max_size=60).map(lambda b: b.replace(b"\n", b"") + b"\n"),
)
def test_the_message_comes_back_whatever_the_attributes(extra: dict[str, str], message: bytes) -> None:
    attrs = {**{k: v for k, v in extra.items() if not k.startswith("com.docker.swarm.")}, **CONTEXT}
    kept = {k: v for k, v in attrs.items() if k not in CONTEXT}
    expected = (details(kept) if kept else b"") + message
    assert strip_details(details(attrs) + message) == expected


@given(st.binary(max_size=200))
def test_strip_details_never_raises(data: bytes) -> None:
    strip_details(data)


def test_task_demux_writes_bundle_lines_without_the_details() -> None:
    builder = LineBuilder("web.1.i1g8mcha8vscvv4h6f3hrqv0t@vm")
    demux = task_demux(builder, tty=False)
    body = frame(1, TS + b" " + details(CONTEXT) + b"starting bad\n") + frame(
        2, TS + b" " + details(CONTEXT) + b"FATAL migration 42 failed\n"
    )
    demux.feed(body[:13])  # a frame cut by the transport
    demux.feed(body[13:])
    demux.end()
    assert builder.take() == (
        b"web.1.i1g8mcha8vscvv4h6f3hrqv0t@vm stdout " + TS + b" starting bad\n"
        b"web.1.i1g8mcha8vscvv4h6f3hrqv0t@vm stderr " + TS + b" FATAL migration 42 failed\n"
    )


def test_task_demux_on_a_tty_service() -> None:
    builder = LineBuilder("web.1.t@vm")
    demux = task_demux(builder, tty=True)
    demux.feed(TS + b" " + details(CONTEXT) + b"one\n" + TS + b" " + details(CONTEXT) + b"two\n")
    demux.end()
    assert builder.take() == b"web.1.t@vm stdout " + TS + b" one\nweb.1.t@vm stdout " + TS + b" two\n"
