"""The pieces without an engine: line format, stream demux, spool ring, budgets, atomic files."""

from __future__ import annotations

import os
import stat
import struct

import pytest

from rollback_pm.errors import EvidenceDirError
from rollback_pm.evidence import lines as lines_mod
from rollback_pm.evidence.evdir import EvidenceDir, temp_name
from rollback_pm.evidence.lines import ApiDemux, LineBuilder, normalize_ts
from rollback_pm.evidence.merge import Source, allowances, write_log
from rollback_pm.evidence.spool import Spool

T1 = b"2026-05-13T08:47:21.000000001Z"
T2 = b"2026-05-13T08:47:21.000000002Z"
T3 = b"2026-05-13T08:47:22.500000000Z"


def frame(stream: int, payload: bytes) -> bytes:
    return struct.pack(">BxxxL", stream, len(payload)) + payload


def test_builder_joins_partials_per_stream_and_closes_open_lines():
    b = LineBuilder("web")
    b.add("stdout", T1, b"hello ")  # a partial record: no newline
    b.add("stdout", T2, b"world\n")  # continues the same line; its timestamp is dropped
    b.add("stdout", T2, b"half")
    b.add("stderr", T3, b"err\n")  # another stream's line does not cut the open stdout line
    b.add("stdout", T3, b" and more")
    b.add("stderr", T3, b"no end")
    b.finish()  # the log ended: open lines are closed
    assert b.take().decode().splitlines() == [
        f"web stdout {T1.decode()} hello world",
        f"web stderr {T3.decode()} err",
        f"web stdout {T2.decode()} half and more",
        f"web stderr {T3.decode()} no end",
    ]


def test_builder_splits_lines_longer_than_line_max(monkeypatch):
    monkeypatch.setattr(lines_mod, "LINE_MAX", 10)
    b = LineBuilder("w")
    for _ in range(3):
        b.add("stdout", T1, b"abcdefgh")
    b.add("stdout", T2, b"!\n")
    assert b.take() == (
        b"w stdout " + T1 + b" abcdefghab\nw stdout " + T1 + b" cdefghabcd\nw stdout " + T1 + b" efgh!\n"
    )


def test_take_hands_out_whole_lines_only():
    b = LineBuilder("w")
    b.add("stdout", T1, b"open")
    assert b.take() == b"" and b.pending  # nothing complete yet
    b.add("stdout", T2, b" line\n")
    assert b.take() == b"w stdout " + T1 + b" open line\n"


def test_demux_is_independent_of_how_the_stream_is_cut():
    body = (
        frame(1, T1 + b" first\n")
        + frame(2, T2 + b" " + b"x" * 16384)
        + frame(2, T2 + b" end\n")
        + frame(1, T3 + b" last no newline")
    )
    whole = LineBuilder("c")
    d = ApiDemux(whole, tty=False)
    d.feed(body)
    d.end()
    expected = whole.take()
    assert expected == (
        b"c stdout "
        + T1
        + b" first\n"
        + b"c stderr "
        + T2
        + b" "
        + b"x" * 16384
        + b"end\n"
        + b"c stdout "
        + T3
        + b" last no newline\n"
    )
    for size in (1, 7, 8, 9, 4096):
        cut = LineBuilder("c")
        d = ApiDemux(cut, tty=False)
        got = b""
        for i in range(0, len(body), size):
            d.feed(body[i : i + size])
            got += cut.take()
        d.end()
        assert got + cut.take() == expected, size


def test_demux_raises_the_engines_in_band_error():
    d = ApiDemux(LineBuilder("c"), tty=False)
    with pytest.raises(lines_mod.StreamError, match="boom"):
        d.feed(frame(3, b"boom\n"))


def test_tty_stream_splits_records_at_docker_partial_size():
    body = T1 + b" one\r\n" + T2 + b" " + b"c" * 16384 + T2 + b" " + b"c" * 10 + b"\r\n" + T3 + b" end"
    for size in (len(body), 1000, 3):
        b = LineBuilder("t")
        d = ApiDemux(b, tty=True)
        for i in range(0, len(body), size):
            d.feed(body[i : i + size])
        d.end()
        assert b.take() == (
            b"t stdout "
            + T1
            + b" one\r\n"
            + b"t stdout "
            + T2
            + b" "
            + b"c" * 16394
            + b"\r\n"
            + b"t stdout "
            + T3
            + b" end\n"
        ), size


