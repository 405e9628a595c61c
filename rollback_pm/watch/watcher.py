"""``rollback-pm watch``: follow a Swarm manager's service events and record every rollback.

When a service update ends in a rollback, Swarm emits service events with
``updatestate.new`` = ``rollback_started`` (its own, after failed tasks, or a manual
``docker service rollback``), then ``rollback_completed`` (or ``rollback_paused``). The
watcher runs the Swarm hook for that service (``swarm_hook.handle``):

- at ``rollback_started``, evidence first, before Swarm replaces the failed tasks: the
  bundle is parked in the ledger under the rollback's identity;
- at ``rollback_completed`` / ``rollback_paused``, the finalize stages: incident, draft,
  ticket (collecting then if nothing was parked: late evidence beats none).

Exactly one incident per rollback: the identity is Swarm's (service id + the update's
start), every rollback is handled under a file lock keyed by it, and the ledger says what
is done, so a replayed event, a restarted watcher, a second watcher sharing the state dir
and a pipeline's ``hook --swarm-service`` all land on the same incident. The watcher
resumes from its checkpoint (``checkpoint.py``) with ``since``; because the engine keeps
only its last 256 events (none across a dockerd restart), it also looks at every
service's UpdateStatus when it (re)connects, so a rollback missed by the stream is still
found. A replayed event about a service that no longer exists is logged and skipped.

Memory stays bounded: events are handled one at a time as they arrive, and only a fixed
number of recently handled events is remembered.
"""

from __future__ import annotations

import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import docker

from rollback_pm import hook, swarm_hook
from rollback_pm.config import Settings
from rollback_pm.errors import DockerUnavailable, RollbackPmError
from rollback_pm.ledger import Ledger
from rollback_pm.log import get_logger
from rollback_pm.swarm import api, facts, snapshot
from rollback_pm.swarm.events import ServiceEvent
from rollback_pm.swarm.select import SwarmSelection, service_name, service_stack
from rollback_pm.timeutil import utcnow
from rollback_pm.watch.checkpoint import Checkpoint, ns_of, time_of
from rollback_pm.watch.stream import StreamBroken, read_window

log = get_logger(__name__)
SEEN_MAX = 4096  # recently handled events remembered (memory bound)
PERSIST_EVERY = 30.0  # seconds between checkpoint writes when no event was handled
OVERLAP_NS = 10_000_000_000  # consecutive windows overlap by 10 s (clock skew between us and the engine)


@dataclass
class WatchOptions:
    once: bool = False  # handle what is pending since the checkpoint, then return
    lookback: float = 3600.0  # with no checkpoint: how far back to look (seconds)
    window: float = 2.0  # seconds per events request
    backoff_initial: float = 1.0
    backoff_max: float = 30.0
    selection: SwarmSelection | None = None  # only these services (None: all)


@dataclass
class WatchReport:
    handled: int = 0
    degraded: int = 0
    events: int = 0
    reconnects: int = 0
    results: list[hook.HookState] = field(default_factory=list)  # --once only (bounded by the run)


Connect = Callable[[Settings], tuple[docker.APIClient, dict[str, Any]]]


