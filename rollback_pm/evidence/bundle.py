"""Writing the bundle: the merged log, the inspect array and, last, the manifest, each atomically.

A bundle without its manifest is incomplete: the manifest is written once the other
two files are under their final names, and it lists their sha256 and sizes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from rollback_pm import log as rlog
from rollback_pm.errors import EvidenceDirError
from rollback_pm.evidence.clock import Clock
from rollback_pm.evidence.documents import Documents
from rollback_pm.evidence.evdir import EvidenceDir, temp_name
from rollback_pm.evidence.logs import LogJob
from rollback_pm.evidence.manifest import Outcome, build_manifest
from rollback_pm.evidence.merge import Source, allowances, write_log
from rollback_pm.evidence.mergechild import StreamingMerge
from rollback_pm.evidence.spool import SpoolWriteError
from rollback_pm.evidence.types import BundleResult, CollectOptions, ContainerResult, Selection
from rollback_pm.models import EvidenceFile


def write_log_file(
    evdir: EvidenceDir,
    bundle: str,
    jobs: list[LogJob],
    options: CollectOptions,
    streaming: StreamingMerge | None = None,
) -> EvidenceFile:
    """Merge the spools into ``rollback-<bundle>.log`` under the byte caps; sets each result's byte counts.

    With ``streaming`` (the finalize phase), the log merged while the workers read is
    used when no cap cut anything; else it is dropped and the spools merged now.
    """
    for job in jobs:
        job.spool.freeze()
        try:
            job.spool.drain()  # the writer threads finish what was handed to them
        except SpoolWriteError as exc:
            if exc.full:
                raise EvidenceDirError(
                    f"evidence directory {evdir.path} ran out of space while the logs were written ({exc}); "
                    "no bundle was written. Free space there, lower --max-bytes-per-container or --max-total-bytes, "
                    "or pass an --evidence-dir on another disk (--min-free-mb keeps a floor that stops short of this)."
                ) from None
            job.result.ok, job.result.error = False, f"writing its log to {evdir.path} failed: {exc}"
    budgets = allowances([job.spool.kept for job in jobs], options.max_bytes_per_container, options.max_total_bytes)
    if streaming is not None:
        streamed = _use_streamed(evdir, bundle, jobs, budgets, streaming)
        if streamed is not None:
            return streamed
    sources: list[Source] = []
    for job, budget in zip(jobs, budgets):
        source = Source(job.spool, key_offset=len(job.result.name.encode()) + 8)
        source.ranges = job.spool.plan(budget)
        sources.append(source)
    log_name = f"rollback-{bundle}.log"
    sha, size = write_log(evdir, bundle, log_name, sources)
    for job, source in zip(jobs, sources):
        job.result.original_bytes = job.spool.original
        job.result.kept_bytes = source.written
        job.result.truncated = source.written < job.spool.original
    return EvidenceFile(str(evdir.path / log_name), "log", sha, size, bundle)


def _use_streamed(
    evdir: EvidenceDir, bundle: str, jobs: list[LogJob], budgets: list[int], streaming: StreamingMerge
) -> EvidenceFile | None:
    """The log the child merged, published, when it holds exactly what ``write_log`` would write."""
    whole = all(not job.spool.dropped and job.spool.kept <= budget for job, budget in zip(jobs, budgets))
    if not whole or sum(1 for job in jobs if job.spool.kept) < 2:  # one source: write_log copies or publishes it
        streaming.abort()
        return None
    done = streaming.finish([[segment.length for segment in job.spool.segments] for job in jobs])
    if done is None:
        return None
    sha, size, written = done
    log_name = f"rollback-{bundle}.log"
    evdir.publish(streaming.temp, log_name)
    rlog.get_logger("rollback_pm.evidence").debug("evidence.merged_while_reading", bundle=bundle, bytes=size)
    for job, count in zip(jobs, written):
        job.result.original_bytes = job.spool.original
        job.result.kept_bytes = count
        job.result.truncated = count < job.spool.original
    return EvidenceFile(str(evdir.path / log_name), "log", sha, size, bundle)


def write_json_file(evdir: EvidenceDir, bundle: str, kind: str, data: Any) -> EvidenceFile:
    """``rollback-<bundle>.<kind>.json``, indented, written atomically."""
    path, sha, size = evdir.write_atomic(
        f"rollback-{bundle}.{kind}.json",
        orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n",
        temp_name(bundle, kind),
    )
    return EvidenceFile(str(path), kind, sha, size, bundle)


def finish_bundle(
    evdir: EvidenceDir,
    bundle: str,
    now: datetime,
    selection: Selection,
    options: CollectOptions,
    results: list[ContainerResult],
    files: list[EvidenceFile],
    documents: Documents,
    errors: list[str],
    timings: dict[str, float],
    deadline_hit: bool,
    clock: Clock,
    engine: str,
    extra: dict[str, Any] | None = None,
) -> BundleResult:
    """Sum up, write the manifest last, log what happened and return the result."""
    counts: dict[str, int] = dict(documents.counts)
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
    outcome = Outcome(partial=partial, deadline_hit=deadline_hit, errors=errors, counts=counts, timings=timings)
    manifest = build_manifest(bundle, now, selection, options, files, results, outcome, engine, extra)
    files.append(write_json_file(evdir, bundle, "manifest", manifest))
    logger = rlog.get_logger("rollback_pm.evidence")
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
        inspect_docs=documents.inspect_docs,
        image_docs=documents.image_docs,
        partial=partial,
        errors=errors,
        redaction_counts=counts,
        manifest=manifest,
    )
