"""Collect one evidence bundle: logs, inspect documents and a manifest, atomically.

Each container is read in its own (daemon) thread, at most ``parallel`` at once, into a
redacted on-disk spool; the spools are then merged in timestamp order into the log file.
A global deadline yields a partial bundle that says so; one hung or vanished container
never stops the others.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import os
import shutil
import stat
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from rollback_pm import __version__
from rollback_pm.errors import EvidenceDirError
from rollback_pm.evidence.client import docker_client
from rollback_pm.evidence.logs import Deadline, Spool, api_records, json_file_paths, json_file_records
from rollback_pm.evidence.redact import LineRedactor, Redactor
from rollback_pm.evidence.select import Selection, select_containers
from rollback_pm.log import get_logger, register_secret
from rollback_pm.models import EvidenceFile
from rollback_pm.timeutil import iso, stamp, utcnow

log = get_logger(__name__)
MIB = 1024 * 1024
BUDGET_ERROR = "time budget ran out while reading logs (kept what was read)"


@dataclass
class CollectOptions:
    evidence_dir: Path
    since: datetime | None = None
    max_bytes_per_container: int = 64 * MIB
    max_total_bytes: int | None = None
    timeout: float = 120.0
    min_free_mb: int = 256
    parallel: int = 4
    fast_path: str = "auto"  # auto | never | always


@dataclass
class ContainerResult:
    name: str
    id: str
    ok: bool = False
    error: str | None = None
    truncated: bool = False
    original_bytes: int = 0
    kept_bytes: int = 0
    path_used: str = ""  # json-file | api


@dataclass
class BundleResult:
    bundle_id: str
    files: list[EvidenceFile] = field(default_factory=list)
    containers: list[ContainerResult] = field(default_factory=list)
    inspect_docs: list[dict[str, Any]] = field(default_factory=list)
    image_docs: dict[str, dict[str, Any]] = field(default_factory=dict)
    partial: bool = False
    errors: list[str] = field(default_factory=list)
    redaction_counts: dict[str, int] = field(default_factory=dict)

    @property
    def degraded(self) -> bool:
        return self.partial or any(not c.ok for c in self.containers)


def prepare_dir(directory: Path, min_free_mb: int) -> Path:
    """Create (0750) or check the evidence dir: a real, writable directory with room."""
    directory = Path(directory)
    try:
        if not os.path.lexists(directory):
            directory.mkdir(parents=True, mode=0o750)
        info = os.lstat(directory)
    except OSError as exc:
        raise EvidenceDirError(f"evidence dir {directory} cannot be created ({exc.strerror}); "
                               "choose another with --evidence-dir or fix its parent's permissions") from None
    if stat.S_ISLNK(info.st_mode):
        raise EvidenceDirError(f"evidence dir {directory} is a symlink; refusing to follow it. "
                               "Point --evidence-dir at the real directory")
    if not stat.S_ISDIR(info.st_mode):
        raise EvidenceDirError(f"evidence dir {directory} is not a directory; fix --evidence-dir")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise EvidenceDirError(f"evidence dir {directory} is not writable by this user; "
                               "fix its permissions or choose another with --evidence-dir")
    free_mb = shutil.disk_usage(directory).free // MIB
    if free_mb < min_free_mb:
        raise EvidenceDirError(f"evidence dir {directory} has {free_mb} MiB free, below the floor of "
                               f"{min_free_mb} MiB; free space or lower --min-free-mb")
    return directory


def _bundle_base(directory: Path, now: datetime) -> tuple[str, Path]:
    """A bundle id no other run (even one started the same second) uses: the id is
    reserved by a hidden lock file created exclusively, dropped once the bundle is written."""
    base = stamp(now)
    candidate, n = base, 0
    while True:
        taken = any(os.path.lexists(directory / f"rollback-{candidate}{s}")
                    for s in (".log", ".inspect.json", ".manifest.json"))
        if not taken:
            reservation = directory / f".rollback-{candidate}.reserved"
            try:
                os.close(os.open(reservation, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW, 0o640))
                return candidate, reservation
            except FileExistsError:
                pass
        n += 1
        candidate = f"{base}-{n}"


class _Writer:
    """A temp file in the evidence dir that becomes its final name only when complete."""

    def __init__(self, directory: Path, final: str) -> None:
        self.final = directory / final
        fd, name = tempfile.mkstemp(prefix=f".{final}.", suffix=".tmp", dir=directory)
        os.fchmod(fd, 0o640)
        self.tmp = Path(name)
        self.handle = os.fdopen(fd, "wb")
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self.handle.write(data)
        self.sha.update(data)
        self.size += len(data)

    def commit(self, kind: str, bundle: str) -> EvidenceFile:
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.handle.close()
        os.rename(self.tmp, self.final)
        return EvidenceFile(path=str(self.final), kind=kind, sha256=self.sha.hexdigest(), bytes=self.size,
                            bundle=bundle)

    def abort(self) -> None:
        if not self.handle.closed:
            self.handle.close()
        self.tmp.unlink(missing_ok=True)


def _name(doc: dict[str, Any]) -> str:
    return str(doc.get("Name", "")).lstrip("/") or doc.get("Id", "")[:12]


def _read_container(client: Any, doc: dict[str, Any], spool: Spool, redactor: Redactor, options: CollectOptions,
                    deadline: float, result: ContainerResult, clock: Callable[[], float]) -> None:
    per_stream: dict[str, LineRedactor] = {}
    paths = None if options.fast_path == "never" else json_file_paths(doc)
    if paths is not None:
        records = json_file_records(paths, since=options.since, deadline=deadline, clock=clock)
        result.path_used = "json-file"
    else:
        records = api_records(client, doc["Id"], tty=bool((doc.get("Config") or {}).get("Tty")),
                              since=options.since, deadline=deadline, clock=clock)
        result.path_used = "api"
    for ts, stream, text in records:
        redactor_for = per_stream.get(stream) or per_stream.setdefault(stream, LineRedactor(redactor))
        spool.add(ts, stream, redactor_for.line(text))


def collect(selection: Selection, options: CollectOptions, *, client: Any = None,
            now: datetime | None = None, clock: Callable[[], float] = time.monotonic) -> BundleResult:
    """Select, read, redact and write one bundle. Raises for bad input; degrades otherwise."""
    started = clock()
    deadline = started + options.timeout
    now = now or utcnow()
    directory = prepare_dir(options.evidence_dir, options.min_free_mb)
    client = client or docker_client()
    summaries = select_containers(client, selection)
    bundle, reservation = _bundle_base(directory, now)
    try:
        return _collect(client, summaries, selection, options, directory, bundle, now, started, deadline, clock)
    finally:
        reservation.unlink(missing_ok=True)


def _collect(client: Any, summaries: list[dict[str, Any]], selection: Selection, options: CollectOptions,
             directory: Path, bundle: str, now: datetime, started: float, deadline: float,
             clock: Callable[[], float]) -> BundleResult:
    result = BundleResult(bundle_id=bundle)

    docs: list[dict[str, Any]] = []
    for summary in summaries:
        try:
            docs.append(client.inspect_container(summary["Id"]))
        except Exception as exc:  # vanished between list and inspect
            name = (summary.get("Names") or [summary["Id"][:12]])[0].lstrip("/")
            result.containers.append(ContainerResult(name=name, id=summary["Id"], error=f"inspect failed: {exc}"))
            result.errors.append(f"{name}: inspect failed ({type(exc).__name__})")
    redactor = Redactor()
    for doc in docs:
        redactor.learn(doc)
    for secret in redactor.secrets:
        register_secret(secret)

    spools: list[tuple[dict[str, Any], Spool, ContainerResult]] = []
    threads: list[threading.Thread] = []
    gate = threading.Semaphore(max(1, options.parallel))
    for doc in docs:
        res = ContainerResult(name=_name(doc), id=doc["Id"])
        spool = Spool(directory, options.max_bytes_per_container)
        spools.append((doc, spool, res))

        def work(doc: dict[str, Any] = doc, spool: Spool = spool, res: ContainerResult = res) -> None:
            with gate:
                try:
                    if clock() > deadline:
                        raise Deadline()
                    _read_container(client, doc, spool, redactor, options, deadline, res, clock)
                    res.ok = not spool.frozen
                except Deadline:
                    res.error = res.error or BUDGET_ERROR
                except Exception as exc:
                    res.error = res.error or f"logs failed: {type(exc).__name__}: {exc}"

        thread = threading.Thread(target=work, daemon=True, name=f"logs-{res.name}")
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join(max(0.0, deadline - clock()))
    for thread, (_, spool, res) in zip(threads, spools):
        if thread.is_alive():
            spool.freeze()
            res.ok = False
            res.error = res.error or BUDGET_ERROR
            result.partial = True

    writers: list[_Writer] = []
    try:
        log_writer = _Writer(directory, f"rollback-{bundle}.log")
        writers.append(log_writer)
        _merge(spools, log_writer, options.max_total_bytes)
        inspect_writer = _Writer(directory, f"rollback-{bundle}.inspect.json")
        writers.append(inspect_writer)
        result.inspect_docs, result.image_docs = _inspect(client, docs, redactor, result)
        inspect_writer.write(json.dumps(
            [dict(doc, RollbackPmImage=result.image_docs.get(doc.get("Image", ""))) for doc in result.inspect_docs],
            indent=2).encode())
        result.containers = [res for _, _, res in spools] + result.containers
        for _, _, res in spools:
            if not res.ok:
                result.errors.append(f"{res.name}: {res.error}")
        result.partial = result.partial or clock() > deadline
        files = [log_writer.commit("log", bundle), inspect_writer.commit("inspect", bundle)]
        writers.clear()
        result.redaction_counts = dict(sorted(redactor.counts.items()))
        manifest = _manifest(result, files, selection, options, now, clock() - started)
        manifest_writer = _Writer(directory, f"rollback-{bundle}.manifest.json")
        writers.append(manifest_writer)
        manifest_writer.write(json.dumps(manifest, indent=2).encode())
        files.append(manifest_writer.commit("manifest", bundle))
        writers.clear()
        result.files = files
    finally:
        for writer in writers:
            writer.abort()
        for _, spool, _ in spools:
            spool.discard()
    log.info("evidence collected", bundle=bundle, containers=len(result.containers), partial=result.partial)
    return result


def _merge(spools: list[tuple[dict[str, Any], Spool, ContainerResult]], writer: _Writer,
           max_total: int | None) -> None:
    """Interleave every container's kept lines by timestamp; with a total cap keep the newest."""

    def keyed(index: int, name: str, spool: Spool, res: ContainerResult):
        last = ""
        for ts, stream, text in spool.lines():
            last = ts or last  # continuation records sort with their line
            yield last, index, name, stream, ts, text

    def encode(name: str, stream: str, ts: str, text: str) -> bytes:
        return f"{name} {stream} {ts} {text}\n".encode("utf-8", "replace") if ts else \
            f"{name} {stream} {text}\n".encode("utf-8", "replace")

    for _, spool, res in spools:
        res.kept_bytes = 0
    total = 0
    if max_total is not None:
        total = sum(len(encode(res.name, s, t, x)) for _, spool, res in spools for t, s, x in spool.lines())
    skip = max(0, total - max_total) if max_total is not None else 0
    streams = [keyed(i, res.name, spool, res) for i, (_, spool, res) in enumerate(spools)]
    by_index = [res for _, _, res in spools]
    for _, index, name, stream, ts, text in heapq.merge(*streams, key=lambda r: (r[0], r[1])):
        data = encode(name, stream, ts, text)
        if skip > 0:
            skip -= len(data)
            continue
        writer.write(data)
        by_index[index].kept_bytes += len(text.encode("utf-8", "replace")) + 1
    for _, spool, res in spools:
        res.original_bytes = spool.original_bytes
        res.truncated = res.kept_bytes < res.original_bytes


