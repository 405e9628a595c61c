"""The evidence bundle of Swarm services: every task's logs from every node, through a manager.

The same bundle as for containers, written by the same machinery (evidence dir, spools,
redaction, merge, manifest, through ``rollback_pm.evidence.sources``) under the same caps
and deadline:

- ``rollback-<ts>.log``: every task's stdout and stderr, read through the manager's task
  logs API (``/tasks/{id}/logs`` with timestamps and details) so tasks on other nodes are
  included, merged in timestamp order. Each line reads
  ``<service>.<slot>.<task id>@<node> <stdout|stderr> <timestamp> <text>``; the caps apply
  per task. Failed tasks are read first: they matter most if the deadline comes.
- ``rollback-<ts>.inspect.json``: per service its ``service inspect`` document (Spec,
  PreviousSpec, UpdateStatus) with ``Tasks`` (each task as ``docker inspect`` of a task
  shows it, plus ``NodeHostname``) and ``Images`` (the spec's images as this manager has
  them), redacted together like container documents.
- ``rollback-<ts>.manifest.json``: as for containers, one entry per task, with
  ``"source": "swarm"`` and the services.
"""

from __future__ import annotations

import copy
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime
from typing import Any

import docker

from rollback_pm import log as rlog
from rollback_pm.evidence.client import engine_location
from rollback_pm.evidence.lines import ApiDemux, LineBuilder
from rollback_pm.evidence.sources import (
    SUFFIXES,
    ApiLogs,
    Clock,
    Documents,
    EvidenceDir,
    LogReader,
    Spool,
    finish_bundle,
    image_summary,
    read_logs,
    redact_documents,
    validate,
    write_json_file,
    write_log_file,
)
from rollback_pm.evidence.types import BundleResult, CollectOptions, ContainerResult, Selection
from rollback_pm.swarm.select import SwarmSelection
from rollback_pm.swarm.snapshot import (
    FAILED_STATES,
    ServiceSnapshot,
    container_id,
    task_image,
    task_label,
    task_state,
)
from rollback_pm.timeutil import stamp, utcnow

# The attributes the engine puts before each message with details=1 that name the task's
# place; the line's prefix carries them already.
_CONTEXT = (b"com.docker.swarm.node.id=", b"com.docker.swarm.service.id=", b"com.docker.swarm.task.id=")


def strip_details(data: bytes) -> bytes:
    """``k=v,k=v <message>`` -> ``<message>``, keeping any attribute other than Swarm's ids.

    The attributes are ``url.QueryEscape``d, so they hold no space: the first space ends them.
    Text that does not start with attributes is returned as it is.
    """
    space = data.find(b" ")
    if space == 0:  # details asked for, none given: the engine still puts the space
        return data[1:]
    if space < 0:
        return data
    attrs = data[:space].split(b",")
    if not all(b"=" in a and not a.startswith(b"=") for a in attrs):
        return data
    kept = [a for a in attrs if not a.startswith(_CONTEXT)]
    rest = data[space + 1 :]
    return b",".join(kept) + b" " + rest if kept else rest


# A task's logs through the manager: /tasks/{id}/logs with details, which are then stripped.
TASK_LOGS = ApiLogs(endpoint="tasks", details=True, data=strip_details)


def task_demux(builder: LineBuilder, tty: bool) -> ApiDemux:
    """The demultiplexer the task logs are read with: every record loses its attributes."""
    return ApiDemux(builder, tty, TASK_LOGS.data)


def _worker_doc(task: dict[str, Any]) -> dict[str, Any]:
    """What the log reader needs of a task, in the shape it reads from a container document."""
    container_spec = (task.get("Spec") or {}).get("ContainerSpec") or {}
    driver = ((task.get("Spec") or {}).get("LogDriver") or {}).get("Name") or ""
    return {"Config": {"Tty": bool(container_spec.get("TTY"))}, "HostConfig": {"LogConfig": {"Type": driver}}}


def _result_for(snapshot: ServiceSnapshot, task: dict[str, Any]) -> ContainerResult:
    return ContainerResult(
        name=task_label(snapshot, task),
        id=str(task.get("ID", "")),
        ok=False,
        error=None,
        truncated=False,
        original_bytes=0,
        kept_bytes=0,
        path_used="",
        image=task_image(task),
        state=task_state(task),
    )


def _order(task: dict[str, Any]) -> int:
    return 0 if task_state(task) in FAILED_STATES else 1


def _documents(snapshots: list[ServiceSnapshot]) -> list[dict[str, Any]]:
    docs = []
    for snap in snapshots:
        doc = copy.deepcopy(snap.service)
        doc["Tasks"] = [
            {**copy.deepcopy(t), "NodeHostname": snap.hostname(str(t.get("NodeID") or ""))} for t in snap.tasks
        ]
        doc["Images"] = {ref: image_summary(image) for ref, image in snap.images.items() if image}
        docs.append(doc)
    return docs


