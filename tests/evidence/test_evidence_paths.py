"""The two read paths against the real engine: same bytes, caps, --since, live containers."""

from __future__ import annotations

import os
import re
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from rollback_pm.evidence import CollectOptions, Selection, collect
from rollback_pm.evidence.lines import TS_LEN

pytestmark = pytest.mark.docker


def run(tmp_path: Path, containers, fast_path: str, **options):
    return collect(
        Selection(name_regex=f"{containers.prefix}.*"),
        CollectOptions(evidence_dir=tmp_path / fast_path, fast_path=fast_path, **options),
    )


def log_bytes(result) -> bytes:
    return Path(result.file("log").path).read_bytes()


def both(tmp_path: Path, containers, **options):
    fast = run(tmp_path, containers, "always", **options)
    api = run(tmp_path, containers, "never", **options)
    assert not fast.degraded and not api.degraded, (fast.errors, api.errors)
    assert {c.path_used for c in api.containers} == {"api"}
    return fast, api


SCRIPT = (
    'seq 1 1500; echo "héllo ✓ 日本" >&2; head -c 40000 /dev/zero | tr "\\0" a; echo; '
    'echo "stderr line" >&2; head -c 2097152 /dev/zero | tr "\\0" x; printf "\\n"; printf "no newline at end"'
)


def data_of(text: str, name: str) -> list[str]:
    return [line.split(" ", 3)[3] for line in text.split("\n") if line.startswith(name + " ")]


def test_fast_path_and_api_path_write_the_same_bytes(tmp_path, containers):
    # json-file with rotation and compression, and a TTY; long lines Docker splits into
    # 16 KiB partials, a 2 MiB line with no newline, stderr, UTF-8, no final newline.
    rotated = containers.run("rot", SCRIPT, log_opts={"max-size": "20k", "max-file": "200", "compress": "true"})
    containers.run("tty", 'echo one; head -c 20000 /dev/zero | tr "\\0" c; echo; printf end', tty=True)

    fast, api = both(tmp_path, containers)

    assert {c.name.rsplit("-", 1)[1]: c.path_used for c in fast.containers} == {"rot": "json-file", "tty": "json-file"}
    assert log_bytes(fast) == log_bytes(api)
    names = os.listdir(os.path.dirname(rotated["LogPath"]))
    assert sum(n.endswith(".gz") for n in names) > 3  # rotation and compression really happened
    text = log_bytes(fast).decode()
    rot = data_of(text, f"{containers.prefix}rot")
    assert [d for d in rot if d.isdigit()] == [str(i) for i in range(1, 1501)]
    assert f"{containers.prefix}rot stderr " in text and "héllo ✓ 日本" in rot
    assert "a" * 40000 in rot  # partials joined into one line, even across rotated files
    assert [d for d in rot if d.startswith("x")] == ["x" * (1 << 20)] * 2  # 2 MiB: two LINE_MAX lines, same prefix
    assert rot[-1] == "no newline at end"
    assert data_of(text, f"{containers.prefix}tty") == ["one\r", "c" * 20000 + "\r", "end"]


def test_local_driver_fast_path_keeps_the_lines(tmp_path, containers):
    containers.run("loc", SCRIPT, log_driver="local", log_opts={"max-size": "50k", "max-file": "100"})
    containers.run("ref", SCRIPT)
    result = run(tmp_path, containers, "always")
    assert {c.name.rsplit("-", 1)[1]: c.path_used for c in result.containers} == {"loc": "local", "ref": "json-file"}
    text = log_bytes(result).decode()
    # The same output through the local driver's files reads as through json-file's
    # (the Engine API would glue the line after the 40000 a's onto them: see files.py).
    loc, ref = data_of(text, f"{containers.prefix}loc"), data_of(text, f"{containers.prefix}ref")
    assert sorted(loc) == sorted(ref) and "a" * 40000 in loc and len(loc) == 1500 + 6


