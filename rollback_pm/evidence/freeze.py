"""The collect phase's freeze: copy what the rollback would destroy, process nothing.

Before the rollback replaces the failed containers, only two things are at risk: the
containers' log files (removed with the containers) and their inspect documents. The
freeze takes both, in well under a second, into the private spool (see ``spooldir``):

1. one list call, then every container and image inspected in parallel (as ``collect``);
2. every container's log files opened at once (one consistent set per container, see
   ``files.open_log_files``); if any container's files cannot be read from here (remote
   engine, another log driver, no permission) there is no freeze: ``freeze`` returns None
   and the caller collects in one pass instead, as it always did;
3. the byte range the caps keep chosen per container (``ranges``), newest first, and
   copied in the kernel (``kcopy``: reflink where the filesystem allows, else
   copy_file_range), container by container in parallel;
4. the raw inspect documents and a ``spool.json`` naming every range (source file, its
   inode and size at the freeze, first and last byte, how it was copied), then the spool
   is given its complete name.

Nothing here parses or redacts a log; ``finalize`` does, after the rollback, exactly as
``collect`` would have. The freeze honours ``--timeout`` like ``collect``.
"""

from __future__ import annotations

import os
import platform
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

from rollback_pm import log as rlog
from rollback_pm.evidence import client as engine
from rollback_pm.evidence.clock import Clock, DeadlineReached
from rollback_pm.evidence.collect import result_for, validate
from rollback_pm.evidence.documents import inspect_all
from rollback_pm.evidence.evdir import MIB
from rollback_pm.evidence.files import FastPathUnavailable, LogFiles, log_location, open_log_files
from rollback_pm.evidence.kcopy import CopyFull, copy_range
from rollback_pm.evidence.manifest import limits_dict
from rollback_pm.evidence.merge import allowances
from rollback_pm.evidence.ranges import Measured, measure, plan, raw_needed
from rollback_pm.evidence.select import resolve
from rollback_pm.evidence.spooldir import DOCS, NewSpool, SpoolDirError, SpoolRoot
from rollback_pm.evidence.types import CollectOptions, ContainerResult, Frozen, Selection
from rollback_pm.interrupt import unwind_on_sigterm
from rollback_pm.timeutil import stamp, utcnow

SPOOL_SCHEMA = 1


class _NoFreeze(Exception):
    """The freeze is not possible here; the caller collects in one pass (message says why)."""


def freeze(
    selection: Selection,
    options: CollectOptions,
    state_dir: Path | str,
    *,
    key: str,
    client: engine.APIClient | None = None,
    now: datetime | None = None,
) -> Frozen | None:
    """Freeze the selected containers' logs and documents into the spool under ``state_dir``.

    Returns None when they cannot be frozen from here (the reason is logged): collect in
    one pass then. Raises DockerUnavailable, NoContainersMatched, UsageError like
    ``collect``; per-container problems are recorded in the result instead.
    """
    validate(options)
    with unwind_on_sigterm():
        return _try_freeze(selection, options, state_dir, key, client, now or utcnow())


def _try_freeze(
    selection: Selection,
    options: CollectOptions,
    state_dir: Path | str,
    key: str,
    client: engine.APIClient | None,
    now: datetime,
) -> Frozen | None:
    clock = Clock(options.timeout)
    logger = rlog.get_logger("rollback_pm.evidence")
    if options.fast_path == "never":
        logger.info("evidence.no_freeze", reason="--fast-path never: the logs are read through the Engine API")
        return None
    client = client or engine.docker_client(options.docker_host, timeout=max(0.05, clock.remaining()))
    if not engine.is_local_engine(client):
        logger.info("evidence.no_freeze", reason=f"the engine at {engine.engine_location(client)} is not on this host")
        return None
    try:
        root = SpoolRoot.open(state_dir)
    except SpoolDirError as exc:
        logger.warning("evidence.no_freeze", reason=str(exc))
        return None
    try:
        root.sweep()
        return _freeze(selection, options, root, key, client, clock, now)
    except _NoFreeze as exc:
        logger.info("evidence.no_freeze", reason=str(exc))
        return None
    finally:
        root.close()


