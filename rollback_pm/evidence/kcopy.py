"""Copy a byte range of a file in the kernel: reflink where the filesystem shares extents, else copy.

Order of attempts, per range:

1. ``FICLONERANGE`` (btrfs, XFS with reflink, bcachefs…): the destination shares the
   source's extents, no data is copied; a later write by Docker to the source cannot
   change the clone. The source offset must be block-aligned, so the clone may start up
   to a block before the wanted byte: the caller is told how many bytes to skip.
2. ``copy_file_range``: the kernel copies (same filesystem or not, on recent kernels).
3. ``sendfile``, then plain read/write, for the filesystems that refuse both.

Why not a hard link: a link is the very inode Docker keeps appending to (and, with
``max-file=1``, truncates in place at rotation), so it freezes nothing; it would also
keep Docker's owner and mode instead of ours (a chmod would change Docker's file), and
``fs.protected_hardlinks`` refuses linking another user's file.
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass

FICLONERANGE = 0x4020940D  # _IOW(0x94, 13, struct file_clone_range)
CHUNK = 16 << 20  # copy in pieces this size, checking the deadline in between
_NOT_HERE = {errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTTY, errno.EBADF, errno.EPERM}
_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_no_reflink: set[tuple[int, int]] = set()  # (source dev, destination dev) pairs that refused a clone


class CopyFull(OSError):
    """The destination's filesystem is full (or over quota)."""


@dataclass
class Copied:
    method: str  # reflink | copy_file_range | sendfile | read-write
    skip: int  # bytes at the start of the destination before the wanted range (reflink alignment)
    end: int  # one past the last source byte now in the destination (less than asked if the source shrank)


def _raise_full(exc: OSError) -> None:
    if exc.errno in _FULL:
        raise CopyFull(exc.errno, os.strerror(exc.errno or errno.ENOSPC)) from None


def _reflink(src: int, dst: int, start: int, end: int) -> Copied | None:
    pair = (os.fstat(src).st_dev, os.fstat(dst).st_dev)
    if pair in _no_reflink or pair[0] != pair[1]:
        return None
    block = max(512, os.fstatvfs(src).f_bsize)
    aligned = start - start % block
    length = end - aligned
    if length % block:  # only the source's last block may be partial: clone to its end, cut after
        length = 0
    try:
        fcntl.ioctl(dst, FICLONERANGE, struct.pack("qQQQ", src, aligned, length, 0))
    except OSError as exc:
        _raise_full(exc)
        _no_reflink.add(pair)
        return None
    os.ftruncate(dst, end - aligned)
    size = os.fstat(dst).st_size
    return Copied("reflink", start - aligned, aligned + size)


def copy_range(src: int, dst: int, start: int, end: int, check: Callable[[], None] = lambda: None) -> Copied:
    """Copy source bytes [start, end) to the beginning of the empty file ``dst``.

    Raises CopyFull when the destination fills up; whatever ``check`` raises (the
    deadline) between chunks. A source that turns out shorter (truncated by a
    rotation) ends the copy early: ``Copied.end`` says where.
    """
    if end <= start:
        return Copied("copy_file_range", 0, start)
    cloned = _reflink(src, dst, start, end)
    if cloned is not None:
        return cloned
    for method in ("copy_file_range", "sendfile", "read-write"):
        try:
            return Copied(method, 0, _copy_with(method, src, dst, start, end, check))
        except OSError as exc:
            _raise_full(exc)
            if exc.errno not in _NOT_HERE or method == "read-write":
                raise
            os.ftruncate(dst, 0)  # start again with the next method
    raise AssertionError("unreachable")


def _copy_with(method: str, src: int, dst: int, start: int, end: int, check: Callable[[], None]) -> int:
    position = start
    while position < end:
        check()
        want = min(CHUNK, end - position)
        if method == "copy_file_range":
            done = os.copy_file_range(src, dst, want, position, position - start)
        elif method == "sendfile":
            os.lseek(dst, position - start, os.SEEK_SET)
            done = os.sendfile(dst, src, position, want)
        else:
            data = os.pread(src, min(want, 1 << 20), position)
            done = len(data)
            view = memoryview(data)
            offset = position - start
            while view:
                written = os.pwrite(dst, view, offset)
                view, offset = view[written:], offset + written
        if done == 0:  # the source is shorter than it was: rotated away under us
            break
        position += done
    return position
