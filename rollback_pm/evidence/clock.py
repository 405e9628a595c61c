"""The collection's clock: one ``--timeout`` shared by every phase and worker."""

from __future__ import annotations

import threading
import time

GRACE = 2.0  # seconds a worker gets past the work deadline to notice it


class DeadlineReached(Exception):
    """The work deadline passed (or the run was cancelled): stop where you are."""


class Clock:
    """The whole-run deadline, the earlier work deadline and a cancel flag for workers.

    The work deadline keeps back a reserve (a fifth of the timeout, at most 10 s) so the
    bundle can still be written when the logs took all the time they were given.
    """

    def __init__(self, timeout: float) -> None:
        self.start = time.monotonic()
        self.deadline = self.start + timeout
        reserve = min(10.0, timeout * 0.2)  # time kept back to write the bundle
        self.work_deadline = self.deadline - reserve
        self.inspect_deadline = self.work_deadline
        self.cancel = threading.Event()

    def remaining(self) -> float:
        return self.work_deadline - time.monotonic()

    def start_inspect(self) -> None:
        # A hung inspect must not eat the whole budget: logs need most of it.
        left = self.remaining()
        self.inspect_deadline = time.monotonic() + min(left, max(5.0, 0.25 * left))

    def inspect_remaining(self) -> float:
        return min(self.remaining(), self.inspect_deadline - time.monotonic())

    def check(self) -> None:
        if self.cancel.is_set() or time.monotonic() >= self.work_deadline:
            raise DeadlineReached()

    def elapsed(self) -> float:
        return time.monotonic() - self.start
