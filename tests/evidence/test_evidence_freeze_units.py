"""The freeze's pieces without an engine: byte ranges, kernel copies, the private spool, merge order."""

from __future__ import annotations

import gzip
import os
import random
import stat
import threading
import time
from pathlib import Path

import pytest

from rollback_pm.evidence import kcopy
from rollback_pm.evidence.evdir import EvidenceDir, temp_name
from rollback_pm.evidence.files import LogFiles
from rollback_pm.evidence.merge import Source, merge_lines, write_log
from rollback_pm.evidence.mergechild import StreamingMerge
from rollback_pm.evidence.ranges import json_record_start, local_record_start, measure, plan, raw_needed
from rollback_pm.evidence.spool import Spool
from rollback_pm.evidence.spooldir import FINALIZING, MAX_AGE, ORPHAN_AFTER, SpoolDirError, SpoolRoot


def ts(i: int) -> str:
    return f"2026-05-13T08:{i // 60 % 60:02d}:{i % 60:02d}.{i:09d}Z"


def record(text: str, i: int, stream: str = "stdout") -> bytes:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'{{"log":"{escaped}","stream":"{stream}","time":"{ts(i)}"}}\n'.encode()


def write(path: Path, data: bytes) -> int:
    path.write_bytes(data)
    return os.open(path, os.O_RDONLY)


# --- which bytes a freeze keeps ---------------------------------------------------------


def test_json_cut_lands_on_a_record_that_starts_a_line(tmp_path):
    records = [record(f"line {i}\n", i) for i in range(50)]
    records[20:23] = [record("part one ", 20), record("part two ", 21), record("end\n", 22)]  # a split line
    records[30] = record("a literal backslash-n \\n", 30)  # not a newline: the line goes on
    data = b"".join(records)
    fd = write(tmp_path / "c-json.log", data)
    starts = [sum(map(len, records[:i])) for i in range(len(records) + 1)]
    try:
        assert json_record_start(fd, 0, len(data)) == 0
        assert json_record_start(fd, starts[10], len(data)) == starts[10]  # already a line's first record
        assert json_record_start(fd, starts[10] + 5, len(data)) == starts[11]
        assert json_record_start(fd, starts[20] + 1, len(data)) == starts[23]  # not into the split line
        assert json_record_start(fd, starts[30] + 1, len(data)) == starts[32]  # after the line record 30 opens
        assert json_record_start(fd, starts[49] + 1, len(data)) == 0  # no boundary after: keep the file
    finally:
        os.close(fd)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def local_record(line: bytes, nanos: int, partial: bool = False, last: bool = False) -> bytes:
    body = b"\x0a\x06stdout" + b"\x10" + _varint(nanos) + b"\x1a" + _varint(len(line)) + line
    if partial:
        body += b"\x20\x01"
        meta = b"\x08\x01" if last else b""
        body += b"\x2a" + _varint(len(meta)) + meta
    size = len(body).to_bytes(4, "big")
    return size + body + size


def test_local_cut_found_by_the_framing_and_a_line_start(tmp_path):
    base = 1_778_662_041_000_000_000
    records = [local_record(f"line {i}".encode(), base + i) for i in range(40)]
    records[10:13] = [
        local_record(b"first piece ", base + 10, partial=True),
        local_record(b"second piece ", base + 11, partial=True),
        local_record(b"last piece", base + 12, partial=True, last=True),
    ]
    data = b"".join(records)
    fd = write(tmp_path / "container.log", data)
    starts = [sum(map(len, records[:i])) for i in range(len(records) + 1)]
    try:
        assert local_record_start(fd, starts[5], len(data)) == starts[5]
        assert local_record_start(fd, starts[5] + 3, len(data)) == starts[6]
        assert local_record_start(fd, starts[10] + 1, len(data)) == starts[13]  # not into the split line
        assert local_record_start(fd, starts[38] + 1, len(data)) == starts[39]  # the chain may end at the end
    finally:
        os.close(fd)


def _files(tmp_path: Path, contents: list[tuple[str, bytes]]) -> LogFiles:
    files = LogFiles("json-file", [])
    for name, data in contents:
        path = tmp_path / name
        path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
        files.paths.append(str(path))
        files.handles.append(open(path, "rb"))  # noqa: SIM115 - closed by files.close()
    return files


