"""`rollback-pm watch`: follow a Swarm manager's events and record every rollback Swarm makes."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

import click

from rollback_pm.commands.hook import summary_lines
from rollback_pm.config import Settings
from rollback_pm.errors import EXIT_DEGRADED, EXIT_OK
from rollback_pm.hook import HookState
from rollback_pm.log import get_logger
from rollback_pm.memory import bound_heap
from rollback_pm.swarm_hook import selection_of
from rollback_pm.watch import Watcher, WatchOptions

log = get_logger(__name__)


def watch(settings: Settings, *, once: bool = False) -> int:
    """Exit 0, or 3 when (with --once) a rollback was recorded degraded."""
    bound_heap()  # a long-lived process: what each rollback's buffers held leaves it when freed
    stop = threading.Event()

    def show(result: HookState) -> None:
        for line in summary_lines(result):
            click.echo(line)
        click.echo("")

    options = WatchOptions(once=once, lookback=settings.watch_lookback, selection=selection_of(settings))
    with _stop_on_signals(stop):
        report = Watcher(settings, options, stop=stop, on_result=show).run()
    if once:
        click.echo(f"{report.handled} rollback(s) recorded, {report.events} service event(s) read")
    return EXIT_DEGRADED if report.degraded else EXIT_OK


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM or Ctrl-C: finish the rollback in hand, then stop; a second one stops at once
    (KeyboardInterrupt: temps removed, locks released, as any command on SIGTERM)."""

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():  # a second signal: do not wait for the rollback in hand
            raise KeyboardInterrupt
        log.warning("watch.stopping", signal=signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
