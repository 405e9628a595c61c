"""Reading every container's log into its spool: one worker thread per container.

A worker reads the json-file/local files directly when they are readable here, else
the Engine API; either way the records go through one ``LineBuilder`` (same bytes on
both paths), are redacted in batches and handed to the container's spool, so memory
stays at about one batch per worker. At the work deadline unfinished workers are
frozen where they are: their lines so far still go into the bundle, and they are
recorded as failed. A vanished or hung container never stops the others.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rollback_pm import log as rlog
from rollback_pm.evidence import client as engine
from rollback_pm.evidence.clock import GRACE, Clock, DeadlineReached
from rollback_pm.evidence.documents import Documents
from rollback_pm.evidence.evdir import MIB, EvidenceDir
from rollback_pm.evidence.files import (
    FastPathUnavailable,
    LogFiles,
    ReadStats,
    open_log_files,
    read_json_file,
    read_local,
)
from rollback_pm.evidence.lines import TS_LEN, ApiDemux, LineBuilder, StreamError
from rollback_pm.evidence.spool import Spool, SpoolFrozen, SpoolWriteError
from rollback_pm.evidence.types import CollectOptions, ContainerResult
from rollback_pm.redact import LogRedactor

SWITCH_INTERVAL = 0.0005

_gil_lock = threading.Lock()
_gil_users = 0
_gil_previous = 0.005


@contextmanager
def _quick_gil_handover() -> Iterator[None]:
    """While an Engine API stream is read, hand the GIL over every 0.5 ms instead of 5.

    The socket's reader thread then gets back to it before the engine's socket buffer
    (about a millisecond of output) fills and the engine waits. Only then: with several
    parsing threads and nothing to wait for (the file path), quicker hand-overs cost time.
    """
    global _gil_users, _gil_previous
    with _gil_lock:
        if _gil_users == 0:
            _gil_previous = sys.getswitchinterval()
            sys.setswitchinterval(min(_gil_previous, SWITCH_INTERVAL))
        _gil_users += 1
    try:
        yield
    finally:
        with _gil_lock:
            _gil_users -= 1
            if _gil_users == 0:
                sys.setswitchinterval(_gil_previous)


def since_text(since: datetime | None) -> str | None:
    """``since`` in the bundle's timestamp form, to compare with each line's timestamp."""
    if since is None:
        return None
    since = since.astimezone(timezone.utc) if since.tzinfo else since.replace(tzinfo=timezone.utc)
    return since.strftime("%Y-%m-%dT%H:%M:%S.") + f"{since.microsecond:06d}000Z"


@dataclass
class LogOutcome:
    """What one worker found; the main thread alone copies it into the container's result."""

    ok: bool = False
    error: str | None = None
    path_used: str = ""
    log_driver: str = ""
    notes: list[str] = field(default_factory=list)
    redaction: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ApiLogs:
    """How the Engine API path reads a log: a container's (the default), or another source's.

    A Swarm task's logs come from a manager's ``/tasks/{id}/logs``, asked with ``details``
    so the node's attributes arrive, and ``data`` takes those attributes off each message.
    """

    endpoint: str = "containers"
    details: bool = False
    data: Callable[[bytes], bytes] | None = None  # rewrites each record's data (see ApiDemux)


FileOpener = Callable[[dict[str, Any]], LogFiles]
"""Opens a container's log files from its inspect document; FastPathUnavailable says why not."""


def live_files(client: engine.APIClient) -> FileOpener:
    """The engine's own log files, when the engine runs on this host."""

    def open_files(doc: dict[str, Any]) -> LogFiles:
        if not engine.is_local_engine(client):
            raise FastPathUnavailable(f"the engine at {engine.engine_location(client)} is not on this host")
        return open_log_files(doc)

    return open_files


