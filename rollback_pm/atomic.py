"""Write a file so that it appears under its final name only when complete."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def write_atomic(
    path: Path,
    data: bytes | str,
    mode: int = 0o640,
    *,
    exclusive: bool = False,
    precondition: Callable[[], bool] | None = None,
) -> bool:
    """temp file in the same directory + fsync + rename; the directory is fsynced too.

    ``exclusive``: link instead of rename, so an existing file is never replaced
    (FileExistsError instead). ``precondition`` is asked last, with the new content already
    on disk beside the file, so the window between the check and the rename is as short
    as it can be; when it says False nothing is replaced and the result is False."""
    path = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        if precondition is not None and not precondition():
            os.unlink(tmp)
            return False
        if exclusive:
            os.link(tmp, path)
            os.unlink(tmp)
        else:
            os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return True
