"""Merging while the logs are still being read: the finalize phase's merger, in a child process.

Reading (parsing, redacting) and merging (sorting by timestamp, writing) are both
Python work, so in one process they take turns on one core however many threads run.
A forked child merges the containers' spools as the workers write them, on the other
core: by the time the last worker is done, the merged log is too.

The child follows each container's spool segments (``spool.Spool`` names them
``.rollback-<bundle>.c<i>.<n>.spool.tmp``) by name: a segment is complete once the next
one exists or the parent says how long each segment ended up. It takes whole lines
only, feeds them to ``merge.merge_lines`` (whose order does not depend on how the
sources are cut into blocks) and writes a hidden temp in the evidence directory.

The result is used only when nothing was cut: when every container's log fits its
share of the caps, the merged log of all lines is the bundle's log, byte for byte what
``merge.write_log`` would write after reading. Otherwise (a cap cuts, a segment was
dropped, the child failed or cannot be forked) the child is stopped and the bundle is
merged after reading, as ``collect`` does.
"""

from __future__ import annotations

import io
import os
import secrets
import signal
import socket
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from rollback_pm.evidence.evdir import EvidenceDir, temp_name
from rollback_pm.evidence.merge import BLOCK, _Out, merge_lines

POLL = 0.005  # how often a starved follower looks again
STREAM_TEMP = "streamed-log"


class _Stop(Exception):
    """The parent said stop (or is gone): drop the temp and exit."""


class _Control:
    """The child's end of the pipe: the final segment lengths once the parent knows them."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.final: list[list[int]] | None = None

    def wait(self) -> None:
        try:
            if not self.conn.poll(POLL):
                return
            message = self.conn.recv()
        except (EOFError, OSError):
            raise _Stop() from None
        if message[0] == "finish":
            self.final = message[1]
        else:
            raise _Stop()


class _Follower:
    """Whole lines of one container's spool segments, as they are written."""

    def __init__(self, dir_fd: int, bundle: str, tag: str, index: int, control: _Control) -> None:
        self.dir_fd = dir_fd
        self.bundle = bundle
        self.tag = tag
        self.index = index
        self.control = control
        self.segment = 0
        self.fd: int | None = None
        self.pos = 0
        self.carry = b""

    def _name(self, number: int) -> str:
        return temp_name(self.bundle, f"{self.tag}.{number}.spool")

    def _exists(self, number: int) -> bool:
        try:
            os.stat(self._name(number), dir_fd=self.dir_fd, follow_symlinks=False)
            return True
        except FileNotFoundError:
            return False

    def _length(self) -> int | None:
        """The current segment's final length, None while it may still grow."""
        final = self.control.final
        if final is not None:
            return final[self.index][self.segment]
        if self._exists(self.segment + 1):
            assert self.fd is not None
            return os.fstat(self.fd).st_size
        return None

    def block(self) -> list[bytes]:
        while True:
            if self.fd is None:
                final = self.control.final
                if final is not None and self.segment >= len(final[self.index]):
                    if self.carry:  # a worker stopped mid-line (deadline): close it, as merge._Reader does
                        line, self.carry = self.carry + b"\n", b""
                        return [line]
                    return []
                try:
                    self.fd = os.open(
                        self._name(self.segment), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=self.dir_fd
                    )
                except FileNotFoundError:
                    if final is not None or self._exists(self.segment + 1):
                        raise _Stop() from None  # dropped by the ring: a cap cut this log
                    self.control.wait()
                    continue
                self.pos = 0
            length = self._length()
            size = os.fstat(self.fd).st_size if length is None else length
            if self.pos < size:
                lines = self._read(size, complete=length is not None)
                if lines:
                    return lines
                if length is None:
                    self.control.wait()
                continue
            if length is not None:
                os.close(self.fd)
                self.fd = None
                self.segment += 1
                continue
            self.control.wait()

    def _read(self, size: int, complete: bool) -> list[bytes]:
        assert self.fd is not None
        chunk = os.pread(self.fd, min(size - self.pos, BLOCK), self.pos)
        if not (complete and self.pos + len(chunk) >= size):
            cut = chunk.rfind(b"\n") + 1
            if cut == 0 and len(chunk) < size - self.pos:  # one line longer than a block
                chunk = os.pread(self.fd, size - self.pos, self.pos)
                cut = chunk.rfind(b"\n") + 1
            chunk = chunk[:cut]  # a batch still being written: its whole lines only
        if not chunk:
            return []
        self.pos += len(chunk)
        lines = io.BytesIO(chunk).readlines()
        if self.carry:
            lines[0] = self.carry + lines[0]
            self.carry = b""
        if not lines[-1].endswith(b"\n"):
            self.carry = lines.pop()  # cut by the segment's end: continues in the next one
        return lines


