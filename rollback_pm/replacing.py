"""After the rollback: the replacing version's recent logs, as the yardstick for "new".

The finalize phase runs once the rollback has replaced the failed containers, so the
same selection now finds the version that replaced them. Their recent logs, read through
the evidence client and redacted by the same rules as the bundle (the secrets of their
own inspect documents known first), become a ``signals.Baseline``: a signal of the bad
version whose template the replacing version also logs is recurring noise, not news.

It is bounded like the collection: only running containers that are not in the evidence
(in a one-phase hook the selection can still find the failed ones), at most
``MAX_CONTAINERS`` of them, the newest ``MAX_BYTES`` of each from the last ``RECENT``,
within the time left of the run's ``--timeout``. Nothing is written to disk; the lines
are read and dropped, only their templates stay. A baseline that cannot be read (no
engine, nothing selected, nothing running) is not an error: the draft then says that
nothing was compared.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import docker

from rollback_pm.errors import RollbackPmError
from rollback_pm.evidence import Selection, docker_client, select_containers
from rollback_pm.evidence import client as engine
from rollback_pm.evidence.lines import TS_LEN, ApiDemux, LineBuilder, StreamError
from rollback_pm.evidence.select import container_name
from rollback_pm.log import get_logger
from rollback_pm.redact import LogRedactor, redact_documents
from rollback_pm.signals import Baseline
from rollback_pm.timeutil import parse_ts

log = get_logger(__name__)

MAX_CONTAINERS = 16
MAX_BYTES = 2 << 20  # per container, newest kept
RECENT = timedelta(hours=1)
READ_SIZE = 256 << 10
MIN_SECONDS = 1.0  # less time left than this: not worth a read


@dataclass(frozen=True)
class BaselineRead:
    baseline: Baseline | None
    note: str  # what was read, or why nothing was


def read_baseline(
    selection: Selection,
    docker_host: str | None,
    *,
    exclude: Iterable[str],
    seconds: float,
    now: datetime,
) -> BaselineRead:
    """The replacing containers' recent logs as a Baseline, or why there is none."""
    if seconds < MIN_SECONDS:
        return BaselineRead(None, "no time left of --timeout to read the replacing version's logs")
    deadline = time.monotonic() + seconds
    excluded = set(exclude)
    try:
        client = docker_client(docker_host, timeout=min(30.0, seconds))
        summaries = [
            s
            for s in select_containers(client, replace(selection, all_states=False))
            if s.get("Id") not in excluded and s.get("State") == "running"
        ][:MAX_CONTAINERS]
        if not summaries:
            return BaselineRead(None, "no replacing container is running under the same selection")
        # Scanned as each container is read: one container's 2 MiB in memory, not all 16.
        names: list[str] = []
        baseline = Baseline.from_chunks(_read_all(client, summaries, deadline, now, names), "")
    except RollbackPmError as exc:
        return BaselineRead(None, f"the replacing version's logs were not read: {exc}")
    except docker.errors.DockerException as exc:
        return BaselineRead(None, f"the replacing version's logs were not read: {type(exc).__name__}")
    if not names:
        return BaselineRead(None, "the replacing containers' logs could not be read in time")
    source = f"the recent logs of {', '.join(names)}"
    baseline = replace(baseline, source=source)
    log.info("baseline read", containers=len(names), lines=baseline.lines, templates=len(baseline.keys))
    return BaselineRead(baseline, source)


def _read_all(
    client: docker.APIClient, summaries: list[dict[str, Any]], deadline: float, now: datetime, names: list[str]
) -> Iterator[bytes]:
    """Each readable container's recent lines in turn; ``names`` gets the name of each one read."""
    docs: dict[str, dict[str, Any]] = {}
    for summary in summaries:
        ident = str(summary["Id"])
        try:
            docs[ident] = engine.inspect_container(client, ident, timeout=max(0.05, deadline - time.monotonic()))
        except (engine.ContainerGone, engine.EngineError):
            continue
    # Their own secrets are known before a line is read, as in a collection.
    _, redactor, _ = redact_documents(list(docs.values()))
    known = set(redactor.found)
    for summary in summaries:
        ident = str(summary["Id"])
        if ident not in docs or time.monotonic() >= deadline:
            continue
        name = container_name(summary)
        try:
            kept = _recent_lines(client, ident, name, docs[ident], known, deadline, now)
        except (engine.ContainerGone, engine.EngineError, StreamError) as exc:
            log.info("baseline container not read", container=name, reason=str(exc))
            continue
        names.append(name)
        yield from kept


def _recent_lines(
    client: docker.APIClient,
    ident: str,
    name: str,
    doc: dict[str, Any],
    known: set[str],
    deadline: float,
    now: datetime,
) -> list[bytes]:
    """The container's newest MAX_BYTES of bundle-format lines since RECENT ago (or its start), redacted."""
    builder = LineBuilder(name)
    redactor = LogRedactor(known, head_len=builder.prefix_len + TS_LEN + 1, stream_len=builder.prefix_len - 1)
    created = parse_ts(doc.get("Created"))
    since = max(now - RECENT, created) if created else now - RECENT
    tty = bool((doc.get("Config") or {}).get("Tty"))
    kept: deque[bytes] = deque()
    size = 0

    def keep(data: bytes) -> None:
        nonlocal size
        if not data:
            return
        kept.append(redactor.batch(data))
        size += len(kept[-1])
        while len(kept) > 1 and size - len(kept[0]) >= MAX_BYTES:
            size -= len(kept.popleft())

    body = engine.open_logs(client, ident, since=since, timeout=deadline - time.monotonic(), read_size=READ_SIZE)
    try:
        demux = ApiDemux(builder, tty)
        while time.monotonic() < deadline:
            try:
                block = body.read(timeout=deadline - time.monotonic())
            except engine.EngineError:
                if time.monotonic() < deadline:
                    raise
                break  # the deadline: what was read stays
            if not block:
                demux.end()
                break
            demux.feed(block)
            keep(builder.take())
        builder.finish()
        keep(builder.take())
    finally:
        body.close()
    return list(kept)
