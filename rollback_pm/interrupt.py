"""SIGTERM unwinds like Ctrl-C, so every cleanup runs.

Python's default SIGTERM ends the process on the spot: no ``finally`` runs, and a
collection stopped by a CI runner's cancel or ``docker stop`` left its spool segments
(tens of MiB of hidden temps), its bundle lock and a half-merged log behind until the
next run. Within ``unwind_on_sigterm`` (every CLI command; a collect, freeze or finalize
called as a library) SIGTERM instead raises ``Terminated`` (a KeyboardInterrupt, as
SIGINT raises) in the main thread: temps are removed, locks released, the merging child
stopped, and the CLI exits 130 with "interrupted". The previous handler is put back
afterwards.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived."""


def _raise(signum: int, frame: FrameType | None) -> None:
    raise Terminated(f"stopped by signal {signal.Signals(signum).name}")


@contextmanager
def unwind_on_sigterm() -> Iterator[None]:
    """Within the block, SIGTERM raises Terminated (main thread only: elsewhere signals cannot be set)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
