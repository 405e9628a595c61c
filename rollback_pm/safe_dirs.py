"""One symlink policy for the state, drafts and tickets dirs: the evidence dir's.

A directory rollback-pm writes into must not itself be a symlink (its parents may be), and
no file in it is written or locked through a symlink: files are opened with O_NOFOLLOW,
and where a library opens the file (SQLite, filelock) the path is checked with lstat first.
A planted link is refused with a message naming it and what it points to, and nothing is
written through it. See docs/troubleshooting.md, "A symlink where a directory or file
should be".
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from rollback_pm.errors import RollbackPmError

DIR_MODE = 0o750


def _link_text(path: Path) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return "?"


def ensure_dir(path: Path | str, what: str, fix: str, error: type[RollbackPmError]) -> Path:
    """``path`` as a real directory, created (mode 0750) when missing; ``error`` otherwise.

    ``what`` names it ("state dir"), ``fix`` says how to fix it (ends the message).
    """
    path = Path(path)
    for _ in range(2):  # a second look when another process created it meanwhile
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            info = None
        except OSError as exc:
            raise error(f"{what} {path} cannot be examined ({exc.strerror}); {fix}") from None
        if info is not None:
            if stat.S_ISLNK(info.st_mode):
                raise error(f"{what} {path} is a symlink (to {_link_text(path)}); refusing to follow it. {fix}")
            if not stat.S_ISDIR(info.st_mode):
                raise error(f"{what} {path} exists but is not a directory; {fix}")
            return path
        try:
            os.makedirs(path.parent, exist_ok=True)
            os.mkdir(path, DIR_MODE)
            return path
        except FileExistsError:
            continue
        except OSError as exc:
            raise error(f"{what} {path} cannot be created ({exc.strerror}); {fix}") from None
    raise error(f"{what} {path} keeps changing under rollback-pm; {fix}")


def refuse_symlink(path: Path | str, what: str, fix: str, error: type[RollbackPmError]) -> None:
    """``error`` when ``path`` is a symlink (a missing path is fine: it will be created)."""
    path = Path(path)
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise error(f"{what} {path} cannot be examined ({exc.strerror}); {fix}") from None
    if stat.S_ISLNK(info.st_mode):
        raise error(f"{what} {path} is a symlink (to {_link_text(path)}); refusing to follow it. {fix}")


def read_nofollow(path: Path | str, limit: int) -> bytes:
    """Up to ``limit`` + 1 bytes of a regular file, never through a symlink.

    Raises FileNotFoundError, IsADirectoryError, or OSError with errno ELOOP for a symlink.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise IsADirectoryError(errno.EISDIR, "not a regular file", str(path))
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, min(1024 * 1024, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def is_symlink_error(exc: OSError) -> bool:
    """An O_NOFOLLOW open that met a symlink."""
    return exc.errno == errno.ELOOP
