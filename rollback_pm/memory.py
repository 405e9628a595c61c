"""Keeping a hook's peak memory near what it uses: glibc's heap, told to hand freed memory back.

The hook's stages each allocate large buffers and drop them (the log readers' batches, the
merge's blocks, the extractor's 4 MiB read blocks). glibc serves a buffer over its mmap
threshold from a mapping of its own, returned on free, but raises that threshold to the
size of each such buffer freed (up to 32 MiB), and with it the heap top it keeps unused
(twice the threshold). Once a 4 MiB block was freed, every later one came from the heap,
and the freed ones stayed resident: on 8 containers x 64 MiB the hook's peak RSS was
~9 MiB above what it held. A fixed threshold keeps big buffers in mappings of their own
(what a freed one held leaves the process at once), and a trim between stages returns
the heap's free pages that the worker threads left behind.

Both are no-ops where the C library is not glibc; neither changes what is computed.
"""

from __future__ import annotations

import ctypes
import sys
from functools import cache
from typing import Any

MMAP_THRESHOLD = 256 << 10  # buffers this size or more get a mapping of their own
_M_TRIM_THRESHOLD = -1  # mallopt parameters (malloc.h)
_M_MMAP_THRESHOLD = -3


@cache
def _glibc() -> Any | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")  # glibc's name; musl and others have none such
        libc.gnu_get_libc_version  # noqa: B018 - only glibc has it
        return libc
    except (OSError, AttributeError):
        return None


def bound_heap() -> bool:
    """Fix glibc's mmap and trim thresholds for this process; True when it applied."""
    libc = _glibc()
    if libc is None:
        return False
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        libc.mallopt(_M_TRIM_THRESHOLD, 2 * MMAP_THRESHOLD)
    )


def give_back() -> None:
    """Return the free pages of every glibc arena to the system (after a stage's buffers are gone)."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)