def test_cap_keeps_the_newest_bytes_on_both_paths(tmp_path, containers):
    containers.run("big", "seq 1 20000")
    fast, api = both(tmp_path, containers, max_bytes_per_container=20_000)
    assert log_bytes(fast) == log_bytes(api)
    [c] = fast.containers
    prefix_len = len(f"{containers.prefix}big stdout ") + TS_LEN + 1
    original = sum(prefix_len + len(str(i)) + 1 for i in range(1, 20001))
    lines = log_bytes(fast).decode().splitlines()
    assert lines[-1].endswith(" 20000") and not lines[0].endswith(" 1")
    numbers = [int(line.rsplit(" ", 1)[1]) for line in lines]
    assert numbers == list(range(numbers[0], 20001))  # a contiguous tail, starting on a whole line
    assert c.truncated and c.original_bytes == original
    assert 20_000 - (prefix_len + 6) < c.kept_bytes <= 20_000 and c.kept_bytes == len(log_bytes(fast))
    manifest = fast.manifest["containers"][0]
    assert (manifest["truncated"], manifest["original_bytes"], manifest["kept_bytes"]) == (True, original, c.kept_bytes)


def test_total_cap_keeps_every_containers_end(tmp_path, containers):
    containers.run("chatty", "seq 1 3000")
    containers.run("quiet", "echo quiet-1; echo quiet-2-crashed >&2")
    result = run(tmp_path, containers, "auto", max_total_bytes=5_000)
    data = log_bytes(result)
    assert len(data) <= 5_000
    by_name = {c.name.rsplit("-", 1)[1]: c for c in result.containers}
    quiet, chatty = by_name["quiet"], by_name["chatty"]
    assert not quiet.truncated and quiet.kept_bytes == quiet.original_bytes
    assert chatty.truncated and chatty.kept_bytes + quiet.kept_bytes == len(data)
    lines = data.decode().splitlines()
    assert any(line.endswith(" 3000") for line in lines) and any(line.endswith("quiet-2-crashed") for line in lines)


def test_since_drops_older_lines_on_both_paths(tmp_path, containers):
    info = containers.run("s", "echo old; sleep 2; echo new")
    started = datetime.fromisoformat(re.sub(r"(\.\d{6})\d*Z$", r"\1+00:00", info["State"]["StartedAt"]))
    fast, api = both(tmp_path, containers, since=started + timedelta(seconds=1))
    assert log_bytes(fast) == log_bytes(api)
    assert [line.split(" ", 3)[3] for line in log_bytes(fast).decode().splitlines()] == ["new"]
    assert fast.manifest["options"]["since"] is not None


def test_a_container_that_keeps_writing_or_exits_mid_stream(tmp_path, containers):
    # Collected while it writes and (maybe) while it exits: what is read is whole lines, in order.
    info = containers.run("live", "i=0; while [ $i -lt 20000 ]; do echo line $i; i=$((i+1)); done; exit 3", wait=False)
    containers.wait_for_log(info["Id"], "line 100\n")
    for mode in ("never", "always"):
        result = run(tmp_path, containers, mode)
        [c] = result.containers
        assert c.ok and c.error is None, c.error
        numbers = [int(line.rsplit(" ", 1)[1]) for line in log_bytes(result).decode().splitlines()]
        assert numbers == list(range(len(numbers))) and len(numbers) > 100


def test_sdk_reader_and_socket_reader_give_the_same_body(containers):
    """LogsBody (tcp://, TLS, ssh:// engines, or a chunking one) reads what SocketLogsBody reads."""
    from rollback_pm.evidence import client as engine

    made = containers.run("both", 'seq 1 20000; echo "to stderr" >&2')
    client = engine.docker_client()

    def body(reader) -> bytes:
        blocks = []
        try:
            while block := reader.read(timeout=30):
                blocks.append(block)
        finally:
            reader.close()
        return b"".join(blocks)

    sdk = body(engine.LogsBody(client, made["Id"], since=None, timeout=30, read_size=64 * 1024))
    sock = body(engine.open_logs(client, made["Id"], since=None, timeout=30))
    assert sdk == sock and b" 20000\n" in sdk and b"to stderr" in sdk
    with pytest.raises(engine.ContainerGone):
        engine.LogsBody(client, "no-such-container-rpm", since=None, timeout=30)