def _freeze(
    selection: Selection,
    options: CollectOptions,
    root: SpoolRoot,
    key: str,
    client: engine.APIClient,
    clock: Clock,
    now: datetime,
) -> Frozen:
    timings: dict[str, float] = {}
    mark = time.monotonic()
    summaries, missing = resolve(client, selection, timeout=max(0.05, clock.remaining()))
    timings["select_s"] = time.monotonic() - mark
    results = [result_for(s) for s in summaries]
    errors = [f"--container {ref} matched no container (with the other criteria)" for ref in missing]
    workers = min(options.parallel, max(1, len(results)))
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="freeze")
    opened: dict[str, LogFiles] = {}
    try:
        mark = time.monotonic()
        inspected = inspect_all(pool, client, results, clock, errors)
        timings["inspect_s"] = time.monotonic() - mark
        mark = time.monotonic()
        vanished: set[str] = set()
        for result in results:
            doc = inspected.docs.get(result.id)
            if doc is not None:
                files = _open(doc, result)
                if files is None:
                    vanished.add(result.id)
                else:
                    opened[result.id] = files
        measured = {ident: measure(files, _name(results, ident)) for ident, files in opened.items()}
        plans = _plans(measured, options)
        need = sum(r.end - r.start for p in plans.values() for r in p.ranges)
        floor = options.min_free_mb * MIB
        if root.free_bytes() < need + floor:
            raise _NoFreeze(
                f"the spool in {root.path} has {root.free_bytes() // MIB} MiB free, "
                f"less than the {need // MIB} MiB to freeze plus the {options.min_free_mb} MiB floor"
            )
        spool = root.new(stamp(now))
        try:
            entries = list(
                pool.map(
                    lambda pair: _freeze_container(
                        spool, pair[0], pair[1], opened.get(pair[1].id), measured, plans, clock, pair[1].id in vanished
                    ),
                    enumerate(results),
                )
            )
            spool.write_json(DOCS, {"containers": inspected.docs, "images": inspected.images})
            timings["freeze_s"] = time.monotonic() - mark
            meta = {
                "schema": SPOOL_SCHEMA,
                "id": spool.id,
                "key": key,
                "frozen_at": now.isoformat(),
                "host": platform.node(),
                "engine": engine.engine_location(client),
                "selection": selection.to_dict(),
                "options": _options_dict(options),
                "errors": errors,
                "deadline_hit": inspected.deadline_hit,
                "timings_s": {k: round(v, 3) for k, v in timings.items()},
                "containers": entries,
            }
            path = spool.commit(meta)
        except CopyFull as exc:
            spool.abort()
            raise _NoFreeze(f"the spool in {root.path} filled up ({exc.strerror})") from None
        except BaseException:
            spool.abort()
            raise
    finally:
        clock.cancel.set()  # copies still running stop at their next chunk
        pool.shutdown(wait=False, cancel_futures=True)
        for files in opened.values():
            files.close()
    frozen_bytes = sum(e["frozen_bytes"] for e in entries)
    for result, entry in zip(results, entries):
        result.path_used, result.log_driver = entry["driver"], entry["driver"]
        result.kept_bytes, result.original_bytes = entry["frozen_bytes"], entry["raw_bytes"]
        result.truncated = entry["left_behind"] > 0
        gone = "container vanished (removed) before its logs were frozen" if entry["vanished"] else None
        result.error = entry["inspect_error"] or gone or entry["freeze_error"]
        result.ok = result.error is None
    frozen = Frozen(
        spool=path,
        spool_id=spool.id,
        key=key,
        frozen_at=now,
        containers=results,
        frozen_bytes=frozen_bytes,
        seconds=clock.elapsed(),
        errors=[rlog.mask(e) for e in errors],
    )
    rlog.get_logger("rollback_pm.evidence").info(
        "evidence.frozen",
        spool=meta["id"],
        containers=len(results),
        mib=round(frozen_bytes / MIB, 1),
        seconds=round(frozen.seconds, 3),
    )
    return frozen


def _name(results: list[ContainerResult], ident: str) -> str:
    return next(r.name for r in results if r.id == ident)


def _open(doc: dict[str, Any], result: ContainerResult) -> LogFiles | None:
    """The container's log files, None if it vanished; _NoFreeze if they cannot be read from here."""
    try:
        return open_log_files(doc)
    except FastPathUnavailable as exc:
        try:
            _, directory, _ = log_location(doc)
        except FastPathUnavailable:
            raise _NoFreeze(f"{result.name}: {exc}") from None
        try:
            os.stat(directory)
        except FileNotFoundError:
            return None  # removed with its container (an unreadable one is no reason to think so)
        except OSError:
            pass
        raise _NoFreeze(f"{result.name}: {exc}") from None


