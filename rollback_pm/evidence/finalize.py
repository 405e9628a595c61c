"""The finalize phase's processing: a frozen spool becomes a bundle, exactly as ``collect`` writes one.

After the rollback, each spool is read back through the same phases as a one-pass
``collect``: the raw documents are redacted together (``documents.redact_all``), every
container's frozen files are parsed, redacted and spooled by the same workers
(``logs.LogReader``, the frozen files standing in for the engine's), and the bundle is
merged and written by the same code (``bundle``). The same bytes in give the same
bundle out; the manifest adds a ``freeze`` section (when, which byte ranges of which
files, how they were copied) and is dated at the freeze.

A spool is deleted only once its bundle is complete and the caller has recorded it
(``park``). A run killed in between leaves the spool, and the next finalize finds the
bundle already written (by the spool id in its manifest) instead of writing a second.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from rollback_pm import log as rlog
from rollback_pm.errors import EvidenceDirError, RollbackPmError
from rollback_pm.evidence import client as engine
from rollback_pm.evidence.bundle import finish_bundle, write_json_file, write_log_file
from rollback_pm.evidence.clock import Clock
from rollback_pm.evidence.collect import SUFFIXES
from rollback_pm.evidence.documents import Inspected, redact_all
from rollback_pm.evidence.evdir import EvidenceDir
from rollback_pm.evidence.files import LogFiles
from rollback_pm.evidence.freeze import options_from, selection_from
from rollback_pm.evidence.logs import FileOpener, LogReader, read_logs
from rollback_pm.evidence.mergechild import StreamingMerge
from rollback_pm.evidence.spool import Spool
from rollback_pm.evidence.spooldir import DOCS, SPOOL_DIR, ClaimedSpool, SpoolDirError, SpoolRoot
from rollback_pm.evidence.types import BundleResult, ContainerResult
from rollback_pm.interrupt import unwind_on_sigterm
from rollback_pm.models import EvidenceFile
from rollback_pm.timeutil import stamp

Park = Callable[[str, BundleResult], None]
READ_BUFFER = 256 * 1024  # per frozen file; a worker reads one file at a time
READ_AT_ONCE = 8


def finalize(state_dir: Path | str, *, key: str | None, park: Park | None = None) -> list[BundleResult]:
    """Process the spools under ``state_dir`` that are due; the bundles of ``key``'s spools.

    Due: every spool frozen under ``key``, and any other that nobody finalized in time
    (see ``spooldir``). Each bundle is handed to ``park(spool key, bundle)`` before its
    spool is deleted. A failure on ``key``'s own spool is raised (its spool stays for the
    next run); one on another's is logged and that spool kept.
    """
    if not os.path.isdir(Path(state_dir) / SPOOL_DIR):
        return []
    with unwind_on_sigterm():
        return _finalize(state_dir, key, park)


def _finalize(state_dir: Path | str, key: str | None, park: Park | None) -> list[BundleResult]:
    logger = rlog.get_logger("rollback_pm.evidence")
    mine: list[BundleResult] = []
    try:
        root = SpoolRoot.open(state_dir)
    except SpoolDirError as exc:
        logger.warning("evidence.spool_unusable", error=str(exc))
        return mine
    with root:
        root.sweep()
        orphans = set(root.orphans())
        for ident in root.complete():
            claimed = root.claim(ident)
            if claimed is None:
                continue
            own = key is not None and claimed.meta.get("key") == key
            if not own and ident not in orphans:
                claimed.release()
                continue
            try:
                claimed.mark_finalizing()
                bundle = process_spool(claimed)
                if park is not None:
                    park(str(claimed.meta.get("key", "")), bundle)
            except RollbackPmError as exc:
                claimed.release()
                if own and isinstance(exc, EvidenceDirError):
                    raise EvidenceDirError(
                        f"{exc} The frozen evidence stays in {claimed.path}; the next finalize processes it."
                    ) from None
                if own:
                    raise
                logger.warning("evidence.spool_not_processed", spool=ident, error=str(exc))
                continue
            except BaseException:
                claimed.release()
                raise
            claimed.remove()
            if own:
                mine.append(bundle)
    return mine


def process_spool(claimed: ClaimedSpool) -> BundleResult:
    """The bundle of one claimed spool, written now or found written by an earlier, killed run."""
    meta = claimed.meta
    options = options_from(meta)
    frozen_at = datetime.fromisoformat(meta["frozen_at"])
    clock = Clock(options.timeout)
    evdir = EvidenceDir.open(options.evidence_dir, options.min_free_mb)
    try:
        done = find_bundle(evdir, meta["id"], stamp(frozen_at))
        if done is not None:
            return done
        bundle = evdir.reserve(stamp(frozen_at), SUFFIXES)
        try:
            return _process(claimed, evdir, bundle, clock, frozen_at)
        finally:
            evdir.release(bundle)
    finally:
        evdir.close()


def _process(claimed: ClaimedSpool, evdir: EvidenceDir, bundle: str, clock: Clock, frozen_at: datetime) -> BundleResult:
    meta = claimed.meta
    options = options_from(meta)
    entries: list[dict[str, Any]] = meta["containers"]
    results = [
        ContainerResult(
            name=e["name"],
            id=e["id"],
            ok=False,
            error=e["inspect_error"],
            truncated=False,
            original_bytes=0,
            kept_bytes=0,
            path_used="",
            image=e.get("image", ""),
            state=e.get("state", ""),
        )
        for e in entries
    ]
    raw = orjson.loads(claimed.read(DOCS))
    inspected = Inspected(docs=raw["containers"], images=raw["images"], deadline_hit=bool(meta["deadline_hit"]))
    errors = list(meta["errors"])
    timings = {k: float(v) for k, v in meta.get("timings_s", {}).items()}
    # Up to 8 containers are read at once, whatever --parallel says (the merging child
    # moves only as fast as its slowest source), with batches sized for that many workers:
    # memory stays where collect's is with --parallel 8. Beyond 8, the others follow.
    workers = min(max(1, len(results)), max(options.parallel, READ_AT_ONCE))
    pool: ThreadPoolExecutor | None = None
    spools: list[Spool] = []
    streaming: StreamingMerge | None = None
    try:
        documents = redact_all(results, inspected, errors)
        mark = time.monotonic()
        # The merger starts before the workers: it merges as they read (and forks no thread).
        streaming = StreamingMerge.start(
            evdir,
            bundle,
            [(f"c{i}", len(r.name.encode()) + 8) for i, r in enumerate(results) if r.id in documents.redacted],
        )
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="finalize")
        reader = LogReader(options, clock, None, evdir.path, workers, frozen_files(claimed, entries))
        jobs, logs_deadline = read_logs(pool, reader, results, inspected.docs, documents, evdir, bundle, spools)
        timings["logs_s"] = time.monotonic() - mark
        mark = time.monotonic()
        files = [
            write_log_file(evdir, bundle, jobs, options, streaming),
            write_json_file(evdir, bundle, "inspect", documents.inspect_docs),
        ]
        timings["merge_write_s"] = time.monotonic() - mark
        for result, entry in zip(results, entries):
            if entry.get("freeze_error") and result.error is None:
                result.ok, result.error = False, entry["freeze_error"]
            if entry.get("left_behind"):
                result.truncated = True
                result.notes.append(
                    f"frozen: the newest {entry['frozen_bytes']} of its {entry['raw_bytes']} bytes of log files "
                    "(the caps' share); the older ones were left behind"
                )
        return finish_bundle(
            evdir,
            bundle,
            frozen_at,
            selection_from(meta),
            options,
            results,
            files,
            documents,
            errors,
            timings,
            inspected.deadline_hit or logs_deadline,
            clock,
            str(meta.get("engine", "")),
            {"freeze": freeze_section(meta)},
        )
    finally:
        clock.cancel.set()
        if streaming is not None:
            streaming.abort()
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        for spool in spools:
            spool.close()


def frozen_files(claimed: ClaimedSpool, entries: list[dict[str, Any]]) -> FileOpener:
    """Opens a container's frozen files in place of the engine's (same order, same names in notes)."""
    by_id = {e["id"]: e for e in entries}

    def open_files(doc: dict[str, Any]) -> LogFiles:
        entry = by_id.get(doc.get("Id", ""))
        if entry is None or entry.get("vanished"):
            raise engine.ContainerGone()
        files = LogFiles(entry["driver"], [f["source"] for f in entry["files"]])
        try:
            for item in entry["files"]:
                handle = os.fdopen(claimed.open(item["name"]), "rb", buffering=READ_BUFFER)
                if item["skip"]:
                    handle.seek(item["skip"])
                files.handles.append(gzip.GzipFile(fileobj=handle, mode="rb") if item["compressed"] else handle)  # type: ignore[arg-type]
        except BaseException:
            files.close()
            raise
        return files

    return open_files


def freeze_section(meta: dict[str, Any]) -> dict[str, Any]:
    """The manifest's record of the freeze: when, and exactly which bytes of which files."""
    return {
        "spool": meta["id"],
        "frozen_at": meta["frozen_at"],
        "engine": meta.get("engine"),
        "containers": [
            {
                "name": e["name"],
                "id": e["id"],
                "driver": e["driver"],
                "raw_bytes": e["raw_bytes"],
                "frozen_bytes": e["frozen_bytes"],
                "left_behind_bytes": e["left_behind"],
                "files": [
                    {
                        "source": f["source"],
                        "inode": f["inode"],
                        "size_at_freeze": f["size"],
                        "start": f["start"],
                        "end": f["end"],
                        "compressed": f["compressed"],
                        "method": f["method"],
                    }
                    for f in e["files"]
                ],
            }
            for e in meta["containers"]
        ],
    }


