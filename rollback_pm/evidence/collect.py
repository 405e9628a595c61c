"""``collect``: select, inspect, stream logs, redact, write the bundle, within a deadline.

Order of work, and why:

1. Check the evidence directory (exists or is created 0750, not a symlink, writable,
   above the free-space floor) before touching Docker: a full disk is the commonest way
   to lose evidence and the cheapest to detect.
2. One list call selects the containers.
3. Inspect every container (and its image) in parallel, then redact all documents
   together: secrets found in any container's config are then known before any log
   line is read, so they are masked in every log.
4. Stream logs in parallel (``parallel`` workers): the json-file/local files directly
   when they are readable here, else the Engine API. Each worker formats, redacts and
   spools its container's lines; memory stays at about one 1 MiB batch per worker.
5. At the work deadline (the ``timeout`` less a reserve for writing) unfinished workers
   are frozen where they are; their lines so far still go into the bundle, and they are
   recorded as failed. A vanished or hung container never stops the others.
6. Write the log (merged by timestamp), the inspect array and, last, the manifest, each
   atomically. A bundle without a manifest is incomplete.
"""

from __future__ import annotations

import platform
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import docker
import orjson

import rollback_pm
from rollback_pm import log as rlog
from rollback_pm.errors import UsageError
from rollback_pm.evidence import client as engine
from rollback_pm.evidence.evdir import MIB, EvidenceDir, temp_name
from rollback_pm.evidence.files import FastPathUnavailable, ReadStats, open_log_files, read_json_file, read_local
from rollback_pm.evidence.lines import TS_LEN, ApiDemux, LineBuilder, StreamError
from rollback_pm.evidence.merge import Source, allowances, write_log
from rollback_pm.evidence.redact import LogRedactor, redact_documents
from rollback_pm.evidence.select import container_name, resolve
from rollback_pm.evidence.spool import Spool, SpoolFrozen, SpoolWriteError
from rollback_pm.evidence.types import BundleResult, CollectOptions, ContainerResult, Selection
from rollback_pm.models import EvidenceFile
from rollback_pm.timeutil import iso, stamp, utcnow

SUFFIXES = (".log", ".inspect.json", ".manifest.json")
MANIFEST_SCHEMA = 1
_GRACE = 2.0  # seconds a worker gets past the work deadline to notice it
SWITCH_INTERVAL = 0.0005


class DeadlineReached(Exception):
    pass


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


@dataclass
class _LogOutcome:
    ok: bool = False
    error: str | None = None
    path_used: str = ""
    log_driver: str = ""
    notes: list[str] = field(default_factory=list)
    redaction: dict[str, int] = field(default_factory=dict)


class _Clock:
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


def _validate(options: CollectOptions) -> None:
    if options.fast_path not in ("auto", "never", "always"):
        raise UsageError(f"fast path {options.fast_path!r} is not one of auto, never, always")
    if options.parallel < 1:
        raise UsageError("--parallel must be at least 1")
    if options.timeout <= 0:
        raise UsageError("--timeout must be more than 0 seconds")
    if options.max_bytes_per_container < 0 or (options.max_total_bytes is not None and options.max_total_bytes < 0):
        raise UsageError("byte caps cannot be negative")
    if options.min_free_mb < 0:
        raise UsageError("--min-free-mb cannot be negative")


def _since_text(since: datetime | None) -> str | None:
    if since is None:
        return None
    since = since.astimezone(timezone.utc) if since.tzinfo else since.replace(tzinfo=timezone.utc)
    return since.strftime("%Y-%m-%dT%H:%M:%S.") + f"{since.microsecond:06d}000Z"


def _image_summary(doc: dict[str, Any]) -> dict[str, Any]:
    config = doc.get("Config") or {}
    return {
        "Id": doc.get("Id"),
        "RepoTags": doc.get("RepoTags") or [],
        "RepoDigests": doc.get("RepoDigests") or [],
        "Created": doc.get("Created"),
        "Labels": config.get("Labels") or {},
    }


