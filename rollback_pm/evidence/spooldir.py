"""The private spool: frozen, unredacted evidence waiting in the state dir for the finalize phase.

Layout (everything owned by the user the tool runs as; directories 0700, files 0600;
every call relative to a directory descriptor opened with O_NOFOLLOW)::

    <state dir>/spool/
        .<id>.partial/      a freeze in progress (or killed): never processed
        <id>/               a complete freeze
            lock            flock()ed by whoever freezes or processes it
            spool.json      what was frozen: containers, byte ranges, options (written last)
            docs.json       the raw inspect documents
            c<i>.<n>        frozen bytes of container i's log files
            finalizing      present once a finalize started on it

A freeze works under ``.<id>.partial`` and renames it to ``<id>`` only once complete and
fsynced, so a complete name always holds a whole freeze. The flock dies with its
process, so a spool whose lock can be taken belongs to nobody alive.

How long unredacted bytes may stay here (``sweep``):

* a partial freeze nobody holds (killed) is removed by the next run of either phase;
* a complete spool is processed by its own finalize; one nobody finalized (the finalize
  was killed, or never came) is processed by the next finalize of any rollback once a
  finalize had started on it or it is ``ORPHAN_AFTER`` (1 h) old;
* none is kept past ``MAX_AGE`` (24 h): the next run of either phase removes it,
  processed or not, and logs a warning.
"""

from __future__ import annotations

import errno
import fcntl
import os
import secrets
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from rollback_pm import log as rlog
from rollback_pm.evidence.evdir import write_all

DIR_MODE = 0o700
FILE_MODE = 0o600
SPOOL_DIR = "spool"
META = "spool.json"
DOCS = "docs.json"
LOCK = "lock"
FINALIZING = "finalizing"
PARTIAL = ".partial"
ORPHAN_AFTER = 3600.0  # a finalize that has not come within an hour is not coming
MAX_AGE = 24 * 3600.0  # unredacted bytes never stay longer (the postmortem's own deadline)
_STARTING = 60.0  # a partial spool without its lock yet is being set up, not dead


class SpoolDirError(Exception):
    """The private spool cannot be used here (the message says why and what to do)."""


def _open_dir(name: str | Path, dir_fd: int | None = None) -> int:
    return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)


def _check_private(fd: int, path: Path) -> None:
    info = os.fstat(fd)
    if info.st_uid != os.geteuid():
        raise SpoolDirError(
            f"spool directory {path} belongs to uid {info.st_uid}, not to this user (uid {os.geteuid()}); "
            "remove it or run as its owner"
        )
    if stat.S_IMODE(info.st_mode) != DIR_MODE:
        os.fchmod(fd, DIR_MODE)


def remove_tree(parent_fd: int, name: str) -> None:
    """Remove a spool directory (files only) relative to ``parent_fd``; gone already is fine."""
    try:
        fd = _open_dir(name, parent_fd)
    except FileNotFoundError:
        return
    try:
        for entry in os.listdir(fd):
            try:
                os.unlink(entry, dir_fd=fd)
            except FileNotFoundError:
                pass
    finally:
        os.close(fd)
    try:
        os.rmdir(name, dir_fd=parent_fd)
    except FileNotFoundError:
        pass


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