def _inspect(client: Any, docs: list[dict[str, Any]], redactor: Redactor,
             result: BundleResult) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """Redacted inspect documents, fail-closed per document, plus image summaries."""
    out = []
    images: dict[str, dict[str, Any]] = {}
    for doc in docs:
        try:
            out.append(redactor.document(doc))
        except Exception as exc:
            result.errors.append(f"{_name(doc)}: inspect document not written: redaction failed ({type(exc).__name__})")
            continue
        image_id = doc.get("Image", "")
        if image_id and image_id not in images:
            try:
                image = client.inspect_image(image_id)
                images[image_id] = redactor.document({
                    "Id": image.get("Id"), "RepoTags": image.get("RepoTags") or [],
                    "RepoDigests": image.get("RepoDigests") or [], "Created": image.get("Created"),
                    "Labels": (image.get("Config") or {}).get("Labels") or {},
                })
            except Exception as exc:
                result.errors.append(f"{_name(doc)}: image {image_id[:19]} not inspected ({type(exc).__name__})")
    return out, images


def _manifest(result: BundleResult, files: list[EvidenceFile], selection: Selection, options: CollectOptions,
              now: datetime, elapsed: float) -> dict[str, Any]:
    return {
        "bundle": result.bundle_id,
        "collected_at": iso(now),
        "tool": {"name": "rollback-pm", "version": __version__},
        "selection": asdict(selection),
        "options": {"since": iso(options.since), "max_bytes_per_container": options.max_bytes_per_container,
                    "max_total_bytes": options.max_total_bytes, "timeout": options.timeout},
        "files": [{"name": Path(f.path).name, "kind": f.kind, "sha256": f.sha256, "bytes": f.bytes} for f in files],
        "containers": [asdict(c) for c in result.containers],
        "partial": result.partial,
        "errors": result.errors,
        "redactions": result.redaction_counts,
        "elapsed_seconds": round(elapsed, 3),
    }