def find_bundle(evdir: EvidenceDir, spool_id: str, bundle_stamp: str) -> BundleResult | None:
    """The bundle an earlier finalize of this spool completed (its manifest names the spool), if any."""
    for name in sorted(os.listdir(evdir.fd)):
        if not (name.startswith(f"rollback-{bundle_stamp}") and name.endswith(".manifest.json")):
            continue
        try:
            data = _read(evdir, name)
            manifest = orjson.loads(data)
        except (OSError, orjson.JSONDecodeError):
            continue
        if (manifest.get("freeze") or {}).get("spool") != spool_id:
            continue
        bundle = manifest["bundle"]
        inspect_docs = orjson.loads(_read(evdir, f"rollback-{bundle}.inspect.json"))
        files = [
            EvidenceFile(str(evdir.path / f["name"]), f["kind"], f["sha256"], f["bytes"], bundle)
            for f in manifest["files"]
        ]
        files.append(
            EvidenceFile(str(evdir.path / name), "manifest", hashlib.sha256(data).hexdigest(), len(data), bundle)
        )
        return BundleResult(
            bundle_id=bundle,
            files=files,
            containers=[ContainerResult(**c) for c in manifest["containers"]],
            inspect_docs=inspect_docs,
            image_docs={d["Image"]: d["ImageSummary"] for d in inspect_docs if d.get("ImageSummary")},
            partial=bool(manifest["partial"]),
            errors=list(manifest["errors"]),
            redaction_counts=dict(manifest["redaction"]["counts"]),
            manifest=manifest,
        )
    return None


def _read(evdir: EvidenceDir, name: str) -> bytes:
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=evdir.fd)
    with os.fdopen(fd, "rb") as handle:
        return handle.read()
