"""``collect``: select, inspect, stream logs, redact, write the bundle, within a deadline.

Order of work, and why (each phase is a module of its own):

1. Check the evidence directory (exists or is created 0750, not a symlink, writable,
   above the free-space floor) before touching Docker: a full disk is the commonest way
   to lose evidence and the cheapest to detect (``evdir``).
2. One list call selects the containers (``select``).
3. Inspect every container (and its image) in parallel, then redact all documents
   together: secrets found in any container's config are then known before any log
   line is read, so they are masked in every log (``documents``).
4. Stream logs in parallel (``parallel`` workers): the json-file/local files directly
   when they are readable here, else the Engine API. Each worker formats, redacts and
   spools its container's lines; memory stays at about one 1 MiB batch per worker
   (``logs``).
5. At the work deadline (the ``timeout`` less a reserve for writing) unfinished workers
   are frozen where they are; their lines so far still go into the bundle, and they are
   recorded as failed. A vanished or hung container never stops the others (``clock``).
6. Write the log (merged by timestamp), the inspect array and, last, the manifest, each
   atomically. A bundle without a manifest is incomplete (``bundle``, ``manifest``).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from rollback_pm.errors import UsageError
from rollback_pm.evidence import client as engine
from rollback_pm.evidence.bundle import finish_bundle, write_json_file, write_log_file
from rollback_pm.evidence.clock import Clock
from rollback_pm.evidence.documents import inspect_all, redact_all
from rollback_pm.evidence.evdir import EvidenceDir
from rollback_pm.evidence.logs import LogReader, live_files, read_logs
from rollback_pm.evidence.select import container_name, resolve
from rollback_pm.evidence.spool import Spool
from rollback_pm.evidence.types import BundleResult, CollectOptions, ContainerResult, Selection
from rollback_pm.interrupt import unwind_on_sigterm
from rollback_pm.memory import give_back
from rollback_pm.timeutil import stamp, utcnow

SUFFIXES = (".log", ".inspect.json", ".manifest.json")


def validate(options: CollectOptions) -> None:
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


def result_for(summary: dict[str, Any]) -> ContainerResult:
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
    client: engine.APIClient | None = None,
    now: datetime | None = None,
) -> BundleResult:
    """Collect one evidence bundle. See the module docstring for the order of work.

    Raises EvidenceDirError, DockerUnavailable, NoContainersMatched (or UsageError for
    bad options). Anything that goes wrong for one container is recorded in the result
    instead, which is then ``degraded``.
    """
    validate(options)
    with unwind_on_sigterm():
        return _open_and_collect(selection, options, client, now or utcnow())


def _open_and_collect(
    selection: Selection, options: CollectOptions, client: engine.APIClient | None, now: datetime
) -> BundleResult:
    clock = Clock(options.timeout)
    timings: dict[str, float] = {}
    evdir = EvidenceDir.open(options.evidence_dir, options.min_free_mb)
    try:
        client = client or engine.docker_client(options.docker_host, timeout=max(0.05, clock.remaining()))
        mark = time.monotonic()
        summaries, missing = resolve(client, selection, timeout=max(1.0, clock.remaining()))
        timings["select_s"] = time.monotonic() - mark
        bundle = evdir.reserve(stamp(now), SUFFIXES)
        try:
            return _collect(selection, options, client, evdir, bundle, clock, now, summaries, missing, timings)
        finally:
            evdir.release(bundle)
    finally:
        evdir.close()


def _collect(
    selection: Selection,
    options: CollectOptions,
    client: engine.APIClient,
    evdir: EvidenceDir,
    bundle: str,
    clock: Clock,
    now: datetime,
    summaries: list[dict[str, Any]],
    missing: list[str],
    timings: dict[str, float],
) -> BundleResult:
    results = [result_for(s) for s in summaries]
    workers = min(options.parallel, max(1, len(results)))
    errors = [f"--container {ref} matched no container (with the other criteria)" for ref in missing]
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="evidence")
    spools: list[Spool] = []
    try:
        mark = time.monotonic()
        inspected = inspect_all(pool, client, results, clock, errors)
        timings["inspect_s"] = time.monotonic() - mark
        documents = redact_all(results, inspected, errors)

        mark = time.monotonic()
        reader = LogReader(options, clock, client, evdir.path, workers, live_files(client))
        jobs, logs_deadline = read_logs(pool, reader, results, inspected.docs, documents, evdir, bundle, spools)
        timings["logs_s"] = time.monotonic() - mark
        give_back()  # what the reader threads freed: the merge's buffers then need no more of the heap

        mark = time.monotonic()
        files = [
            write_log_file(evdir, bundle, jobs, options),
            write_json_file(evdir, bundle, "inspect", documents.inspect_docs),
        ]
        timings["merge_write_s"] = time.monotonic() - mark
        deadline_hit = inspected.deadline_hit or logs_deadline
        return finish_bundle(
            evdir,
            bundle,
            now,
            selection,
            options,
            results,
            files,
            documents,
            errors,
            timings,
            deadline_hit,
            clock,
            engine.engine_location(client),
        )
    finally:
        clock.cancel.set()
        pool.shutdown(wait=False, cancel_futures=True)
        for spool in spools:
            spool.close()