def _child(
    conn: Connection, path: str, dir_fd: int, bundle: str, tags: list[str], offsets: list[int], temp: str
) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it stops us
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    evdir = EvidenceDir(Path(path), dir_fd)
    control = _Control(conn)
    try:
        fd = evdir.create(temp)
    except Exception as exc:
        conn.send(("failed", f"{type(exc).__name__}: {exc}"))
        return
    try:
        out = _Out(fd)
        written = [0] * len(tags)
        try:
            followers: list[Any] = [_Follower(dir_fd, bundle, tag, i, control) for i, tag in enumerate(tags)]
            merge_lines(followers, offsets, out, written)
        finally:
            out.close()
        os.fsync(fd)
        os.close(fd)
        conn.send(("done", out.hasher.hexdigest(), out.size, written))
    except BaseException as exc:
        evdir.unlink(temp)
        try:
            conn.send(("failed", f"{type(exc).__name__}: {exc}"))
        except OSError:
            pass


def _isolate(keep: set[int]) -> None:
    """In the child: hold nothing of the parent's but ``keep``.

    Not the spool's flock (the next run could not take over a killed finalize while we
    live), not the parent's end of our pipe (we would never see it close), not its
    stdout (whoever reads the parent's output would wait for us).
    """
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass  # the listing's own descriptor


class _Process:
    """The forked child, by pid."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.status: int | None = None

    def is_alive(self) -> bool:
        if self.status is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = status
        return self.status is None

    def join(self, timeout: float | None = None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.is_alive():
            if deadline is not None and time.monotonic() >= deadline:
                return
            time.sleep(0.01)

    def kill(self) -> None:
        if self.is_alive():
            os.kill(self.pid, signal.SIGKILL)


class StreamingMerge:
    """The parent's handle on the merging child."""

    def __init__(self, evdir: EvidenceDir, temp: str, process: _Process, conn: Connection) -> None:
        self.evdir = evdir
        self.temp = temp
        self.process = process
        self.conn = conn
        self.done = False

    @classmethod
    def start(cls, evdir: EvidenceDir, bundle: str, sources: list[tuple[str, int]]) -> StreamingMerge | None:
        """Fork the merger for ``sources`` (spool tag, timestamp offset); None where it cannot run.

        Forking is only safe while this process has no other thread (a lock held by one
        would stay held in the child), so it must come before the workers start.
        """
        if len(sources) < 2 or threading.active_count() > 1 or not hasattr(os, "fork"):
            return None
        parent, child = socket.socketpair()
        # Its own name: a child of a killed run (same bundle id, reused) must never remove ours.
        temp = temp_name(bundle, f"{STREAM_TEMP}.{secrets.token_hex(4)}")
        try:
            pid = os.fork()
        except OSError:
            parent.close()
            child.close()
            return None
        if pid == 0:  # the child: merge, report, and leave without running the parent's cleanups
            try:
                parent.close()
                _isolate({child.fileno(), evdir.fd})
                _child(
                    Connection(child.detach()),
                    str(evdir.path),
                    evdir.fd,
                    bundle,
                    [t for t, _ in sources],
                    [o for _, o in sources],
                    temp,
                )
            finally:
                os._exit(0)
        child.close()
        return cls(evdir, temp, _Process(pid), Connection(parent.detach()))

    def finish(self, lengths: list[list[int]]) -> tuple[str, int, list[int]] | None:
        """Tell the child how long every segment ended up; (sha256, size, bytes per source), or None if it failed."""
        try:
            self.conn.send(("finish", lengths))
            while not self.conn.poll(0.2):
                if not self.process.is_alive() and not self.conn.poll(0):
                    return self._failed()
            message = self.conn.recv()
        except (EOFError, OSError):
            return self._failed()
        if message[0] != "done":
            return self._failed()
        self.process.join()
        self.conn.close()
        self.done = True
        return message[1], message[2], message[3]

    def _failed(self) -> tuple[str, int, list[int]] | None:
        self.abort()
        return None

    def abort(self) -> None:
        """Stop the child and drop its temp (nothing if it already finished and was used)."""
        if self.done:
            return
        self.done = True
        try:
            self.conn.send(("abort",))
        except OSError:
            pass
        self.process.join(timeout=2.0)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()
        self.evdir.unlink(self.temp)