def collect_services(
    selection: SwarmSelection,
    snapshots: list[ServiceSnapshot],
    options: CollectOptions,
    *,
    client: docker.APIClient,
    manager: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> BundleResult:
    """One bundle for the services in ``snapshots`` (see the module docstring).

    Raises EvidenceDirError (or UsageError for bad options); what goes wrong for one task
    is recorded in the result instead, which is then ``degraded``.
    """
    validate(options)
    clock = Clock(options.timeout)
    now = now or utcnow()
    evdir = EvidenceDir.open(options.evidence_dir, options.min_free_mb)
    try:
        bundle = evdir.reserve(stamp(now), SUFFIXES)
        try:
            return _collect(selection, snapshots, options, client, manager or {}, evdir, bundle, clock, now)
        finally:
            evdir.release(bundle)
    finally:
        evdir.close()


def _redacted(snapshots: list[ServiceSnapshot], errors: list[str]) -> tuple[Documents, set[str]]:
    """The services' documents redacted together (a secret in any spec is masked in every
    log), and the ids of the services whose documents could not be: nothing of theirs is written."""
    docs_out, redactor, doc_errors = redact_documents(_documents(snapshots))
    for secret in redactor.found:
        rlog.register_secret(secret)
    inspect_docs: list[dict[str, Any]] = []
    skip: set[str] = set()
    for snap, doc, error in zip(snapshots, docs_out, doc_errors):
        if doc is None:
            errors.append(
                f"service {snap.name}: redaction of its documents failed ({type(error).__name__}); "
                "documents and task logs not written"
            )
            skip.add(snap.id)
        else:
            inspect_docs.append(doc)
    image_docs = {
        str(summary.get("Id")): summary for doc in inspect_docs for summary in (doc.get("Images") or {}).values()
    }
    return Documents(inspect_docs, image_docs, {}, set(redactor.found), dict(redactor.counts)), skip


def _collect(
    selection: SwarmSelection,
    snapshots: list[ServiceSnapshot],
    options: CollectOptions,
    client: docker.APIClient,
    manager: dict[str, Any],
    evdir: EvidenceDir,
    bundle: str,
    clock: Clock,
    now: datetime,
) -> BundleResult:
    timings: dict[str, float] = {}
    errors: list[str] = []

    mark = time.monotonic()
    documents, skip = _redacted(snapshots, errors)
    timings["inspect_s"] = time.monotonic() - mark

    # --- task logs, failed tasks first ------------------------------------------------------
    mark = time.monotonic()
    tasks = [(snap, task) for snap in snapshots if snap.id not in skip for task in snap.tasks]
    tasks.sort(key=lambda pair: _order(pair[1]))
    results = [_result_for(snap, task) for snap, task in tasks]
    readable: list[ContainerResult] = []
    worker_docs: dict[str, dict[str, Any]] = {}
    for (snap, task), result in zip(tasks, results):
        node = str(task.get("NodeID") or "")
        if not container_id(task):
            result.ok = True
            why = (task.get("Status") or {}).get("Err") or (task.get("Status") or {}).get("Message") or "no container"
            result.notes.append(f"no logs: the task never had a container ({task_state(task)}: {why})")
        elif snap.node_down(node):
            result.error = f"node {snap.hostname(node)} is down: its tasks' logs cannot be read until it is back"
        else:
            readable.append(result)
            worker_docs[result.id] = _worker_doc(task)
    documents.redacted = worker_docs  # the tasks whose logs are read (their documents are the services')
    workers = min(options.parallel, max(1, len(readable)))
    # The fast path reads this host's log files: a task's may be on any node, so never.
    options = replace(options, fast_path="never")
    reader = LogReader(options, clock, client, evdir.path, workers, api=TASK_LOGS)
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="swarm-evidence")
    spools: list[Spool] = []
    try:
        jobs, deadline_hit = read_logs(pool, reader, readable, worker_docs, documents, evdir, bundle, spools)
        timings["logs_s"] = time.monotonic() - mark

        # --- write: the merged log, the documents, and last the manifest ---------------------
        mark = time.monotonic()
        files = [
            write_log_file(evdir, bundle, jobs, options),
            write_json_file(evdir, bundle, "inspect", documents.inspect_docs),
        ]
        timings["merge_write_s"] = time.monotonic() - mark
        extra = {
            "selection": selection.to_dict(),  # the container selection is empty
            "source": "swarm",
            "swarm": {
                "node": manager.get("NodeID"),
                "cluster": (manager.get("Cluster") or {}).get("ID"),
                "logs": "every task's, through the manager's task logs API",
                "services": [
                    {
                        "id": snap.id,
                        "name": snap.name,
                        "stack": snap.stack,
                        "update_state": (snap.service.get("UpdateStatus") or {}).get("State"),
                        "tasks": len(snap.tasks),
                    }
                    for snap in snapshots
                ],
            },
        }
        collected = finish_bundle(
            evdir,
            bundle,
            now,
            Selection(),
            options,
            results,
            files,
            documents,
            errors,
            timings,
            deadline_hit,
            clock,
            engine_location(client),
            extra,
        )
        rlog.get_logger("rollback_pm.swarm").info(
            "swarm.evidence_collected", bundle=bundle, services=len(snapshots), tasks=len(results)
        )
        return collected
    finally:
        clock.cancel.set()
        pool.shutdown(wait=False, cancel_futures=True)
        for spool in spools:
            spool.close()