def test_normalize_ts():
    assert normalize_ts("2026-05-13T08:47:21.1234Z") == "2026-05-13T08:47:21.123400000Z"
    assert normalize_ts("2026-05-13T08:47:21Z") == "2026-05-13T08:47:21.000000000Z"
    assert normalize_ts("2026-05-13T10:47:21.5+02:00") == "2026-05-13T08:47:21.500000000Z"


def test_allowances_share_the_total_by_water_filling():
    assert allowances([100, 50], per_container=80, total=None) == [80, 50]
    assert allowances([1000, 10, 300], per_container=10_000, total=400) == [195, 10, 195]
    assert allowances([5, 5], per_container=100, total=100) == [5, 5]
    assert sum(allowances([7, 9, 11], per_container=100, total=20)) <= 20


@pytest.fixture()
def evdir(tmp_path):
    d = EvidenceDir.open(tmp_path / "ev", min_free_mb=0)
    yield d
    d.close()


def _lines(n: int, width: int = 40) -> bytes:
    return b"".join(f"c stdout {T1.decode()} {i:0{width}d}\n".encode() for i in range(n))


def test_spool_ring_keeps_the_newest_lines_with_bounded_disk(evdir, monkeypatch):
    monkeypatch.setattr("rollback_pm.evidence.spool.MIB", 4096)  # tiny segments
    spool = Spool(evdir, "b", "c0", cap=20_000)
    data = _lines(2000)
    for i in range(0, len(data), 3000):  # batches that end mid-line now and then
        spool.write(data[i : i + 3000])
        spool.drain()  # wait for the writer thread, to look at the disk
        assert spool.kept <= 20_000 + 2 * (spool.segment_size + 3000)  # cap + about one segment
    assert spool.original == len(data) and spool.dropped
    ranges = spool.plan(20_000)
    kept = b"".join(os.pread(s.fd, end - start, start) for s, start, end in ranges)
    assert len(kept) <= 20_000 and data.endswith(kept) and kept.startswith(b"c stdout ")
    assert len(kept) > 20_000 - 100  # all but the one cut line
    spool.close()
    assert [n for n in os.listdir(evdir.fd) if n.endswith(".spool.tmp")] == []


def test_spool_zero_cap_keeps_nothing_but_counts(evdir):
    spool = Spool(evdir, "b", "c0", cap=0)
    spool.write(_lines(10))
    assert spool.kept == 0 and spool.original == len(_lines(10)) and spool.plan(0) == []
    spool.close()


def test_frozen_spool_refuses_writes(evdir):
    from rollback_pm.evidence.spool import SpoolFrozen

    spool = Spool(evdir, "b", "c0", cap=1000)
    spool.write(b"x\n")
    spool.freeze()
    with pytest.raises(SpoolFrozen):
        spool.write(b"y\n")
    spool.drain()
    assert spool.kept == 2
    spool.close()


def test_merge_interleaves_by_timestamp_and_single_source_is_published_as_is(evdir):
    a, b = Spool(evdir, "m", "a", cap=1 << 20), Spool(evdir, "m", "b", cap=1 << 20)
    a.write(b"a stdout " + T1 + b" one\n" + b"a stdout " + T3 + b" three\n")
    b.write(b"bb stderr " + T2 + b" two\n")
    sources = [Source(a, key_offset=len("a stdout ")), Source(b, key_offset=len("bb stderr "))]
    for s in sources:
        s.ranges = s.spool.plan(1 << 20)
    sha, size = write_log(evdir, "m", "merged.log", sources)
    text = (evdir.path / "merged.log").read_bytes()
    assert text.splitlines() == [
        b"a stdout " + T1 + b" one",
        b"bb stderr " + T2 + b" two",
        b"a stdout " + T3 + b" three",
    ]
    assert size == len(text) and [s.written for s in sources] == [a.kept, b.kept] == [44 + 46, 45]
    single = Spool(evdir, "n", "a", cap=1 << 20)
    single.write(b"a stdout " + T1 + b" only\n")
    single.drain()
    name = single.segments[0].name
    source = Source(single, key_offset=9)
    source.ranges = single.plan(1 << 20)
    write_log(evdir, "n", "single.log", [source])
    assert not evdir.exists(name) and (evdir.path / "single.log").read_bytes() == b"a stdout " + T1 + b" only\n"
    for s in (a, b, single):
        s.close()