def _plans(measured: dict[str, Measured], options: CollectOptions) -> dict[str, Any]:
    """Each container's ranges: the caps shared out (as ``merge.allowances`` will) on the estimates."""
    idents = list(measured)
    shares = allowances(
        [measured[i].estimate for i in idents], options.max_bytes_per_container, options.max_total_bytes
    )
    return {i: plan(measured[i], raw_needed(measured[i], share)) for i, share in zip(idents, shares)}


def _freeze_container(
    spool: NewSpool,
    index: int,
    result: ContainerResult,
    files: LogFiles | None,
    measured: dict[str, Measured],
    plans: dict[str, Any],
    clock: Clock,
    vanished: bool,
) -> dict[str, Any]:
    """Copy one container's ranges, newest first (a deadline then loses the oldest); its spool.json entry."""
    entry: dict[str, Any] = {
        "id": result.id,
        "name": result.name,
        "image": result.image,
        "state": result.state,
        "inspect_error": result.error,
        "vanished": vanished,  # removed between its inspect and the freeze
        "freeze_error": None,
        "driver": files.driver if files else "",
        "raw_bytes": measured[result.id].raw_bytes if files else 0,
        "ratio": round(measured[result.id].ratio, 4) if files else None,
        "left_behind": 0,
        "frozen_bytes": 0,
        "files": [],
    }
    if files is None:
        return entry
    log_plan = plans[result.id]
    entry["left_behind"] = log_plan.left_behind
    frozen: list[dict[str, Any]] = []
    for number in range(len(log_plan.ranges) - 1, -1, -1):
        piece = log_plan.ranges[number]
        info = measured[result.id].files[piece.index]
        name = f"c{index}.{number}"
        fd = spool.create(name)
        try:
            copied = copy_range(info.fd, fd, piece.start, piece.end, clock.check)
        except DeadlineReached:
            os.close(fd)
            os.unlink(name, dir_fd=spool.fd)
            entry["freeze_error"] = (
                f"deadline reached after {clock.elapsed():.1f}s while freezing; the spool holds its newest "
                f"{len(frozen)} of {len(log_plan.ranges)} log files"
            )
            entry["left_behind"] += sum(measured[result.id].files[p.index].raw for p in log_plan.ranges[: number + 1])
            break
        os.close(fd)
        frozen.append(
            {
                "name": name,
                "source": files.paths[piece.index],
                "inode": os.fstat(info.fd).st_ino,
                "size": info.size,
                "start": piece.start,
                "end": copied.end,
                "skip": copied.skip,
                "method": copied.method,
                "compressed": info.compressed,
            }
        )
        if copied.end < piece.end:
            entry["freeze_error"] = (
                f"{files.paths[piece.index]} shrank while it was frozen (truncated by a rotation?): "
                f"{piece.end - copied.end} bytes are missing"
            )
    frozen.reverse()
    entry["files"] = frozen
    entry["frozen_bytes"] = sum(f["end"] - f["start"] for f in frozen)
    return entry


def _options_dict(options: CollectOptions) -> dict[str, Any]:
    # the finalize rebuilds the options from this: the evidence dir, and `since` to the microsecond
    return {
        "evidence_dir": str(Path(options.evidence_dir).absolute()),
        "since": options.since.isoformat() if options.since else None,
        **limits_dict(options),
    }


def options_from(meta: dict[str, Any]) -> CollectOptions:
    """The options a spool was frozen with (the finalize applies the same caps and filters)."""
    raw = meta["options"]
    return CollectOptions(
        evidence_dir=Path(raw["evidence_dir"]),
        since=datetime.fromisoformat(raw["since"]) if raw.get("since") else None,
        max_bytes_per_container=int(raw["max_bytes_per_container"]),
        max_total_bytes=raw.get("max_total_bytes"),
        timeout=float(raw["timeout_s"]),
        min_free_mb=int(raw["min_free_mb"]),
        parallel=int(raw["parallel"]),
        fast_path=str(raw["fast_path"]),
    )


def selection_from(meta: dict[str, Any]) -> Selection:
    raw = meta["selection"]
    return Selection(
        labels=list(raw.get("labels") or []),
        name_regex=raw.get("name_regex"),
        compose_project=raw.get("compose_project"),
        containers=list(raw.get("containers") or []),
        all_states=bool(raw.get("all_states", True)),
    )
