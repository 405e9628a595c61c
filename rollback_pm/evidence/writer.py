"""A disk writer thread: the bundle's files are written beside the parsing, not after it."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable


class BackgroundWriter:
    """Runs ``sink(block)`` for each block put, in a thread of its own.

    os.write, sha256 and fdatasync release the GIL, so on a second core the disk work
    overlaps with the producer's parsing instead of adding to it. The queue holds
    ``depth`` blocks, which bounds memory. The first error is kept in ``error`` (as an
    OSError); later blocks are still taken off the queue, so the producer never blocks.
    """

    def __init__(self, sink: Callable[[bytes], None], name: str, depth: int = 1) -> None:
        self.error: OSError | None = None
        self._sink = sink
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=depth)
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def put(self, data: bytes) -> None:
        self._queue.put(data)

    def close(self) -> None:
        """Wait until every block put is handled (check ``error`` after)."""
        self._queue.put(None)
        self._thread.join()

    def _loop(self) -> None:
        while (data := self._queue.get()) is not None:
            if self.error is not None:
                continue
            try:
                self._sink(data)
            except Exception as exc:
                self.error = exc if isinstance(exc, OSError) else OSError(str(exc))