def test_plan_keeps_the_newest_bytes_whole_compressed_files_and_says_what_is_left(tmp_path):
    old = b"".join(record(f"old {i}\n", i) for i in range(2000))
    mid = b"".join(record(f"mid {i}\n", i) for i in range(2000))
    new = b"".join(record(f"new {i}\n", i) for i in range(2000))
    files = _files(tmp_path, [("c-json.log.2.gz", old), ("c-json.log.1", mid), ("c-json.log", new)])
    try:
        measured = measure(files, "web-1")
        assert [f.raw for f in measured.files] == [len(old), len(mid), len(new)]
        assert measured.files[0].compressed and measured.files[0].size < len(old)
        # Each record makes a bundle line: prefix + 30-byte stamp + text; the sample sees that.
        line = len("web-1 stdout ") + 30 + 1 + len("new 1999\n")
        assert abs(measured.ratio - line / len(record("new 1999\n", 1999))) < 0.05
        assert raw_needed(measured, 10**9) == measured.raw_bytes  # the estimate fits: everything
        whole = plan(measured, measured.raw_bytes)
        assert [(r.index, r.start, r.end) for r in whole.ranges] == [
            (i, 0, f.size) for i, f in enumerate(measured.files)
        ]
        assert whole.left_behind == 0

        cut = plan(measured, len(new) + 1000)  # all of the newest file and the end of the one before
        assert [r.index for r in cut.ranges] == [1, 2]
        first = cut.ranges[0]
        assert first.end == len(mid) and 1000 - len(record("mid 1999\n", 1999)) < len(mid) - first.start <= 1000
        assert mid[first.start - 1 : first.start] == b"\n" and mid[first.start :].startswith(b'{"log":"mid ')
        assert cut.left_behind == len(old) + first.start

        into_gz = plan(measured, len(new) + len(mid) + 10)  # a compressed file is kept whole or not at all
        assert [(r.index, r.start) for r in into_gz.ranges] == [(0, 0), (1, 0), (2, 0)]
        assert plan(measured, len(new) // 2).ranges[0].index == 2
    finally:
        files.close()


# --- copying in the kernel --------------------------------------------------------------


def test_copy_range_copies_exactly_the_range_and_notices_a_shrunk_source(tmp_path):
    data = os.urandom(3 * 1024 * 1024 + 17)
    src = write(tmp_path / "src", data)
    dst = os.open(tmp_path / "dst", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        copied = kcopy.copy_range(src, dst, 1000, len(data) - 5)
        body = (tmp_path / "dst").read_bytes()
        assert body[copied.skip :] == data[1000 : len(data) - 5] and copied.end == len(data) - 5
        assert copied.method in ("reflink", "copy_file_range", "sendfile", "read-write")
        os.ftruncate(dst, 0)
        short = kcopy.copy_range(src, dst, 10, len(data) + 4096)  # the source ends before the range does
        assert short.end == len(data)
        assert (tmp_path / "dst").read_bytes()[short.skip :] == data[10:]
    finally:
        os.close(src)
        os.close(dst)


def test_copy_falls_back_when_the_kernel_refuses_and_reports_a_full_disk(tmp_path, monkeypatch):
    import errno

    data = b"x" * 100_000
    src = write(tmp_path / "src", data)
    dst = os.open(tmp_path / "dst", os.O_RDWR | os.O_CREAT, 0o600)

    def refuse(*args):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(kcopy.os, "copy_file_range", refuse)
    monkeypatch.setattr(kcopy, "_reflink", lambda *a: None)
    try:
        assert kcopy.copy_range(src, dst, 0, len(data)).method == "sendfile"
        assert (tmp_path / "dst").read_bytes() == data

        def full(*args):
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(kcopy.os, "sendfile", full)
        with pytest.raises(kcopy.CopyFull):
            kcopy.copy_range(src, dst, 0, len(data))
    finally:
        os.close(src)
        os.close(dst)


# --- the private spool ------------------------------------------------------------------


def test_spool_root_is_private_and_refuses_what_is_not_ours(tmp_path):
    os.umask(0o022)
    root = SpoolRoot.open(tmp_path / "state")
    spool = root.new("20260513T084721Z")
    fd = spool.create("c0.0")
    os.close(fd)
    info = os.stat(spool.path)
    assert stat.S_IMODE(os.stat(root.path).st_mode) == stat.S_IMODE(info.st_mode) == 0o700
    assert stat.S_IMODE(os.stat(spool.path / "c0.0").st_mode) == 0o600 and info.st_uid == os.geteuid()
    path = spool.commit({"id": spool.id, "key": "k"})
    assert path.name == spool.id and not path.name.startswith(".")
    assert stat.S_IMODE(os.stat(path / "spool.json").st_mode) == 0o600
    root.close()

    (tmp_path / "loose").mkdir()
    (tmp_path / "loose" / "spool").mkdir(mode=0o755)
    SpoolRoot.open(tmp_path / "loose").close()
    assert stat.S_IMODE(os.stat(tmp_path / "loose" / "spool").st_mode) == 0o700  # tightened

    (tmp_path / "linked").mkdir()
    (tmp_path / "linked" / "spool").symlink_to(tmp_path / "state" / "spool")
    with pytest.raises(SpoolDirError, match="is a symlink or not a directory"):
        SpoolRoot.open(tmp_path / "linked")
    (tmp_path / "state-link").symlink_to(tmp_path / "state")
    with pytest.raises(SpoolDirError, match="state dir .*state-link is a symlink"):
        SpoolRoot.open(tmp_path / "state-link")  # the state dir's own symlink policy
    if os.geteuid() == 0:
        (tmp_path / "theirs").mkdir()
        (tmp_path / "theirs" / "spool").mkdir(mode=0o700)
        os.chown(tmp_path / "theirs" / "spool", 65534, 65534)
        with pytest.raises(SpoolDirError, match="belongs to uid 65534"):
            SpoolRoot.open(tmp_path / "theirs")


def test_sweep_removes_dead_partial_freezes_and_expired_spools_only(tmp_path):
    root = SpoolRoot.open(tmp_path)
    live = root.new("20260513T084700Z")  # this process holds its lock: a freeze in progress
    dead = root.new("20260513T084701Z")
    dead.close()  # its lock is free: a freeze that was killed
    fresh = root.new("20260513T084702Z")
    fresh.commit({"key": "a"})
    old = root.new("20260513T084703Z")
    old_path = old.commit({"key": "b"})
    ancient = time.time() - MAX_AGE - 60
    os.utime(old_path / "spool.json", (ancient, ancient))  # frozen more than MAX_AGE ago
    root.sweep()
    assert sorted(os.listdir(root.path)) == sorted([live.name, fresh.id])
    live.abort()
    root.close()


def test_orphans_and_claims(tmp_path):
    root = SpoolRoot.open(tmp_path)
    waiting = root.new("20260513T084700Z")
    waiting.commit({"id": waiting.id, "key": "a"})
    killed = root.new("20260513T084701Z")
    killed.commit({"id": killed.id, "key": "b"})
    late = root.new("20260513T084702Z")
    late.commit({"id": late.id, "key": "c"})
    claimed = root.claim(killed.id)
    assert claimed is not None and claimed.meta["key"] == "b"
    assert root.claim(killed.id) is None  # one holder at a time
    claimed.mark_finalizing()
    claimed.release()  # the finalize died here
    assert root.orphans(now=time.time()) == [killed.id]  # a finalize had started: take it over
    assert set(root.orphans(now=time.time() + ORPHAN_AFTER + 1)) == {waiting.id, killed.id, late.id}
    assert (root.path / killed.id / FINALIZING).exists()
    again = root.claim(late.id)
    assert again is not None
    again.remove()
    assert late.id not in os.listdir(root.path) and root.claim(late.id) is None
    root.close()


# --- log files in a directory that may be searched, not listed -------------------------


@pytest.mark.parametrize("max_file", [None, "2", "5"])
def test_a_directory_that_cannot_be_listed_is_probed_by_name(tmp_path, monkeypatch, max_file):
    """Docker's 0710 directories, to a member of their group (the plugin's log_files): the same set."""
    from rollback_pm.evidence import files as files_module

    base = tmp_path / "abc-json.log"
    for name, data in (
        ("abc-json.log", record("newest\n", 9)),
        ("abc-json.log.1", record("older\n", 8)),
        ("abc-json.log.1.gz", b"being compressed: the plain .1 wins"),
        ("abc-json.log.2.gz", gzip.compress(record("old\n", 7))),
        ("abc-json.log.3.gz", gzip.compress(record("oldest\n", 6))),
        ("other-json.log.4", b"another log"),
    ):
        (tmp_path / name).write_bytes(data)
    doc = {"HostConfig": {"LogConfig": {"Type": "json-file", "Config": {"max-file": max_file} if max_file else {}}}}
    doc["LogPath"] = str(base)
    listed = files_module.open_log_files(doc)
    real = os.listdir

    def denied(path):
        if str(path) == str(tmp_path):
            raise PermissionError(13, "Permission denied")
        return real(path)

    monkeypatch.setattr(files_module.os, "listdir", denied)
    probed = files_module.open_log_files(doc)
    try:
        # Past max-file too (2 here, 1 when not set) while the files go on: what a listing finds.
        assert [os.path.basename(p) for p in probed.paths] == [
            "abc-json.log.3.gz",
            "abc-json.log.2.gz",
            "abc-json.log.1",
            "abc-json.log",
        ]
        assert probed.paths == listed.paths
    finally:
        listed.close()
        probed.close()


# --- merge order and the merge while reading --------------------------------------------


class Blocks:
    def __init__(self, lines: list[bytes], rng: random.Random) -> None:
        self.lines, self.rng = lines, rng

    def block(self) -> list[bytes]:
        take = self.rng.randint(1, 9)
        out, self.lines = self.lines[:take], self.lines[take:]
        return out


class Sink:
    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.parts.append(data)


class Whole:
    def __init__(self, lines: list[bytes], size: int) -> None:
        self.lines, self.size = lines, size

    def block(self) -> list[bytes]:
        out, self.lines = self.lines[: self.size], self.lines[self.size :]
        return out


def _merged(sources: list[list[bytes]], readers: list) -> tuple[bytes, list[int]]:
    out, written = Sink(), [0] * len(sources)
    offsets = [len(lines[0].split(b" ")[0]) + 8 if lines else 0 for lines in sources]
    merge_lines(readers, offsets, out, written)
    return b"".join(out.parts), written


@pytest.fixture()
def small_holds(monkeypatch):
    """Hold back 4 lines (or 200 bytes), sort groups of 3 lines (or 150 bytes): many edges."""
    for name, value in (("HOLD_LINES", 4), ("HOLD_BYTES", 200), ("GROUP_LINES", 3), ("GROUP_BYTES", 150)):
        monkeypatch.setattr(f"rollback_pm.evidence.merge.{name}", value)


def test_merge_puts_lines_in_timestamp_order_within_and_across_sources(small_holds, monkeypatch):
    """Docker's stdout and stderr copiers stamp out of order: each source is put back in order, then merged."""
    monkeypatch.setattr("rollback_pm.evidence.merge.HOLD_BYTES", 4 * 66)  # 4 lines of at most 66 bytes
    rng = random.Random(3)
    for _ in range(300):
        sources, expected = [], []
        for index, name in enumerate(("a", "bb", "ccc")[: rng.randint(1, 3)]):
            stamps = sorted(rng.randrange(0, 40) for _ in range(rng.randint(0, 30)))  # ties across sources
            lines = [
                f"{name} stderr {ts(s)} {name}{i:02d}{'x' * rng.randint(0, 18)}\n".encode()
                for i, s in enumerate(stamps)
            ]
            for at in range(0, len(lines), 5):  # out of order by up to 4 lines (the lines held back)
                window = lines[at : at + 5]
                rng.shuffle(window)
                lines[at : at + 5] = window
            sources.append(lines)
            expected.extend(((line.split(b" ")[2], index, position), line) for position, line in enumerate(lines))
        expected.sort()
        merged, written = _merged(sources, [Blocks(list(s), rng) for s in sources])
        assert merged == b"".join(line for _, line in expected)
        assert written == [sum(map(len, s)) for s in sources]


def test_merge_order_does_not_depend_on_the_blocks(small_holds):
    """Lines far out of order too (beyond what is held back): the same bytes however the sources are cut."""
    rng = random.Random(11)
    for _ in range(300):
        sources = []
        for name in ("a", "bb", "ccc")[: rng.randint(2, 3)]:
            stamp = 0
            lines = []
            for i in range(rng.randint(0, 40)):
                stamp = max(0, stamp + rng.choice([0, 0, 1, 1, 2, -1, -9]))  # ties across sources, steps back
                lines.append(f"{name} stdout {ts(stamp)} {name}{i}{'x' * rng.choice([0, 5, 90, 300])}\n".encode())
            sources.append(lines)
        whole, written = _merged(sources, [Whole(list(s), 10**6) for s in sources])
        assert written == [sum(map(len, s)) for s in sources]
        assert sorted(whole.splitlines()) == sorted(line.rstrip(b"\n") for s in sources for line in s)
        assert _merged(sources, [Whole(list(s), 1) for s in sources]) == (whole, written)
        assert _merged(sources, [Blocks(list(s), rng) for s in sources]) == (whole, written)


def _spool_lines(name: str, count: int, rng: random.Random) -> list[bytes]:
    stamp = 0
    lines = []
    for i in range(count):
        stamp = max(0, stamp + rng.choice([0, 1, 1, 2, -1]))  # stdout and stderr stamped out of order
        lines.append(f"{name} stdout {ts(stamp)} {name} line {i} {'x' * rng.randint(0, 300)}\n".encode())
    return lines


@pytest.fixture()
def single_threaded():
    """The merger forks only while no other thread runs: let earlier tests' helper threads end."""
    deadline = time.monotonic() + 15
    while threading.active_count() > 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert threading.active_count() == 1, [t.name for t in threading.enumerate()]


@pytest.fixture()
def evdir(tmp_path):
    d = EvidenceDir.open(tmp_path / "ev", min_free_mb=0)
    yield d
    d.close()


def test_the_merge_while_reading_writes_what_the_merge_after_reading_writes(evdir, monkeypatch, single_threaded):
    monkeypatch.setattr("rollback_pm.evidence.spool.MIB", 64 * 1024)  # several segments per spool
    rng = random.Random(5)
    names = ["web", "api-1", "worker"]
    data = {n: _spool_lines(n, 3000, rng) for n in names}
    streaming = StreamingMerge.start(evdir, "s", [(f"c{i}", len(n) + 8) for i, n in enumerate(names)])
    assert streaming is not None, "no other thread may run when the merger is forked"
    spools = [Spool(evdir, "s", f"c{i}", cap=1 << 30) for i in range(len(names))]

    def writer(spool: Spool, lines: list[bytes]) -> None:
        for i in range(0, len(lines), 97):  # batches arrive while the child merges
            spool.write(b"".join(lines[i : i + 97]))
            time.sleep(0.001)

    threads = [threading.Thread(target=writer, args=(s, data[n])) for s, n in zip(spools, names)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for spool in spools:
        spool.drain()
    done = streaming.finish([[seg.length for seg in s.segments] for s in spools])
    assert done is not None
    sha, size, written = done
    streamed = (evdir.path / streaming.temp).read_bytes()

    sources = [Source(s, key_offset=len(n) + 8) for s, n in zip(spools, names)]
    for source in sources:
        source.ranges = source.spool.plan(1 << 30)
    after = write_log(evdir, "s", "after.log", sources)
    assert streamed == (evdir.path / "after.log").read_bytes()
    assert (sha, size) == after and written == [s.written for s in sources]
    for spool in spools:
        spool.close()


def test_a_stopped_merge_leaves_no_temp(evdir, single_threaded):
    streaming = StreamingMerge.start(evdir, "t", [("c0", 10), ("c1", 10)])
    assert streaming is not None
    spool = Spool(evdir, "t", "c0", cap=1 << 20)
    spool.write(b"c0 stdout " + ts(1).encode() + b" x\n")
    spool.drain()
    streaming.abort()
    assert not streaming.process.is_alive()
    assert not evdir.exists(streaming.temp) and streaming.temp.startswith(temp_name("t", "streamed-log")[:-4])
    spool.close()
