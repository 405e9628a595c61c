"""The signals stage for a Swarm bundle: what the failing tasks said, read from the bundle.

A Swarm bundle has the containers' line format (``<service>.<slot>.<task id>@<node>
<stream> <timestamp> <text>``), so the signals package reads its log as it reads a
container bundle's. Two things differ, and are given here instead of read by
``signals.extract_bundle``:

- the states: the bundle's inspect documents are services with their ``Tasks``, not
  containers; each task becomes the signals' container context (its state, exit code,
  creation, end) under the name its lines carry;
- the yardstick for "new": the restored version's tasks are in the same bundle (the ones
  the update replaced, and after the rollback the ones Swarm started again), so their
  lines are the baseline, streamed out of the bundle log; no second read of the engine.

Never Docker: a parked bundle from ``rollback_started`` is read the same way at
``rollback_completed``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from rollback_pm import hook
from rollback_pm.errors import SignalsError
from rollback_pm.evidence.lines import normalize_ts
from rollback_pm.log import get_logger
from rollback_pm.models import EvidenceFile, SwarmFacts
from rollback_pm.signals import Baseline, ContainerContext, SignalReport, bundle_files, extract
from rollback_pm.swarm.snapshot import FAILED_STATES, ServiceSnapshot, container_id, task_image, task_label, task_state

log = get_logger(__name__)
# A task whose container ran to an end of its own. Not "shutdown": Swarm stopped it (an update
# or the rollback replaced it), and its exit code (137, 143) is the stop's, not a failure.
_ENDED = (*FAILED_STATES, "complete")
_TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z")


def _ts(value: Any) -> str | None:
    if not isinstance(value, str) or not value or value.startswith("0001-01-01"):
        return None
    normalized = normalize_ts(value)
    return normalized if _TS.fullmatch(normalized) else None


def _load(path: str) -> Any:
    try:
        with open(path, "rb") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def snapshots(inspect_docs: Any) -> list[ServiceSnapshot]:
    """The services of a Swarm bundle's inspect documents, their tasks and nodes as written."""
    found = []
    for doc in inspect_docs if isinstance(inspect_docs, list) else []:
        if not isinstance(doc, dict) or not isinstance(doc.get("Tasks"), list):
            continue
        tasks = [t for t in doc["Tasks"] if isinstance(t, dict)]
        nodes = {
            str(t.get("NodeID")): {"Description": {"Hostname": t["NodeHostname"]}}
            for t in tasks
            if t.get("NodeID") and t.get("NodeHostname")
        }
        found.append(ServiceSnapshot(service=doc, tasks=tasks, nodes=nodes))
    return found


def task_context(snap: ServiceSnapshot, task: dict[str, Any]) -> ContainerContext:
    """A task as the signals see a container: one run, ended or not."""
    state = task_state(task)
    status = task.get("Status") or {}
    ended = state in _ENDED and bool(container_id(task))
    stopped = state == "shutdown" and bool(container_id(task))
    exit_code = (status.get("ContainerStatus") or {}).get("ExitCode")
    limits = ((task.get("Spec") or {}).get("Resources") or {}).get("Limits") or {}
    memory = limits.get("MemoryBytes")
    return ContainerContext(
        name=task_label(snap, task),
        status="exited" if ended else state,
        exit_code=exit_code if ended and isinstance(exit_code, int) and not isinstance(exit_code, bool) else None,
        image=task_image(task),
        created=_ts(task.get("CreatedAt")),
        finished_at=_ts(status.get("Timestamp")) if ended or stopped else None,
        memory_limit=memory if isinstance(memory, int) and not isinstance(memory, bool) and memory > 0 else None,
    )


def _restored_lines(path: str, names: set[bytes]) -> Iterator[bytes]:
    """The bundle log's lines of the restored version's tasks (lines are bounded by LINE_MAX)."""
    with open(path, "rb") as handle:
        for line in handle:
            if line.split(b" ", 1)[0] in names:
                yield line


def report(
    log_path: str, swarm: SwarmFacts | None, bad_since: datetime | None, snaps: list[ServiceSnapshot] | None = None
) -> tuple[SignalReport, str | None]:
    """The signals of one Swarm bundle log, and what "new" was compared with (or why not).

    ``snaps``: the bundle's services, when already read from its inspect JSON."""
    inspect_path, manifest_path = bundle_files(log_path)
    snaps = snapshots(_load(inspect_path)) if snaps is None else snaps
    contexts = [task_context(snap, task) for snap in snaps for task in snap.tasks]
    manifest = _load(manifest_path) or {}
    entries = manifest.get("containers", []) if isinstance(manifest, dict) else []
    names = [str(c["name"]) for c in entries if isinstance(c, dict) and c.get("name")]
    restored_image = swarm.rollback.image if swarm and swarm.rollback else None
    bad_image = swarm.deploy.image if swarm and swarm.deploy else None
    baseline: Baseline | None = None
    note: str | None
    if not restored_image or restored_image == bad_image:
        note = "the restored version is unknown, so no signal is marked new"
    else:
        restored = {c.name.encode() for c in contexts if c.image == restored_image}
        source = f"the restored version's tasks in {os.path.basename(log_path)}"
        if restored:
            try:
                baseline = Baseline.from_chunks(_restored_lines(log_path, restored), source)
            except OSError as exc:
                raise SignalsError(f"cannot read the bundle log {log_path}: {exc.strerror or exc}") from None
        note = (
            f"new in the bad version: compared with {source} ({baseline.lines} lines)"
            if baseline is not None and baseline.lines
            else "the bundle holds no line of the restored version's tasks, so no signal is marked new"
        )
        if baseline is not None and not baseline.lines:
            baseline = None
    found = extract(log_path, contexts=contexts, names=names or None, baseline=baseline, bad_since=bad_since)
    return found, note


def signals_stage(
    logs: list[EvidenceFile], swarm: SwarmFacts | None, *, bad_since: datetime | None
) -> tuple[list[SignalReport], list[str], str | None]:
    """The hook's signals stage for the logs a Swarm rollback brings: Swarm bundles read here,
    a container bundle (a pipeline's parked evidence) as the container hook reads it.
    Returns the reports, what could not be read, and the baseline note."""
    reports: list[SignalReport] = []
    problems: list[str] = []
    notes: list[str] = []
    for evidence in logs:
        name = os.path.basename(evidence.path)
        snaps = snapshots(_load(bundle_files(evidence.path)[0]))
        if not snaps:
            more, trouble = hook.signals_stage([evidence], baseline=None, bad_since=bad_since)
            reports += more
            problems += trouble
            continue
        try:
            found, note = report(evidence.path, swarm, bad_since, snaps)
        except SignalsError as exc:
            problems.append(f"signals not read from {name}: {exc}")
            continue
        except Exception as exc:  # a bug here must not cost the draft and the ticket
            log.error("swarm_signals.failed", log=name, error=repr(exc))
            problems.append(f"signals not read from {name}: internal error ({type(exc).__name__}); please report it")
            continue
        reports.append(found)
        if note:
            notes.append(note)
    return reports, problems, "; ".join(dict.fromkeys(notes)) or None
