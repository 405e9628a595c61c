"""The evidence directory: safe to write into, and files that appear only when complete.

Every file is created as a hidden temp (``.rollback-<id>.*``) in the directory itself with
O_EXCL|O_NOFOLLOW and mode 0640, fsynced, then published under its final name with a
hard link (which never replaces an existing file) or, where the filesystem has no links,
a rename after checking the name is free; the directory is fsynced after. All calls are
relative to one directory descriptor opened with O_NOFOLLOW, so a symlink swapped in
later is not followed either. A SIGKILL at any point leaves at most hidden temps, which
the next run removes once the lock's process is gone.
"""

from __future__ import annotations

import errno
import hashlib
import os
import socket
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rollback_pm.errors import EvidenceDirError

FILE_MODE = 0o640
DIR_MODE = 0o750
MIB = 1024 * 1024


def write_all(fd: int, data: bytes) -> None:
    """os.write until every byte is written (one call may write less)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class EvidenceDir:
    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self.fd = fd

    @classmethod
    def open(cls, path: Path | str, min_free_mb: int) -> EvidenceDir:
        path = Path(path).absolute()
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            info = None
        except OSError as exc:
            raise EvidenceDirError(
                f"evidence directory {path} cannot be examined: {exc.strerror}. Check its parent's permissions."
            ) from None
        if info is not None and stat.S_ISLNK(info.st_mode):
            raise EvidenceDirError(
                f"evidence directory {path} is a symlink (to {os.path.realpath(path)}); refusing to follow it. "
                "Pass the real directory with --evidence-dir."
            )
        if info is None:
            try:
                os.makedirs(path.parent, exist_ok=True)
                os.mkdir(path, DIR_MODE)
                os.chmod(path, DIR_MODE, follow_symlinks=False)
            except FileExistsError:
                return cls.open(path, min_free_mb)  # created concurrently: examine it again
            except OSError as exc:
                raise EvidenceDirError(
                    f"evidence directory {path} cannot be created: {exc.strerror}. "
                    "Create it (mode 0750) or pass a writable --evidence-dir."
                ) from None
        elif not stat.S_ISDIR(info.st_mode):
            raise EvidenceDirError(
                f"evidence directory {path} exists but is not a directory. Pass another --evidence-dir."
            )
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise EvidenceDirError(f"evidence directory {path} became a symlink; refusing to follow it.") from None
            raise EvidenceDirError(
                f"evidence directory {path} cannot be opened: {exc.strerror}. Check its permissions."
            ) from None
        evdir = cls(path, fd)
        if not os.access(path, os.W_OK | os.X_OK):
            evdir.close()
            raise EvidenceDirError(
                f"evidence directory {path} is not writable by this user (uid {os.getuid()}). "
                "Fix its owner/mode or pass a writable --evidence-dir."
            )
        free_mb = evdir.free_bytes() // MIB
        if free_mb < min_free_mb:
            evdir.close()
            raise EvidenceDirError(
                f"evidence directory {path} has {free_mb} MiB free, below the {min_free_mb} MiB floor. "
                "Free space on that filesystem, pass an --evidence-dir on another disk, or lower --min-free-mb."
            )
        return evdir

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def free_bytes(self) -> int:
        vfs = os.fstatvfs(self.fd)
        return vfs.f_bavail * vfs.f_frsize

    def exists(self, name: str) -> bool:
        try:
            os.stat(name, dir_fd=self.fd, follow_symlinks=False)
            return True
        except FileNotFoundError:
            return False

    def create(self, name: str, readable: bool = False) -> int:
        """A new file for writing; fails if the name exists (symlinks included)."""
        access = os.O_RDWR if readable else os.O_WRONLY
        try:
            fd = os.open(
                name, access | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE, dir_fd=self.fd
            )
        except OSError as exc:
            raise EvidenceDirError(
                f"cannot create {self.path / name}: {exc.strerror}. Check the evidence directory."
            ) from None
        os.fchmod(fd, FILE_MODE)  # the umask may have taken bits away
        return fd

    def unlink(self, name: str) -> None:
        try:
            os.unlink(name, dir_fd=self.fd)
        except FileNotFoundError:
            pass

    def sync(self) -> None:
        os.fsync(self.fd)

    def publish(self, temp: str, final: str) -> Path:
        """Give a complete, fsynced temp file its final name; never replaces a file."""
        taken = f"{self.path / final} appeared while we wrote it; nothing was replaced. Retry."
        try:
            os.link(temp, final, src_dir_fd=self.fd, dst_dir_fd=self.fd, follow_symlinks=False)
            os.unlink(temp, dir_fd=self.fd)
        except OSError as exc:
            if exc.errno not in (
                errno.EPERM,
                errno.ENOTSUP,
                errno.EOPNOTSUPP,
                errno.EMLINK,
                errno.EXDEV,
            ) or self.exists(final):
                self.unlink(temp)
                if exc.errno == errno.EEXIST or self.exists(final):
                    raise EvidenceDirError(taken) from None
                raise EvidenceDirError(f"cannot publish {self.path / final}: {exc.strerror}.") from None
            os.rename(temp, final, src_dir_fd=self.fd, dst_dir_fd=self.fd)  # no hard links here
        self.sync()
        return self.path / final

    @contextmanager
    def new_file(self, final: str, temp: str, hint: str = "") -> Iterator[int]:
        """A descriptor for ``temp``, published as ``final`` once the block has written it.

        On the way out it is fsynced, closed and published; if the block fails the temp
        is removed instead, and an OSError becomes an EvidenceDirError (``hint`` added).
        """
        fd = self.create(temp)
        try:
            yield fd
            os.fsync(fd)
        except OSError as exc:
            os.close(fd)
            self.unlink(temp)
            raise EvidenceDirError(f"cannot write {self.path / final}: {exc.strerror or exc}.{hint}") from None
        except BaseException:
            os.close(fd)
            self.unlink(temp)
            raise
        os.close(fd)
        self.publish(temp, final)

    def write_atomic(self, final: str, data: bytes, temp: str) -> tuple[Path, str, int]:
        """Write bytes under ``final`` via ``temp``; returns (path, sha256, size)."""
        with self.new_file(final, temp) as fd:
            write_all(fd, data)
        return self.path / final, hashlib.sha256(data).hexdigest(), len(data)

    # --- bundle names and locks -----------------------------------------------------------

    def reserve(self, stamp: str, suffixes: tuple[str, ...]) -> str:
        """The first free bundle id ``stamp``, ``stamp-1``, …; held by a hidden lock file."""
        self.clean_stale()
        for n in range(1000):
            bundle = stamp if n == 0 else f"{stamp}-{n}"
            if any(self.exists(f"rollback-{bundle}{suffix}") for suffix in suffixes):
                continue
            try:
                fd = os.open(
                    lock_name(bundle),
                    os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                    FILE_MODE,
                    dir_fd=self.fd,
                )
            except FileExistsError:
                continue
            except OSError as exc:
                raise EvidenceDirError(
                    f"evidence directory {self.path} is not writable: {exc.strerror}. "
                    "Fix its owner/mode or pass a writable --evidence-dir."
                ) from None
            os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
            os.close(fd)
            return bundle
        raise EvidenceDirError(f"no free bundle name for {stamp} in {self.path}; remove old bundles.")

    def release(self, bundle: str) -> None:
        for name in self._temps(bundle):
            self.unlink(name)
        self.unlink(lock_name(bundle))

    def _temps(self, bundle: str) -> list[str]:
        prefix = f".rollback-{bundle}."
        return [n for n in os.listdir(self.fd) if n.startswith(prefix) and not n.endswith(".lock")]

    def clean_stale(self) -> None:
        """Remove temps left by a collector of this host that died (SIGKILL, power loss)."""
        host = socket.gethostname()
        for name in os.listdir(self.fd):
            if not (name.startswith(".rollback-") and name.endswith(".lock")):
                continue
            bundle = name[len(".rollback-") : -len(".lock")]
            try:
                fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=self.fd)
                try:
                    owner = os.read(fd, 256).decode("ascii", "replace").split()
                finally:
                    os.close(fd)
                pid = int(owner[0])
            except (OSError, ValueError, IndexError):
                continue
            if len(owner) < 2 or owner[1] != host or _alive(pid):
                continue
            self.release(bundle)


def lock_name(bundle: str) -> str:
    return f".rollback-{bundle}.lock"


def temp_name(bundle: str, what: str) -> str:
    return f".rollback-{bundle}.{what}.tmp"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