class _Run:
    """State of one collection, shared by the worker threads."""

    def __init__(
        self,
        selection: Selection,
        options: CollectOptions,
        client: docker.APIClient,
        evdir: EvidenceDir,
        bundle: str,
        clock: _Clock,
        workers: int = 1,
    ) -> None:
        self.selection = selection
        self.options = options
        self.client = client
        self.evdir = evdir
        self.bundle = bundle
        self.clock = clock
        self.local_engine = engine.is_local_engine(client)
        self.since = _since_text(options.since)
        self.floor = options.min_free_mb * MIB
        # Memory is about a few batches per worker: smaller batches when more run at once.
        self.batch = min(MIB, max(128 * 1024, MIB // max(1, workers)))
        self.log = rlog.get_logger("rollback_pm.evidence")

    # --- inspect -----------------------------------------------------------------------

    def inspect(self, ident: str) -> dict[str, Any]:
        return engine.inspect_container(self.client, ident, timeout=max(0.05, self.clock.inspect_remaining()))

    def inspect_image(self, ident: str) -> dict[str, Any]:
        return _image_summary(
            engine.inspect_image(self.client, ident, timeout=max(0.05, self.clock.inspect_remaining()))
        )

    # --- logs --------------------------------------------------------------------------

    def logs(
        self, outcome: _LogOutcome, name: str, ident: str, doc: dict[str, Any], spool: Spool, known: set[str]
    ) -> None:
        """Worker: fill ``outcome``; the main thread alone copies it into the result."""
        builder = LineBuilder(name)
        redactor = LogRedactor(known, head_len=builder.prefix_len + TS_LEN + 1, stream_len=builder.prefix_len - 1)
        outcome.log_driver = ((doc.get("HostConfig") or {}).get("LogConfig") or {}).get("Type") or ""

        def emit(data: bytes) -> None:
            if data:
                spool.write(redactor.batch(data))

        try:
            files = None
            if self.options.fast_path != "never":
                try:
                    if not self.local_engine:
                        raise FastPathUnavailable(
                            f"the engine at {engine.engine_location(self.client)} is not on this host"
                        )
                    files = open_log_files(doc)
                except FastPathUnavailable as exc:
                    if self.options.fast_path == "always":
                        raise engine.EngineError(f"fast path not possible: {exc}") from None
                    outcome.notes.append(f"read through the Engine API: {exc}")
            if files is not None:
                outcome.path_used = files.driver
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
            outcome.error = f"writing its log to {self.evdir.path} failed: {exc}"
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

    @staticmethod
    def _flush_partial(builder: LineBuilder, emit: Any) -> None:
        try:
            builder.finish()
            emit(builder.take())
        except (SpoolFrozen, SpoolWriteError):
            pass

    def _api_logs(self, ident: str, doc: dict[str, Any], builder: LineBuilder, emit: Any) -> None:
        self.clock.check()
        tty = bool((doc.get("Config") or {}).get("Tty"))
        body = engine.open_logs(
            self.client, ident, since=self.options.since, timeout=self.clock.remaining(), read_size=self.batch
        )
        try:
            with _quick_gil_handover():
                self._api_stream(body, tty, builder, emit)
        finally:
            body.close()

    def _api_stream(self, body: Any, tty: bool, builder: LineBuilder, emit: Any) -> None:
        demux = ApiDemux(builder, tty)
        while True:
            self.clock.check()
            block = body.read(timeout=self.clock.remaining())
            if not block:
                break
            demux.feed(block)
            emit(builder.take())
        demux.end()


def _result_for(summary: dict[str, Any]) -> ContainerResult:
    return ContainerResult(
        name=container_name(summary),
        id=summary.get("Id", ""),
        ok=False,
        error=None,
        truncated=False,
        original_bytes=0,
        kept_bytes=0,
        path_used="",
        image=summary.get("Image", ""),
        state=summary.get("State", ""),
    )


def collect(
    selection: Selection,
    options: CollectOptions,
    *,
    client: docker.APIClient | None = None,
    now: datetime | None = None,
) -> BundleResult:
    """Collect one evidence bundle. See the module docstring for the order of work.

    Raises EvidenceDirError, DockerUnavailable, NoContainersMatched (or UsageError for
    bad options). Anything that goes wrong for one container is recorded in the result
    instead, which is then ``degraded``.
    """
    _validate(options)
    clock = _Clock(options.timeout)
    now = now or utcnow()
    logger = rlog.get_logger("rollback_pm.evidence")
    timings: dict[str, float] = {}
    evdir = EvidenceDir.open(options.evidence_dir, options.min_free_mb)
    try:
        client = client or engine.docker_client(timeout=min(30.0, options.timeout))
        mark = time.monotonic()
        summaries, missing = resolve(client, selection, timeout=max(1.0, clock.remaining()))
        timings["select_s"] = time.monotonic() - mark
        bundle = evdir.reserve(stamp(now), SUFFIXES)
        try:
            return _collect(selection, options, client, evdir, bundle, clock, now, summaries, missing, timings, logger)
        finally:
            evdir.release(bundle)
    finally:
        evdir.close()


def _collect(
    selection: Selection,
    options: CollectOptions,
    client: docker.APIClient,
    evdir: EvidenceDir,
    bundle: str,
    clock: _Clock,
    now: datetime,
    summaries: list[dict[str, Any]],
    missing: list[str],
    timings: dict[str, float],
    logger: Any,
) -> BundleResult:
    results = [_result_for(s) for s in summaries]
    workers = min(options.parallel, max(1, len(results)))
    run = _Run(selection, options, client, evdir, bundle, clock, workers)
    errors = [f"--container {ref} matched no container (with the other criteria)" for ref in missing]
    deadline_hit = False
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="evidence")
    spools: list[Spool] = []
    try:
        # --- inspect ---------------------------------------------------------------------
        mark = time.monotonic()
        clock.start_inspect()
        inspect_futures = {pool.submit(run.inspect, r.id): r for r in results}
        done, pending = wait(inspect_futures, timeout=max(0.0, clock.inspect_remaining()) + _GRACE)
        raw_docs: dict[str, dict[str, Any]] = {}
        for future, result in inspect_futures.items():
            error = _future_error(future, done, "inspect")
            if error:
                result.error = error
                deadline_hit = deadline_hit or future in pending
            else:
                raw_docs[result.id] = future.result()
        image_ids = sorted({d.get("Image", "") for d in raw_docs.values() if d.get("Image")})
        image_futures = {pool.submit(run.inspect_image, i): i for i in image_ids}
        done, pending = wait(image_futures, timeout=max(0.0, clock.inspect_remaining()) + _GRACE)
        raw_images: dict[str, dict[str, Any]] = {}
        for future, image_id in image_futures.items():
            error = _future_error(future, done, "image inspect")
            if error:
                errors.append(f"image {image_id[:19]}: {error}")
            else:
                raw_images[image_id] = future.result()
        timings["inspect_s"] = time.monotonic() - mark

        # --- redact the documents (all together: a secret found in one is masked in all) --
        ordered = [r for r in results if r.id in raw_docs]
        docs_in = [raw_docs[r.id] for r in ordered] + [raw_images[i] for i in raw_images]
        docs_out, doc_redactor, doc_errors = redact_documents(docs_in)
        for secret in doc_redactor.found:
            rlog.register_secret(secret)
        known = set(doc_redactor.found)
        inspect_docs: list[dict[str, Any]] = []
        image_docs: dict[str, dict[str, Any]] = {}
        for index, image_id in enumerate(raw_images):
            position = len(ordered) + index
            if docs_out[position] is not None:
                image_docs[image_id] = docs_out[position]
            else:
                errors.append(
                    f"image {image_id[:19]}: redaction failed ({type(doc_errors[position]).__name__}); summary not written"
                )
        redacted: dict[str, dict[str, Any]] = {}
        for index, result in enumerate(ordered):
            doc = docs_out[index]
            if doc is None:
                result.error = f"redaction of its inspect document failed ({type(doc_errors[index]).__name__}); document and logs not written"
                continue
            doc = dict(doc)
            if doc.get("Image") in image_docs:
                doc["ImageSummary"] = image_docs[doc["Image"]]
            redacted[result.id] = doc
            inspect_docs.append(doc)

        # --- logs ------------------------------------------------------------------------
        mark = time.monotonic()
        log_futures: dict[Future[None], tuple[ContainerResult, Spool, _LogOutcome]] = {}
        for index, result in enumerate(results):
            if result.id not in redacted:
                continue
            spool = Spool(
                evdir, bundle, f"c{index}", options.max_bytes_per_container, run.floor, sync_early=len(redacted) == 1
            )
            spools.append(spool)
            outcome = _LogOutcome()
            log_future = pool.submit(run.logs, outcome, result.name, result.id, raw_docs[result.id], spool, known)
            log_futures[log_future] = (result, spool, outcome)
        _, logs_pending = wait(log_futures, timeout=max(0.0, clock.remaining()) + _GRACE)
        if logs_pending:
            deadline_hit = True
            clock.cancel.set()
        for log_future, (result, spool, outcome) in log_futures.items():
            if log_future in logs_pending:
                spool.freeze()
                started = not log_future.cancel()
                result.ok = False
                result.error = (
                    f"deadline reached after {clock.elapsed():.1f}s; the log holds what was read until then"
                    if started
                    else "not collected: the deadline came before its turn (raise --timeout or --parallel)"
                )
            elif log_future.exception() is not None:  # a bug, not an expected failure: record it, keep the others
                exc = log_future.exception()
                result.ok, result.error = False, f"internal error: {type(exc).__name__}: {exc}"
                logger.error("evidence.worker_failed", container=result.name, error=repr(exc))
            else:
                result.ok, result.error = outcome.ok, outcome.error
            result.path_used, result.log_driver = outcome.path_used, outcome.log_driver
            result.notes = list(outcome.notes)
            result.redaction = dict(outcome.redaction)
        if any(r.error and r.error.startswith("deadline") for r in results):
            deadline_hit = True
        timings["logs_s"] = time.monotonic() - mark

        # --- write -----------------------------------------------------------------------
        mark = time.monotonic()
        sources: list[Source] = []
        source_of: dict[str, Source] = {}
        for result, spool, _ in log_futures.values():
            spool.freeze()
            try:
                spool.drain()  # the writer threads finish what was handed to them
            except SpoolWriteError as exc:
                result.ok, result.error = False, f"writing its log to {evdir.path} failed: {exc}"
        sizes = [spool.kept for _, spool, _ in log_futures.values()]
        budgets = allowances(sizes, options.max_bytes_per_container, options.max_total_bytes)
        for (result, spool, _), budget in zip(log_futures.values(), budgets):
            source = Source(spool, key_offset=len(result.name.encode()) + 8)
            source.ranges = spool.plan(budget)
            sources.append(source)
            source_of[result.id] = source
        files: list[EvidenceFile] = []
        log_name = f"rollback-{bundle}.log"
        sha, size = write_log(evdir, bundle, log_name, sources)
        files.append(EvidenceFile(str(evdir.path / log_name), "log", sha, size, bundle))
        for result, spool, _ in log_futures.values():
            source = source_of[result.id]
            result.original_bytes = spool.original
            result.kept_bytes = source.written
            result.truncated = source.written < spool.original
        inspect_name = f"rollback-{bundle}.inspect.json"
        path, sha, size = evdir.write_atomic(
            inspect_name, orjson.dumps(inspect_docs, option=orjson.OPT_INDENT_2) + b"\n", temp_name(bundle, "inspect")
        )
        files.append(EvidenceFile(str(path), "inspect", sha, size, bundle))
        timings["merge_write_s"] = time.monotonic() - mark

        counts: dict[str, int] = dict(doc_redactor.counts)
        for result in results:
            for rule, count in result.redaction.items():
                counts[rule] = counts.get(rule, 0) + count
        for result in results:
            if result.error:
                errors.append(f"{result.name}: {result.error}")
        errors = [rlog.mask(e) for e in errors]
        for result in results:
            result.error = rlog.mask(result.error) if result.error else result.error
        partial = deadline_hit or bool(errors)
        timings["total_s"] = clock.elapsed()
        manifest = _manifest(
            bundle, now, selection, options, files, results, counts, timings, partial, deadline_hit, errors, client
        )
        manifest_name = f"rollback-{bundle}.manifest.json"
        path, sha, size = evdir.write_atomic(
            manifest_name, orjson.dumps(manifest, option=orjson.OPT_INDENT_2) + b"\n", temp_name(bundle, "manifest")
        )
        files.append(EvidenceFile(str(path), "manifest", sha, size, bundle))
        logger.info(
            "evidence.collected",
            bundle=bundle,
            directory=str(evdir.path),
            containers=len(results),
            failed=sum(1 for r in results if not r.ok),
            partial=partial,
            seconds=round(clock.elapsed(), 3),
        )
        for result in results:
            if not result.ok:
                logger.warning("evidence.container_incomplete", container=result.name, error=result.error)
        return BundleResult(
            bundle_id=bundle,
            files=files,
            containers=results,
            inspect_docs=inspect_docs,
            image_docs=image_docs,
            partial=partial,
            errors=errors,
            redaction_counts=counts,
            manifest=manifest,
        )
    finally:
        clock.cancel.set()
        pool.shutdown(wait=False, cancel_futures=True)
        for spool in spools:
            spool.close()


def _future_error(future: Future[Any], done: set[Future[Any]], what: str) -> str | None:
    if future not in done:
        future.cancel()
        return f"{what} did not finish before the deadline"
    exc = future.exception()
    if exc is None:
        return None
    if isinstance(exc, engine.ContainerGone):
        return f"container vanished (removed) before its {what}"
    if isinstance(exc, engine.EngineError):
        return f"{what} failed: {exc}"
    return f"{what} failed: {type(exc).__name__}: {exc}"


def _manifest(
    bundle: str,
    now: datetime,
    selection: Selection,
    options: CollectOptions,
    files: list[EvidenceFile],
    results: list[ContainerResult],
    counts: dict[str, int],
    timings: dict[str, float],
    partial: bool,
    deadline_hit: bool,
    errors: list[str],
    client: docker.APIClient,
) -> dict[str, Any]:
    return {
        "schema": MANIFEST_SCHEMA,
        "tool": {"name": "rollback-pm", "version": rollback_pm.__version__, "python": platform.python_version()},
        "bundle": bundle,
        "created_at": iso(now),
        "finished_at": iso(utcnow()),
        "host": platform.node(),
        "engine": engine.engine_location(client),
        "selection": selection.to_dict(),
        "options": {
            "since": iso(options.since) if options.since else None,
            "max_bytes_per_container": options.max_bytes_per_container,
            "max_total_bytes": options.max_total_bytes,
            "timeout_s": options.timeout,
            "min_free_mb": options.min_free_mb,
            "parallel": options.parallel,
            "fast_path": options.fast_path,
        },
        "complete": not partial,
        "partial": partial,
        "deadline_reached": deadline_hit,
        "errors": errors,
        "files": [
            {"name": f.path.rsplit("/", 1)[-1], "kind": f.kind, "sha256": f.sha256, "bytes": f.bytes} for f in files
        ],
        "containers": [r.to_dict() for r in results],
        "redaction": {"counts": dict(sorted(counts.items())), "rules": "see rollback_pm.evidence.redact"},
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
    }