def test_evidence_dir_is_created_0750_and_files_0640(tmp_path):
    os.umask(0o077)
    try:
        d = EvidenceDir.open(tmp_path / "new" / "ev", min_free_mb=0)
    finally:
        os.umask(0o022)
    path, sha, size = d.write_atomic("f.json", b"{}\n", temp_name("x", "f"))
    assert stat.S_IMODE(os.stat(tmp_path / "new" / "ev").st_mode) == 0o750
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640 and size == 3
    with pytest.raises(EvidenceDirError, match="appeared while we wrote it"):
        d.write_atomic("f.json", b"other\n", temp_name("x", "g"))
    assert path.read_bytes() == b"{}\n" and sorted(os.listdir(d.path)) == ["f.json"]
    d.close()


def test_evidence_dir_refusals(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    with pytest.raises(EvidenceDirError, match=r"link is a symlink .*refusing to follow it"):
        EvidenceDir.open(tmp_path / "link", 0)
    (tmp_path / "file").write_text("")
    with pytest.raises(EvidenceDirError, match="exists but is not a directory"):
        EvidenceDir.open(tmp_path / "file", 0)
    with pytest.raises(EvidenceDirError, match=r"MiB free, below the 1000000000 MiB floor.*--min-free-mb"):
        EvidenceDir.open(real, 10**9)
    d = EvidenceDir.open(real, 0)
    os.symlink("/etc/passwd", real / "rollback-x.log")
    with pytest.raises(EvidenceDirError):
        d.create("rollback-x.log")  # O_EXCL|O_NOFOLLOW: a planted symlink is never written through
    d.close()


def test_bundle_ids_and_stale_temps(tmp_path):
    d = EvidenceDir.open(tmp_path, 0)
    first = d.reserve("20260513T084721Z", (".log",))
    second = d.reserve("20260513T084721Z", (".log",))
    (tmp_path / "rollback-20260513T084721Z-2.log").write_text("taken")
    third = d.reserve("20260513T084721Z", (".log",))
    assert (first, second, third) == ("20260513T084721Z", "20260513T084721Z-1", "20260513T084721Z-3")
    # A collector that died (its pid is gone) left a lock and temps: the next run removes them.
    import socket
    import subprocess

    dead = subprocess.run(["true"]).args and subprocess.Popen(["true"])
    dead.wait()
    (tmp_path / ".rollback-OLD.lock").write_text(f"{dead.pid} {socket.gethostname()}\n")
    (tmp_path / ".rollback-OLD.c0.0.spool.tmp").write_text("x")
    (tmp_path / ".rollback-OTHERHOST.lock").write_text(f"{dead.pid} some-other-host\n")
    d.reserve("20260513T090000Z", (".log",))
    left = sorted(n for n in os.listdir(tmp_path) if "OLD" in n or "OTHER" in n)
    assert left == [".rollback-OTHERHOST.lock"]
    d.close()


def test_windowed_merge_equals_a_stable_sort_by_timestamp(evdir, monkeypatch):
    import random

    monkeypatch.setattr("rollback_pm.evidence.spool.MIB", 2048)  # many small segments
    monkeypatch.setattr("rollback_pm.evidence.merge.BLOCK", 1500)  # many small windows
    rng = random.Random(7)
    sources, expected = [], []
    for name in ("a", "bb", "ccc"):
        spool = Spool(evdir, "w", name, cap=1 << 30)
        stamps = sorted(rng.randrange(0, 50) for _ in range(400))  # many equal timestamps across sources
        data = b"".join(
            f"{name} stdout 2026-05-13T08:47:{s:02d}.000000000Z {name}-{i}\n".encode() for i, s in enumerate(stamps)
        )
        expected.extend(data.splitlines(keepends=True))
        for i in range(0, len(data), 977):  # batches (and so segments) cut mid-line
            spool.write(data[i : i + 977])
        source = Source(spool, key_offset=len(f"{name} stdout "))
        source.ranges = spool.plan(1 << 30)
        sources.append(source)
    expected.sort(key=lambda line: line.split(b" ")[2])  # stable: ties keep source, then line order
    write_log(evdir, "w", "w.log", sources)
    assert (evdir.path / "w.log").read_bytes() == b"".join(expected)
    assert [s.written for s in sources] == [s.spool.kept for s in sources]
    for s in sources:
        s.spool.close()


def test_json_file_set_oldest_first_and_a_corrupt_rotated_file_is_skipped(tmp_path):
    import gzip

    from rollback_pm.evidence.files import ReadStats, open_log_files, read_json_file

    base = tmp_path / "abc-json.log"

    def rec(text: str, n: int) -> bytes:
        return b'{"log":"%s\\n","stream":"stdout","time":"2026-05-13T08:47:%02d.5Z"}\n' % (text.encode(), n)

    (tmp_path / "abc-json.log.3.gz").write_bytes(gzip.compress(rec("oldest", 1)))
    (tmp_path / "abc-json.log.2.gz").write_bytes(gzip.compress(rec("lost", 2))[:-12])  # truncated gzip
    (tmp_path / "abc-json.log.1").write_bytes(
        rec("older", 3) + b'{"log":"tab\\there \\u003cb\\u003e\\n","stream":"stderr","time":"2026-05-13T08:47:04Z"}\n'
    )
    (tmp_path / "abc-json.log.1.gz").write_bytes(b"being compressed: the plain .1 wins")
    base.write_bytes(rec("newest", 5) + b'{"log":"half-writ')  # the daemon is mid-write
    files = open_log_files({"HostConfig": {"LogConfig": {"Type": "json-file"}}, "LogPath": str(base)})
    assert [os.path.basename(p) for p in files.paths] == [
        "abc-json.log.3.gz",
        "abc-json.log.2.gz",
        "abc-json.log.1",
        "abc-json.log",
    ]
    builder, stats, out = LineBuilder("c"), ReadStats(), []
    read_json_file(files, builder, None, out.append, lambda: None, stats)
    files.close()
    assert b"".join(out).decode().splitlines() == [
        "c stdout 2026-05-13T08:47:01.500000000Z oldest",
        "c stdout 2026-05-13T08:47:03.500000000Z older",
        "c stderr 2026-05-13T08:47:04.000000000Z tab\there <b>",
        "c stdout 2026-05-13T08:47:05.500000000Z newest",
    ]
    assert stats.bad_files == [str(tmp_path / "abc-json.log.2.gz")] and stats.bad_lines == 0


def test_json_file_batches_are_sliced_or_parsed_to_the_same_lines(tmp_path):
    """Whole-batch slicing (plain records) and record-by-record parsing agree on every shape."""
    from rollback_pm.evidence.files import ReadStats, open_log_files, read_json_file

    records = [
        b'{"log":"plain\\n","stream":"stdout","time":"2026-05-13T08:47:01.123456789Z"}\n',
        b'{"log":"trimmed fraction\\n","stream":"stderr","time":"2026-05-13T08:47:02.1234Z"}\n',
        b'{"log":"no fraction\\n","stream":"stdout","time":"2026-05-13T08:47:03Z"}\n',
        b'{"log":"quote \\"q\\" and \\\\ backslash\\n","stream":"stdout","time":"2026-05-13T08:47:04.000000001Z"}\n',
        b'{"log":"with attrs\\n","stream":"stdout","attrs":{"tag":"x"},"time":"2026-05-13T08:47:05.5Z"}\n',
        b'{"log":"ends in backslash-n \\\\n\\n","stream":"stdout","time":"2026-05-13T08:47:05.6Z"}\n',
        b'{"log":"partial ","stream":"stdout","time":"2026-05-13T08:47:06.000000000Z"}\n',
        b'{"log":"joined\\n","stream":"stdout","time":"2026-05-13T08:47:07.000000000Z"}\n',
        b'{"log":"offset time\\n","stream":"stdout","time":"2026-05-13T10:47:08.25+02:00"}\n',
        b"\x00\x00\x00" + b'{"log":"after NULs\\n","stream":"stdout","time":"2026-05-13T08:47:09.000000000Z"}\n',
        b'{"log":"last\\n","stream":"stderr","time":"2026-05-13T08:47:10.000000000Z"}\n',
    ]
    expected = [
        "c stdout 2026-05-13T08:47:01.123456789Z plain",
        "c stderr 2026-05-13T08:47:02.123400000Z trimmed fraction",
        "c stdout 2026-05-13T08:47:03.000000000Z no fraction",
        'c stdout 2026-05-13T08:47:04.000000001Z quote "q" and \\ backslash',
        "c stdout 2026-05-13T08:47:05.500000000Z with attrs",
        "c stdout 2026-05-13T08:47:05.600000000Z ends in backslash-n \\n",
        "c stdout 2026-05-13T08:47:06.000000000Z partial joined",
        "c stdout 2026-05-13T08:47:08.250000000Z offset time",
        "c stderr 2026-05-13T08:47:10.000000000Z last",
    ]
    base = tmp_path / "abc-json.log"
    base.write_bytes(b"".join(records))
    outputs = {}
    for batch in (1, 1 << 20):  # one record per batch, or all in one
        files = open_log_files({"HostConfig": {"LogConfig": {"Type": "json-file"}}, "LogPath": str(base)})
        builder, stats, out = LineBuilder("c"), ReadStats(), []
        read_json_file(files, builder, None, out.append, lambda: None, stats, batch)
        files.close()
        outputs[batch] = b"".join(out).decode()
        assert stats.bad_lines == 1  # the NUL-prefixed record is not JSON
    assert outputs[1] == outputs[1 << 20]
    assert outputs[1].splitlines() == expected

    plain = [b'{"log":"line %d\\n","stream":"stdout","time":"2026-05-13T08:47:%02d.1Z"}\n' % (i, i) for i in range(50)]
    base.write_bytes(b"".join(plain))
    files = open_log_files({"HostConfig": {"LogConfig": {"Type": "json-file"}}, "LogPath": str(base)})
    builder, out = LineBuilder("c"), []
    read_json_file(files, builder, "2026-05-13T08:47:45.000000000Z", out.append, lambda: None, ReadStats())
    files.close()
    assert b"".join(out).decode().splitlines() == [
        f"c stdout 2026-05-13T08:47:{i:02d}.100000000Z line {i}" for i in range(45, 50)
    ]
    assert builder.last_ts == b"2026-05-13T08:47:49.100000000Z"


def _one_answer_server(path: str, answer: bytes, hold: float = 0.0):
    """A unix socket that answers one request with ``answer`` (sent in pieces), then closes."""
    import socket
    import threading
    import time

    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    seen: list[bytes] = []

    def serve() -> None:
        conn, _ = server.accept()
        request = b""
        while b"\r\n\r\n" not in request:
            request += conn.recv(4096)
        seen.append(request)
        for start in range(0, len(answer), 1000):
            conn.sendall(answer[start : start + 1000])
        time.sleep(hold)
        conn.close()
        server.close()

    threading.Thread(target=serve, daemon=True).start()
    return seen


def test_socket_logs_body_reads_the_plain_body_to_the_end(tmp_path):
    from rollback_pm.evidence.client import SocketLogsBody

    frame = b"\x01\x00\x00\x00\x00\x00\x00\x2a2026-05-13T08:47:01.000000000Z hello world\n"
    seen = _one_answer_server(
        str(tmp_path / "d.sock"),
        b"HTTP/1.0 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\n" + frame * 300,
    )
    body = SocketLogsBody(str(tmp_path / "d.sock"), "1.41", "abc/../x", since=None, timeout=5, read_size=4096)
    blocks = []
    while block := body.read(timeout=5):
        blocks.append(block)
    body.close()
    assert b"".join(blocks) == frame * 300 and max(map(len, blocks)) <= 4096
    assert seen[0].startswith(
        b"GET /v1.41/containers/abc%2F..%2Fx/logs?stdout=1&stderr=1&timestamps=1&follow=0&tail=all HTTP/1.0\r\n"
    )


def test_socket_logs_body_errors(tmp_path):
    from rollback_pm.evidence.client import ContainerGone, EngineError, SocketLogsBody

    def answer(name: str, text: bytes, hold: float = 0.0):
        path = str(tmp_path / name)
        _one_answer_server(path, text, hold)
        return path

    gone = answer(
        "a.sock",
        b'HTTP/1.0 404 Not Found\r\nContent-Type: application/json\r\n\r\n{"message":"No such container: x"}\n',
    )
    with pytest.raises(ContainerGone):
        SocketLogsBody(gone, "1.41", "x", since=None, timeout=5)
    broken = answer(
        "b.sock",
        b'HTTP/1.0 500 Internal Server Error\r\n\r\n{"message":"open /var/lib/docker/x.log: too many open files"}',
    )
    with pytest.raises(
        EngineError, match="engine refused the logs: 500 open /var/lib/docker/x.log: too many open files"
    ):
        SocketLogsBody(broken, "1.41", "x", since=None, timeout=5)
    garbage = answer("c.sock", b"SSH-2.0-OpenSSH_9.2\r\n\r\n")
    with pytest.raises(EngineError, match="malformed status line"):
        SocketLogsBody(garbage, "1.41", "x", since=None, timeout=5)
    stalled = answer("d.sock", b"HTTP/1.0 200 OK\r\n\r\n" + b"x" * 10, hold=5)
    body = SocketLogsBody(stalled, "1.41", "x", since=None, timeout=5)
    assert body.read(timeout=0.3) == b"x" * 10  # what came is handed over ...
    with pytest.raises(EngineError, match="read timed out"):
        body.read(timeout=0.3)  # ... then silence past the deadline is an error, not a hang
    body.close()


def test_an_engine_that_chunks_an_http10_answer_is_read_through_the_sdk_path(tmp_path, monkeypatch):
    """Docker answers HTTP/1.0 with a plain body; an engine that chunks anyway still works."""
    from rollback_pm.evidence import client as engine

    frame = b"\x01\x00\x00\x00\x00\x00\x00\x2a2026-05-13T08:47:01.000000000Z hello world\n"
    _one_answer_server(
        str(tmp_path / "d.sock"),
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"%x\r\n" % len(frame) + frame + b"\r\n0\r\n\r\n",
    )
    opened = []

    class FakeSdkBody:
        def __init__(self, client, ident, **kwargs):
            opened.append((ident, kwargs["timeout"] > 0))

    monkeypatch.setattr(engine, "LogsBody", FakeSdkBody)
    monkeypatch.setattr(engine, "_unix_socket", lambda client: str(tmp_path / "d.sock"))
    client = type("Client", (), {"api_version": "1.41"})()
    body = engine.open_logs(client, "abc", since=None, timeout=5)
    assert isinstance(body, FakeSdkBody) and opened == [("abc", True)]


def _disk_full(fd: int, data: bytes) -> None:
    import errno

    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_while_spooling_is_reported_and_leaves_no_temp(evdir, monkeypatch):
    from rollback_pm.evidence.spool import SpoolWriteError

    monkeypatch.setattr("rollback_pm.evidence.spool.write_all", _disk_full)
    spool = Spool(evdir, "b", "c0", cap=1 << 20)
    spool.write(_lines(10))
    with pytest.raises(SpoolWriteError, match="No space left on device"):
        spool.drain()
    with pytest.raises(SpoolWriteError, match="No space left on device"):
        spool.write(_lines(10))  # once failed, it stays failed
    spool.close()
    assert [n for n in os.listdir(evdir.fd) if n.endswith(".spool.tmp")] == []


def test_a_full_disk_while_merging_is_an_evidence_dir_error_and_leaves_no_temp(evdir, monkeypatch):
    a, b = Spool(evdir, "m", "a", cap=1 << 20), Spool(evdir, "m", "b", cap=1 << 20)
    a.write(b"a stdout " + T1 + b" one\n")
    b.write(b"bb stderr " + T2 + b" two\n")
    sources = [Source(a, key_offset=len("a stdout ")), Source(b, key_offset=len("bb stderr "))]
    for s in sources:
        s.ranges = s.spool.plan(1 << 20)
    monkeypatch.setattr("rollback_pm.evidence.merge.write_all", _disk_full)
    with pytest.raises(
        EvidenceDirError, match=r"cannot write .*merged\.log: No space left on device\. Check free space there\."
    ):
        write_log(evdir, "m", "merged.log", sources)
    assert not evdir.exists("merged.log") and not evdir.exists(temp_name("m", "log"))
    for s in (a, b):
        s.close()
