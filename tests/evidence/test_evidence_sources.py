"""The seam for another source of evidence: where the API path reads, and each record rewritten."""

from __future__ import annotations

import struct

from rollback_pm.evidence.lines import ApiDemux, LineBuilder
from rollback_pm.evidence.sources import ApiLogs, LogReader

TS = b"2026-05-13T08:47:21.123456789Z"


def frame(stream: int, payload: bytes) -> bytes:
    return struct.pack(">BxxxL", stream, len(payload)) + payload


def upper(data: bytes) -> bytes:
    return data.upper()


def test_each_record_is_rewritten_on_a_multiplexed_stream_and_the_fast_path_does_not_skip_it() -> None:
    builder = LineBuilder("w")
    demux = ApiDemux(builder, tty=False, data=upper)
    body = frame(1, TS + b" whole line\n") + frame(2, TS + b" cut ") + frame(2, TS + b" here\n")
    demux.feed(body[:5])
    demux.feed(body[5:])
    demux.end()
    assert builder.take() == b"w stdout " + TS + b" WHOLE LINE\nw stderr " + TS + b" CUT HERE\n"


def test_each_record_is_rewritten_on_a_tty_stream() -> None:
    builder = LineBuilder("t")
    demux = ApiDemux(builder, tty=True, data=upper)
    demux.feed(TS + b" one\n" + TS + b" two")
    demux.end()
    assert builder.take() == b"t stdout " + TS + b" ONE\nt stdout " + TS + b" TWO\n"


def test_without_a_rewrite_the_records_pass_as_they_are() -> None:
    builder = LineBuilder("w")
    demux = ApiDemux(builder, tty=False)
    demux.feed(frame(1, TS + b" as is\n"))
    demux.end()
    assert builder.take() == b"w stdout " + TS + b" as is\n"


def test_a_reader_reads_containers_unless_told_otherwise(tmp_path) -> None:
    from rollback_pm.evidence.sources import Clock
    from rollback_pm.evidence.types import CollectOptions

    options = CollectOptions(evidence_dir=tmp_path)
    assert LogReader(options, Clock(5), None, tmp_path).api == ApiLogs("containers", False, None)
    tasks = ApiLogs("tasks", True, upper)
    assert LogReader(options, Clock(5), None, tmp_path, api=tasks).api is tasks