class LogReader:
    """Reads one container's log into its spool; shared by the worker threads."""

    def __init__(
        self,
        options: CollectOptions,
        clock: Clock,
        client: engine.APIClient | None,
        where: Path,
        workers: int = 1,
        open_files: FileOpener | None = None,
        api: ApiLogs | None = None,
    ) -> None:
        self.options = options
        self.api = api or ApiLogs()
        self.clock = clock
        self.client = client
        self.where = where  # the directory the spools are in, for error messages
        self.open_files = open_files
        self.since = since_text(options.since)
        # Memory is about a few batches per worker: smaller batches when more run at once.
        self.batch = min(MIB, max(128 * 1024, MIB // max(1, workers)))

    def read(
        self, outcome: LogOutcome, name: str, ident: str, doc: dict[str, Any], spool: Spool, known: set[str]
    ) -> None:
        """Worker: fill ``outcome``."""
        builder = LineBuilder(name)
        redactor = LogRedactor(known, head_len=builder.prefix_len + TS_LEN + 1, stream_len=builder.prefix_len - 1)
        outcome.log_driver = ((doc.get("HostConfig") or {}).get("LogConfig") or {}).get("Type") or ""

        def emit(data: bytes) -> None:
            if data:
                spool.write(redactor.batch(data))

        try:
            files = None
            if self.options.fast_path != "never" and self.open_files is not None:
                try:
                    files = self.open_files(doc)
                except FastPathUnavailable as exc:
                    if self.options.fast_path == "always":
                        raise engine.EngineError(f"fast path not possible: {exc}") from None
                    outcome.notes.append(f"read through the Engine API: {exc}")
            if files is not None:
                outcome.path_used = files.driver
                self._files(files, builder, emit, outcome)
            else:
                outcome.path_used = "api"
                self._api_logs(ident, doc, builder, emit)
            builder.finish()
            emit(builder.take())
            outcome.ok = True
        except (DeadlineReached, SpoolFrozen):
            outcome.error = (
                f"deadline reached after {self.clock.elapsed():.1f}s; the log holds what was read until then"
            )
            self._flush_partial(builder, emit)
        except engine.ContainerGone:
            outcome.error = "container vanished (removed) before its logs were read"
        except SpoolWriteError as exc:
            outcome.error = f"writing its log to {self.where} failed: {exc}"
        except OSError as exc:  # reading the engine's log files
            outcome.error = f"reading its log files failed: {exc.strerror or exc}"
            self._flush_partial(builder, emit)
        except (engine.EngineError, StreamError) as exc:
            if self.clock.remaining() <= 0:
                outcome.error = f"deadline reached after {self.clock.elapsed():.1f}s ({exc}); the log holds what was read until then"
            else:
                outcome.error = str(exc)
            self._flush_partial(builder, emit)
        finally:
            outcome.notes.extend(spool.notes)
            outcome.redaction = dict(redactor.counts)

    def _files(self, files: LogFiles, builder: LineBuilder, emit: Callable[[bytes], None], outcome: LogOutcome) -> None:
        stats = ReadStats()
        try:
            reader = read_json_file if files.driver == "json-file" else read_local
            reader(files, builder, self.since, emit, self.clock.check, stats, self.batch)
        finally:
            files.close()
        if stats.bad_lines:
            outcome.notes.append(f"{stats.bad_lines} unreadable log records skipped")
        for path in stats.bad_files:
            outcome.notes.append(f"{path} could not be read to its end (corrupt?); the rest was collected")

    @staticmethod
    def _flush_partial(builder: LineBuilder, emit: Callable[[bytes], None]) -> None:
        try:
            builder.finish()
            emit(builder.take())
        except (SpoolFrozen, SpoolWriteError):
            pass

    def _api_logs(self, ident: str, doc: dict[str, Any], builder: LineBuilder, emit: Callable[[bytes], None]) -> None:
        if self.client is None:
            raise engine.EngineError("no engine to read its logs from")
        self.clock.check()
        tty = bool((doc.get("Config") or {}).get("Tty"))
        body = engine.open_logs(
            self.client,
            ident,
            since=self.options.since,
            timeout=self.clock.remaining(),
            read_size=self.batch,
            endpoint=self.api.endpoint,
            details=self.api.details,
        )
        try:
            with _quick_gil_handover():
                self._api_stream(body, tty, builder, emit)
        finally:
            body.close()

    def _api_stream(self, body: Any, tty: bool, builder: LineBuilder, emit: Callable[[bytes], None]) -> None:
        demux = ApiDemux(builder, tty, self.api.data)
        while True:
            self.clock.check()
            block = body.read(timeout=self.clock.remaining())
            if not block:
                break
            demux.feed(block)
            emit(builder.take())
        demux.end()


@dataclass
class LogJob:
    """One container's log: its result, its spool and what its worker found."""

    result: ContainerResult
    spool: Spool
    outcome: LogOutcome
    future: Future[None] | None = None


def read_logs(
    pool: Executor,
    reader: LogReader,
    results: list[ContainerResult],
    raw_docs: dict[str, dict[str, Any]],
    documents: Documents,
    evdir: EvidenceDir,
    bundle: str,
    spools: list[Spool],
) -> tuple[list[LogJob], bool]:
    """Read the logs of every container whose document was redacted; (jobs, deadline reached).

    Each new spool is appended to ``spools`` as soon as it exists, so the caller can
    close them whatever happens here.
    """
    options, clock = reader.options, reader.clock
    floor = options.min_free_mb * MIB
    logger = rlog.get_logger("rollback_pm.evidence")
    jobs: list[LogJob] = []
    for index, result in enumerate(results):
        if result.id not in documents.redacted:
            continue
        spool = Spool(
            evdir, bundle, f"c{index}", options.max_bytes_per_container, floor, sync_early=len(documents.redacted) == 1
        )
        spools.append(spool)
        job = LogJob(result, spool, LogOutcome())
        job.future = pool.submit(
            reader.read, job.outcome, result.name, result.id, raw_docs[result.id], spool, documents.known
        )
        jobs.append(job)
    futures = [job.future for job in jobs if job.future is not None]
    _, pending = wait(futures, timeout=max(0.0, clock.remaining()) + GRACE)
    deadline_hit = False
    if pending:
        deadline_hit = True
        clock.cancel.set()
    for job in jobs:
        future, result, outcome = job.future, job.result, job.outcome
        assert future is not None
        if future in pending:
            job.spool.freeze()
            started = not future.cancel()
            result.ok = False
            result.error = (
                f"deadline reached after {clock.elapsed():.1f}s; the log holds what was read until then"
                if started
                else "not collected: the deadline came before its turn (raise --timeout or --parallel)"
            )
        elif (exc := future.exception()) is not None:  # a bug, not an expected failure: record it, keep the others
            result.ok, result.error = False, f"internal error: {type(exc).__name__}: {exc}"
            logger.error("evidence.worker_failed", container=result.name, error=repr(exc))
        else:
            result.ok, result.error = outcome.ok, outcome.error
        result.path_used, result.log_driver = outcome.path_used, outcome.log_driver
        result.notes = list(outcome.notes)
        result.redaction = dict(outcome.redaction)
    if any(r.error and r.error.startswith("deadline") for r in results):
        deadline_hit = True
    return jobs, deadline_hit