class Watcher:
    def __init__(
        self,
        settings: Settings,
        options: WatchOptions,
        *,
        stop: threading.Event | None = None,
        connect: Connect | None = None,
        on_result: Callable[[hook.HookState], None] | None = None,
    ) -> None:
        self.settings = settings
        self.options = options
        self.stop = stop or threading.Event()
        self.connect: Connect = connect or swarm_hook.connect
        self.on_result = on_result
        self.report = WatchReport()
        self.checkpoint = Checkpoint.load(settings.state_dir)
        self._seen: OrderedDict[tuple[int, str, str, str], None] = OrderedDict()
        self._persisted = time.monotonic()

    # --- the loop ------------------------------------------------------------------------

    def run(self) -> WatchReport:
        """Follow the events until ``stop`` is set (or, with ``once``, until now). Raises
        NotAManager / DockerUnavailable when the first connection fails."""
        since_ns = self.checkpoint.since_ns or ns_of(utcnow() - timedelta(seconds=self.options.lookback))
        backoff = self.options.backoff_initial
        first = True
        while not self.stop.is_set():
            try:
                client, info = self.connect(self.settings)
            except (DockerUnavailable, api.NotAManager) as exc:
                if first or self.options.once:
                    raise
                self._pause(backoff, "watch.reconnect_failed", str(exc))
                backoff = min(backoff * 2, self.options.backoff_max)
                continue
            if not first:
                self.report.reconnects += 1
                log.info("watch.reconnected", engine=str(client.base_url))
            first = False
            try:
                since_ns = self._follow(client, info, since_ns)
                backoff = self.options.backoff_initial
                if self.options.once:
                    break
            except (StreamBroken, DockerUnavailable) as exc:
                if self.options.once:
                    raise DockerUnavailable(f"the event stream failed: {exc}") from None
                self._pause(backoff, "watch.stream_lost", str(exc))
                backoff = min(backoff * 2, self.options.backoff_max)
            finally:
                client.close()
        if self.checkpoint.since_ns is None or since_ns > self.checkpoint.since_ns:
            self.checkpoint.advance(since_ns)
        log.info("watch.stopped", handled=self.report.handled, events=self.report.events)
        return self.report

    def _pause(self, seconds: float, event: str, reason: str) -> None:
        wait = seconds * random.uniform(0.8, 1.2)  # spread the reconnects of several watchers
        log.warning(event, reason=reason, retry_in_s=round(wait, 1))
        self.stop.wait(wait)

    def _follow(self, client: docker.APIClient, info: dict[str, Any], since_ns: int) -> int:
        """Catch up (replay + every service's state), then follow; returns where it got to."""
        start = since_ns
        if self.options.once:
            until_ns = ns_of(utcnow())
            self._window(client, info, since_ns, until_ns)
            self._reconcile(client, info, start)
            self.checkpoint.advance(until_ns)
            return until_ns
        reconciled = False
        while not self.stop.is_set():
            began = time.monotonic()
            until_ns = ns_of(utcnow()) + int(self.options.window * 1e9)
            reached = self._window(client, info, since_ns, until_ns)
            # The next window overlaps this one (its events are recognised as seen): an
            # engine whose clock is behind ours then loses no event between the two.
            since_ns = reached if self.stop.is_set() else max(since_ns, until_ns - OVERLAP_NS)
            quick = time.monotonic() - began
            if quick < self.options.window / 2:  # an engine clock ahead of ours ends windows at once
                self.stop.wait(self.options.window - quick)
            if not reconciled:  # after the replay: what the stream cannot replay any more
                self._reconcile(client, info, start)
                reconciled = True
                self._persist(since_ns)  # caught up
            if time.monotonic() - self._persisted >= PERSIST_EVERY:
                self._persist(since_ns)
        return since_ns

    def _window(self, client: docker.APIClient, info: dict[str, Any], since_ns: int, until_ns: int) -> int:
        for event in read_window(client, since_ns, until_ns, self.options.window):
            if event.ident in self._seen:
                continue
            self._remember(event.ident)
            self.report.events += 1
            self._on_event(client, info, event)
            self._persist(event.time_ns)
            if self.stop.is_set():
                return event.time_ns
        return max(since_ns, until_ns)

    def _remember(self, ident: tuple[int, str, str, str]) -> None:
        self._seen[ident] = None
        while len(self._seen) > SEEN_MAX:
            self._seen.popitem(last=False)

    def _persist(self, time_ns: int) -> None:
        self.checkpoint.advance(time_ns)
        self._persisted = time.monotonic()

    # --- what to do ------------------------------------------------------------------------

    def _wanted(self, service: dict[str, Any]) -> bool:
        selection = self.options.selection
        if selection is None:
            return True
        if selection.stack and service_stack(service) != selection.stack:
            return False
        if not selection.services:
            return True
        name, ident = service_name(service), str(service.get("ID", ""))
        stack = service_stack(service)
        return any(
            ref in (name, ident) or (stack and name == f"{stack}_{ref}") or (len(ref) >= 4 and ident.startswith(ref))
            for ref in selection.services
        )

    def _on_event(self, client: docker.APIClient, info: dict[str, Any], event: ServiceEvent) -> None:
        if not event.is_rollback:
            return
        timeout = min(30.0, self.settings.timeout)
        try:
            service = api.inspect_service(client, event.service_id, timeout=timeout)
        except api.Gone:
            log.warning(
                "watch.service_gone",
                service=event.name,
                state=event.state,
                at=event.time.isoformat(),
                reason="the service was removed before its rollback could be examined; nothing to collect",
            )
            return
        if not self._wanted(service):
            return
        snap = snapshot.take(client, [service], timeout=timeout)[0]
        if facts.belongs_to_current(service, event):
            state = (service.get("UpdateStatus") or {}).get("State")
            phase = "collect" if event.state == "rollback_started" and state == "rollback_started" else "finalize"
            self._handle(client, info, swarm_hook.Rollback(snap, facts.rollback_key(service), event), phase)
            return
        with Ledger(self.settings.state_dir) as ledger:
            if swarm_hook.incident_for_event(ledger, event) is not None:
                return  # a replayed event of a rollback already recorded
        if event.state != "rollback_started":
            log.warning(
                "watch.rollback_missed",
                service=event.name,
                state=event.state,
                at=event.time.isoformat(),
                reason="the service has moved on and its rollback_started event is gone; nothing left to examine",
            )
            return
        self._handle(client, info, swarm_hook.Rollback(snap, facts.event_key(event), event, stale=True), "both")

    def _reconcile(self, client: docker.APIClient, info: dict[str, Any], since_ns: int) -> None:
        """Every service in a rollback state the stream may not have shown (buffer lost, restart)."""
        since = time_of(since_ns) - facts.EVENT_SLACK
        timeout = min(30.0, self.settings.timeout)
        for service in api.list_services(client, timeout=timeout):
            key = facts.rollback_key(service)
            update = facts.update_status(service)
            if key is None or update is None or not self._wanted(service):
                continue
            latest = update.completed_at or update.started_at
            if update.state != "rollback_started" and (latest is None or latest < since):
                continue
            snap = snapshot.take(client, [service], timeout=timeout)[0]
            phase = "collect" if update.state == "rollback_started" else "finalize"
            self._handle(client, info, swarm_hook.Rollback(snap, key), phase)

    def _handle(
        self, client: docker.APIClient, info: dict[str, Any], rollback: swarm_hook.Rollback, phase: str
    ) -> None:
        try:
            result = swarm_hook.handle(self.settings, client, info, rollback, phase, skip_done=True)
        except (api.Gone, api.SwarmApiError) as exc:
            log.warning("watch.rollback_not_examined", service=rollback.snap.name, reason=str(exc))
            return
        except RollbackPmError as exc:
            if isinstance(exc, DockerUnavailable):
                raise
            # Bad configuration or a broken state dir: every later rollback would fail alike.
            log.error("watch.rollback_failed", service=rollback.snap.name, error=str(exc))
            raise
        if result is None:
            log.info("watch.already_done", service=rollback.snap.name, phase=phase)
            return
        self.report.handled += 1
        if result.degraded:
            self.report.degraded += 1
        if self.options.once:
            self.report.results.append(result)
        log.info("watch.handled", service=rollback.snap.name, phase=phase, degraded=bool(result.degraded))
        if self.on_result is not None:
            self.on_result(result)