class SpoolRoot:
    """``<state dir>/spool``: created 0700, never through a symlink, refused when someone else's."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self.fd = fd

    @classmethod
    def open(cls, state_dir: Path | str) -> SpoolRoot:
        state = Path(state_dir).absolute()
        path = state / SPOOL_DIR
        if os.path.islink(state):  # the state dir's symlink policy (safe_dirs): never followed
            raise SpoolDirError(f"state dir {state} is a symlink; refusing to follow it")
        try:
            os.makedirs(state, mode=0o750, exist_ok=True)
            try:
                os.mkdir(path, DIR_MODE)
            except FileExistsError:
                pass
            fd = _open_dir(path)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise SpoolDirError(f"spool directory {path} is a symlink or not a directory; refusing it") from None
            raise SpoolDirError(f"spool directory {path} cannot be used: {exc.strerror}") from None
        try:
            _check_private(fd, path)
        except (SpoolDirError, OSError):
            os.close(fd)
            raise
        return cls(path, fd)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> SpoolRoot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def free_bytes(self) -> int:
        vfs = os.fstatvfs(self.fd)
        return vfs.f_bavail * vfs.f_frsize

    def new(self, stamp: str) -> NewSpool:
        """A new partial spool, locked by this process."""
        ident = f"{stamp}-{secrets.token_hex(4)}"
        name = f".{ident}{PARTIAL}"
        os.mkdir(name, DIR_MODE, dir_fd=self.fd)
        fd = _open_dir(name, self.fd)
        try:
            os.fchmod(fd, DIR_MODE)
            lock = os.open(
                LOCK, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE, dir_fd=fd
            )
            fcntl.flock(lock, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            remove_tree(self.fd, name)
            raise
        return NewSpool(self, ident, name, fd, lock)

    def complete(self) -> list[str]:
        """The ids of the complete spools, oldest first."""
        return sorted(n for n in os.listdir(self.fd) if not n.startswith("."))

    def claim(self, ident: str) -> ClaimedSpool | None:
        """Lock a complete spool for processing; None when someone holds it or it is gone."""
        try:
            fd = _open_dir(ident, self.fd)
        except (FileNotFoundError, NotADirectoryError, OSError):
            return None
        try:
            lock = os.open(LOCK, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
        except OSError:
            os.close(fd)
            return None
        if not _try_lock(lock):
            os.close(lock)
            os.close(fd)
            return None
        claimed = ClaimedSpool(self, ident, fd, lock)
        try:
            claimed.meta = orjson.loads(claimed.read(META))
        except (OSError, orjson.JSONDecodeError):
            claimed.meta = {}
        if not os.path.exists(f"/proc/self/fd/{fd}") or not self._still_there(ident, fd):
            claimed.release()  # removed by whoever held it before us
            return None
        return claimed

    def _still_there(self, ident: str, fd: int) -> bool:
        try:
            return os.stat(ident, dir_fd=self.fd, follow_symlinks=False).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            return False

    def sweep(self, now: float | None = None) -> None:
        """Remove killed partial freezes and spools older than MAX_AGE (nobody holding them)."""
        now = time.time() if now is None else now
        logger = rlog.get_logger("rollback_pm.evidence")
        for name in os.listdir(self.fd):
            try:
                info = os.stat(name, dir_fd=self.fd, follow_symlinks=False)
            except FileNotFoundError:
                continue
            if not stat.S_ISDIR(info.st_mode):
                continue
            partial = name.startswith(".") and name.endswith(PARTIAL)
            if not partial:
                try:  # frozen when its spool.json was written (the directory's own time moves later)
                    info = os.stat(f"{name}/{META}", dir_fd=self.fd, follow_symlinks=False)
                except OSError:
                    pass
                if now - info.st_mtime < MAX_AGE:
                    continue
            if not self._removable(name, info, now):
                continue
            if not partial:
                logger.warning(
                    "evidence.spool_expired",
                    spool=name,
                    hours=round((now - info.st_mtime) / 3600, 1),
                    note="no finalize processed it in time; its unredacted bytes were removed",
                )
            remove_tree(self.fd, name)

    def _removable(self, name: str, info: os.stat_result, now: float) -> bool:
        try:
            fd = _open_dir(name, self.fd)
        except OSError:
            return False
        try:
            try:
                lock = os.open(LOCK, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            except FileNotFoundError:
                return now - info.st_mtime > _STARTING
            except OSError:
                return False
            try:
                return _try_lock(lock)  # released when closed below, then removed
            finally:
                os.close(lock)
        finally:
            os.close(fd)

    def orphans(self, now: float | None = None) -> list[str]:
        """Complete spools a finalize of any rollback should process now (see the module docstring)."""
        now = time.time() if now is None else now
        found = []
        for ident in self.complete():
            try:
                info = os.stat(ident, dir_fd=self.fd, follow_symlinks=False)
                started = os.path.exists(os.path.join(self.path, ident, FINALIZING))
            except OSError:
                continue
            if started or now - info.st_mtime >= ORPHAN_AFTER:
                found.append(ident)
        return found


class _Files:
    """Private files in one spool directory."""

    fd: int

    def create(self, name: str) -> int:
        fd = os.open(name, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE, dir_fd=self.fd)
        os.fchmod(fd, FILE_MODE)  # the umask may have taken bits away, never added
        return fd

    def open(self, name: str) -> int:
        return os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=self.fd)

    def read(self, name: str) -> bytes:
        fd = self.open(name)
        try:
            with os.fdopen(os.dup(fd), "rb") as handle:
                return handle.read()
        finally:
            os.close(fd)

    def write_json(self, name: str, data: Any) -> None:
        fd = self.create(name)
        try:
            write_all(fd, orjson.dumps(data))
            os.fsync(fd)
        finally:
            os.close(fd)


class NewSpool(_Files):
    """A freeze being written: ``commit`` makes it complete, ``abort`` removes it."""

    def __init__(self, root: SpoolRoot, ident: str, name: str, fd: int, lock: int) -> None:
        self.root = root
        self.id = ident
        self.name = name
        self.fd = fd
        self.lock = lock
        self.done = False

    @property
    def path(self) -> Path:
        return self.root.path / (self.id if self.done else self.name)

    def commit(self, meta: dict[str, Any]) -> Path:
        """Write the metadata last, fsync, and give the spool its complete name."""
        self.write_json(META, meta)
        os.fsync(self.fd)
        os.rename(self.name, self.id, src_dir_fd=self.root.fd, dst_dir_fd=self.root.fd)
        os.fsync(self.root.fd)
        self.done = True
        self.close()
        return self.root.path / self.id

    def abort(self) -> None:
        if not self.done:
            remove_tree(self.root.fd, self.name)
            self.done = True
        self.close()

    def close(self) -> None:
        for fd in (self.fd, self.lock):
            if fd >= 0:
                os.close(fd)
        self.fd = self.lock = -1


class ClaimedSpool(_Files):
    """A complete spool this process holds the lock of."""

    def __init__(self, root: SpoolRoot, ident: str, fd: int, lock: int) -> None:
        self.root = root
        self.id = ident
        self.fd = fd
        self.lock = lock
        self.meta: dict[str, Any] = {}

    @property
    def path(self) -> Path:
        return self.root.path / self.id

    def mark_finalizing(self) -> None:
        """Say a finalize started: if it dies, the next finalize of any rollback takes this spool over."""
        try:
            os.close(self.create(FINALIZING))
        except FileExistsError:
            pass

    def remove(self) -> None:
        """Delete the spool (its unredacted bytes), then let go of it."""
        if self.fd >= 0:
            for entry in os.listdir(self.fd):
                if entry != LOCK:
                    try:
                        os.unlink(entry, dir_fd=self.fd)
                    except FileNotFoundError:
                        pass
            remove_tree(self.root.fd, self.id)  # the lock file last: nobody can claim a half-removed spool
            os.fsync(self.root.fd)
        self.release()

    def release(self) -> None:
        for fd in (self.fd, self.lock):
            if fd >= 0:
                os.close(fd)
        self.fd = self.lock = -1


@contextmanager
def opened(state_dir: Path | str) -> Iterator[SpoolRoot]:
    root = SpoolRoot.open(state_dir)
    try:
        yield root
    finally:
        root.close()
