"""`rollback-pm ledger check` and `ledger rebuild`: what the state dir holds, and getting the
incidents back when the ledger is gone.

``check`` reads only. It runs SQLite's integrity check and reads the schema version, then
compares the ledger with the files around it: drafts (their marker names the incident),
the file tracker's ticket files and the evidence bundles. A file the ledger does not know
and a ledger row whose file is gone are both problems.

``rebuild`` recovers incidents from those files into a fresh ledger. A draft gives the
incident id, its deadline and the facts the templates print (SHAs, service, environment);
a ticket file gives the ticket itself, its status and the facts table of its body; an
evidence manifest becomes the incident's evidence when exactly one draft or ticket names
its bundle. The new ledger is built beside the old one and swapped in under the ledger's
lock; the old one is moved aside, never deleted. What could not be recovered is listed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import stat
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from filelock import FileLock
from filelock import Timeout as FileLockTimeout

from rollback_pm.errors import LedgerError, TicketFileError, UsageError
from rollback_pm.facts.timeline import default_severity
from rollback_pm.ledger import (
    BACKUP_DIR,
    DB_NAME,
    LOCK_NAME,
    SCHEMA_VERSION,
    SIDE_FILES,
    Ledger,
    lock_file,
    open_state_dir,
    read_incident,
    record_id,
    unusable_reason,
)
from rollback_pm.log import get_logger
from rollback_pm.models import EvidenceFile, Incident, TicketRef
from rollback_pm.safe_dirs import read_nofollow
from rollback_pm.timeutil import parse_ts, stamp, utcnow
from rollback_pm.trackers.file import KEY_PREFIX, read_ticket

log = get_logger(__name__)

MAX_DRAFT_BYTES = 4 * 1024 * 1024
MAX_MANIFEST_BYTES = 16 * 1024 * 1024
UNKNOWN = "unknown"
_MARKER = re.compile(r"<!--\s*rollback-pm\b([^>]*)-->")
_MARKER_FIELD = re.compile(r"(\w+)=(\S+)")
_ID = re.compile(r"[\w.:-]{1,64}")
_BUNDLE_FILE = re.compile(r"^rollback-(?P<bundle>\d{8}T\d{6}Z(?:-\d+)?)\.(?P<kind>log|inspect\.json|manifest\.json)$")
_KINDS = {"log": "log", "inspect.json": "inspect", "manifest.json": "manifest"}
_ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"

# Facts as the ticket body (tickets.ticket_spec) and the four templates print them.
_TICKET_FACTS = {
    "deploy_sha": re.compile(r"^\| Deploy SHA \| `([0-9a-f]{40})` \|", re.M),
    "rollback_sha": re.compile(r"^\| Rollback SHA \| `([0-9a-f]{40})`", re.M),
    "rollback_sha_source": re.compile(r"^\| Rollback SHA \| `[0-9a-f]{40}` \(([\w-]+)\) \|", re.M),
    "detected_at": re.compile(rf"^\| Detected \| ({_ISO}) by ", re.M),
    "detected_by": re.compile(r"^\| Detected \| \S+ by (.+?) \|$", re.M),
    "mitigated_at": re.compile(rf"^\| Mitigated \| ({_ISO}) \|", re.M),
    "severity": re.compile(r"^\| Severity \| (Critical|High|Medium|Low) \|", re.M),
}
_TICKET_TITLE = re.compile(r"^Postmortem: (?P<service>.+) (?P<environment>\S+) rollback \S+ -> \S+$")
_DRAFT_FACTS = {
    "deploy_sha": re.compile(r"Deploy SHA[^`\n]*`([0-9a-f]{40})`"),
    "rollback_sha": re.compile(r"Rollback SHA[^`\n]*`([0-9a-f]{40})`"),
    "mitigated_at": re.compile(rf"Mitigation time \(UTC\) \| ({_ISO}) \|"),
    "detected_at": re.compile(rf"Detection time \(UTC\) \| ({_ISO}) \|"),
    "environment": re.compile(r"Affected environment \| ([\w.-]+) \|"),
    "severity": re.compile(r"\| Severity \| (Critical|High|Medium|Low) \|"),
}
_DRAFT_SERVICE_ENV = re.compile(r"\*\*Service / environment:\*\* (?P<service>.+?) / (?P<environment>[\w.-]+)\s*$", re.M)
_DRAFT_TITLE = re.compile(r"^# [^\n]*?(?:—|:) (?P<service>.+?) rollback on (?P<environment>[\w.\\-]+)", re.M)


# --------------------------------------------------------------------------- check


@dataclass
class Problem:
    kind: str  # ledger | schema | record | draft | ticket | evidence
    message: str  # what is wrong and what to do
    path: str | None = None
    incident: str | None = None


@dataclass
class CheckReport:
    ledger: str
    exists: bool
    schema_version: int | None
    expected_schema_version: int
    integrity: str  # "ok", what SQLite found, or why it was not checked
    incidents: int
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "clean": self.clean}


@dataclass
class _Known:
    """What the ledger records: incidents, their drafts, tickets and evidence paths."""

    incidents: set[str] = field(default_factory=set)
    drafts: dict[str, str] = field(default_factory=dict)  # incident -> draft path
    tickets: dict[str, tuple[str, str]] = field(default_factory=dict)  # incident -> (tracker, key)
    evidence: dict[str, str | None] = field(default_factory=dict)  # path -> incident (None: pending)


def check(state_dir: Path | str, *, drafts_dirs: Sequence[Path] = (), evidence_dir: Path | None = None) -> CheckReport:
    """Read the state dir and report every problem; changes nothing."""
    state = open_state_dir(state_dir)
    path = state / DB_NAME
    report = CheckReport(str(path), path.exists() or path.is_symlink(), None, SCHEMA_VERSION, "not checked", 0)
    known = _read_ledger(path, report)
    _check_drafts(state, drafts_dirs, known, report)
    _check_tickets(state, known, report)
    _check_evidence(evidence_dir, known, report)
    return report


def _read_ledger(path: Path, report: CheckReport) -> _Known:
    known = _Known()
    if path.is_symlink():
        report.problems.append(Problem("ledger", f"ledger {path} is a symlink; replace it with the file", str(path)))
        return known
    if not report.exists:
        report.integrity = "no ledger"
        report.notes.append(f"no ledger at {path} yet: the first command that needs one creates it")
        return known
    try:
        reason = unusable_reason(path)
    except LedgerError as exc:
        reason = str(exc)
    if reason:
        report.integrity = "unusable"
        report.problems.append(
            Problem("ledger", f"ledger {path} {reason}; `rollback-pm ledger rebuild` recovers its incidents", str(path))
        )
        return known
    db = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True, timeout=30.0)
    try:
        found = [row[0] for row in db.execute("PRAGMA integrity_check(20)")]
        report.integrity = "ok" if found == ["ok"] else "; ".join(found)
        if found != ["ok"]:
            report.problems.append(
                Problem(
                    "ledger",
                    f"ledger {path} fails SQLite's integrity check ({report.integrity}); "
                    "`rollback-pm ledger rebuild` recovers its incidents",
                    str(path),
                )
            )
        version = db.execute("PRAGMA user_version").fetchone()[0]
        report.schema_version = version
        if version > SCHEMA_VERSION:
            report.problems.append(
                Problem(
                    "schema",
                    f"ledger {path} has schema version {version}, newer than this rollback-pm knows "
                    f"({SCHEMA_VERSION}); upgrade rollback-pm",
                    str(path),
                )
            )
        elif version < SCHEMA_VERSION:
            report.notes.append(
                f"schema version {version}: the next command that opens the ledger upgrades it to {SCHEMA_VERSION}, "
                f"after a backup in {BACKUP_DIR}/"
            )
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        # Values that are not text belong to damaged records, reported below; they name no file.
        for iid, draft in db.execute("SELECT id, draft_path FROM incidents"):
            if isinstance(iid, str):
                known.incidents.add(iid)
                if isinstance(draft, str) and draft:
                    known.drafts[iid] = draft
        report.incidents = db.execute("SELECT COUNT(*) FROM incidents").fetchone()[0]
        for iid, tracker, key in db.execute("SELECT incident_id, tracker, key FROM tickets"):
            if isinstance(iid, str) and isinstance(tracker, str) and isinstance(key, str):
                known.tickets[iid] = (tracker, key)
        for iid, evidence in db.execute("SELECT incident_id, path FROM evidence"):
            if isinstance(evidence, str):
                known.evidence[evidence] = iid if isinstance(iid, str) else None
        if "pending_evidence" in tables:
            for (evidence,) in db.execute("SELECT path FROM pending_evidence"):
                if isinstance(evidence, str):
                    known.evidence.setdefault(evidence, None)
        if version == SCHEMA_VERSION:
            _check_records(db, path, report)
    except sqlite3.Error as exc:
        report.problems.append(Problem("ledger", f"ledger {path} cannot be read ({exc})", str(path)))
    finally:
        db.close()
    return known


def _check_records(db: sqlite3.Connection, path: Path, report: CheckReport) -> None:
    """Every incident read as the commands read it: a damaged one is a problem naming it."""
    db.row_factory = sqlite3.Row
    try:
        for row in db.execute("SELECT * FROM incidents ORDER BY id"):
            try:
                read_incident(db, path, row)
            except LedgerError as exc:
                report.problems.append(Problem("record", str(exc), str(path), record_id(row["id"])))
    finally:
        db.row_factory = None


def draft_dirs(state: Path, extra: Iterable[Path | None]) -> list[Path]:
    """Where drafts may be: the state dir's drafts/ and the configured places."""
    found: list[Path] = []
    for directory in (state / "drafts", *extra):
        if directory is not None and Path(directory) not in found:
            found.append(Path(directory))
    return found


def _drafts(directories: Iterable[Path]) -> Iterable[tuple[Path, dict[str, str], str]]:
    """(path, marker fields, text) of every draft with a rollback-pm marker."""
    for directory in directories:
        if not directory.is_dir() or directory.is_symlink():
            continue
        for path in sorted(directory.glob("*.md")):
            try:
                text = read_nofollow(path, MAX_DRAFT_BYTES)[:MAX_DRAFT_BYTES].decode("utf-8", "replace")
            except OSError:
                continue
            marker = _MARKER.search(text[:4096])
            if marker:
                fields = dict(_MARKER_FIELD.findall(marker.group(1)))
                if _ID.fullmatch(fields.get("incident", "")):
                    yield path, fields, text


def _check_drafts(state: Path, extra: Sequence[Path], known: _Known, report: CheckReport) -> None:
    recorded = {str(Path(p)) for p in known.drafts.values()}
    directories = draft_dirs(state, [*extra, *(Path(p).parent for p in known.drafts.values())])
    for iid, draft in sorted(known.drafts.items()):
        if not Path(draft).is_file():
            report.problems.append(
                Problem(
                    "draft",
                    f"incident {iid}'s draft {draft} is gone; `rollback-pm draft {iid}` writes it again",
                    draft,
                    iid,
                )
            )
    for path, fields, _ in _drafts(directories):
        iid = fields["incident"]
        if iid not in known.incidents:
            report.problems.append(
                Problem(
                    "draft",
                    f"draft {path} belongs to incident {iid}, which the ledger does not know; "
                    "`rollback-pm ledger rebuild` recovers it",
                    str(path),
                    iid,
                )
            )
        elif str(path) not in recorded:
            report.notes.append(
                f"draft {path} is a copy of incident {iid}'s (the ledger records {known.drafts.get(iid)})"
            )


def _ticket_files(state: Path) -> list[Path]:
    directory = state / "tickets"
    if not directory.is_dir() or directory.is_symlink():
        return []
    return sorted(directory.glob("*.json"))


def _check_tickets(state: Path, known: _Known, report: CheckReport) -> None:
    files = {p.stem: p for p in _ticket_files(state)}
    for iid, (tracker, key) in sorted(known.tickets.items()):
        if tracker == "file" and key not in files:
            path = state / "tickets" / f"{key}.json"
            report.problems.append(
                Problem(
                    "ticket",
                    f"incident {iid}'s ticket file {path} is gone; restore it from a backup "
                    "(the ledger still points at it)",
                    str(path),
                    iid,
                )
            )
    for key, path in files.items():
        try:
            read_ticket(path)
        except FileNotFoundError:
            continue
        except TicketFileError as exc:
            report.problems.append(Problem("ticket", str(exc), str(path)))
            continue
        iid = key.removeprefix(KEY_PREFIX)
        if iid not in known.incidents:
            report.problems.append(
                Problem(
                    "ticket",
                    f"ticket file {path} belongs to incident {iid}, which the ledger does not know; "
                    "`rollback-pm ledger rebuild` recovers it",
                    str(path),
                    iid,
                )
            )


def _bundles(evidence_dir: Path | None) -> dict[str, list[Path]]:
    """Evidence files on disk by bundle id."""
    if evidence_dir is None or not evidence_dir.is_dir() or evidence_dir.is_symlink():
        return {}
    bundles: dict[str, list[Path]] = {}
    for path in sorted(evidence_dir.iterdir()):
        match = _BUNDLE_FILE.match(path.name)
        if match:
            bundles.setdefault(match.group("bundle"), []).append(path)
    return bundles


def _check_evidence(evidence_dir: Path | None, known: _Known, report: CheckReport) -> None:
    for evidence, iid in sorted(known.evidence.items()):
        if not os.path.lexists(evidence):
            owner = f"incident {iid}'s evidence" if iid else "evidence waiting for `hook --phase finalize`"
            report.problems.append(
                Problem(
                    "evidence",
                    f"{owner} {evidence} is gone; the manifest's sha256 still identifies it if a copy exists",
                    evidence,
                    iid,
                )
            )
    if evidence_dir is None:
        report.notes.append("evidence dir not given: evidence files on disk were not compared with the ledger")
        return
    for bundle, files in sorted(_bundles(Path(evidence_dir)).items()):
        unknown = [p for p in files if str(p) not in known.evidence]
        if unknown:
            report.problems.append(
                Problem(
                    "evidence",
                    f"evidence bundle {bundle} in {evidence_dir} ({', '.join(p.name for p in unknown)}) is not in the "
                    "ledger; `rollback-pm ledger rebuild` attributes it to the incident whose draft or ticket names it",
                    str(unknown[0]),
                )
            )


# --------------------------------------------------------------------------- rebuild


@dataclass
class Recovered:
    id: str
    status: str
    sources: list[str] = field(default_factory=list)  # the files it came from
    unknown: list[str] = field(default_factory=list)  # facts no file held
    estimated: list[str] = field(default_factory=list)  # facts worked out, not read


@dataclass
class RebuildReport:
    ledger: str
    moved_aside: list[str] = field(default_factory=list)
    recovered: list[Recovered] = field(default_factory=list)
    not_recovered: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Draft:
    path: Path
    template: str | None
    deadline: datetime | None
    facts: dict[str, str]
    text: str


@dataclass
class _Ticket:
    path: Path
    data: dict[str, Any]
    facts: dict[str, str]


def rebuild(
    state_dir: Path | str,
    *,
    drafts_dirs: Sequence[Path] = (),
    evidence_dir: Path | None = None,
    deadline_hours: Callable[[str], float] = lambda environment: 24.0,
    force: bool = False,
) -> RebuildReport:
    """Recover incidents into a fresh ledger; the old one (if any) is moved aside."""
    state = open_state_dir(state_dir)
    path = state / DB_NAME
    if path.exists() and not path.is_symlink() and not force:
        try:
            healthy = unusable_reason(path) is None
        except LedgerError:
            healthy = False
        if healthy:
            raise UsageError(
                f"ledger {path} passes SQLite's checks; a rebuild would replace it with what the drafts, ticket "
                "files and manifests hold and lose its notifications, outbox and good deploys. Run "
                "`rollback-pm ledger check` to see what is wrong; pass --force to rebuild anyway"
            )
    report = RebuildReport(str(path))
    drafts, tickets = _gather(state, drafts_dirs, report)
    incidents = {
        iid: _incident(iid, drafts.get(iid, []), tickets.get(iid), deadline_hours, report)
        for iid in sorted({*drafts, *tickets})
    }
    evidence = _attribute_evidence(evidence_dir, drafts, tickets, report)
    building = state / f".rebuild-{stamp(utcnow())}-{os.getpid()}"
    try:
        with Ledger(building) as fresh:
            for iid, (incident, idem_key, draft, ticket) in incidents.items():
                incident.evidence = evidence.get(iid, [])
                fresh.upsert_incident(incident, idem_key=idem_key)
                if draft is not None:
                    # no checksum of ours: a re-render treats the file as a human's, never overwrites it
                    fresh.set_draft(iid, draft.path, "", draft.template or "azaion")
                if ticket is not None:
                    fresh.set_ticket(iid, ticket)
                if incident.status != "open":
                    fresh.set_status(iid, incident.status)
        report.moved_aside = _swap(state, building / DB_NAME)
    finally:
        for leftover in building.glob("*") if building.is_dir() else ():
            leftover.unlink()
        if building.is_dir():
            building.rmdir()
    log.info("ledger rebuilt", ledger=str(path), incidents=len(report.recovered))
    return report


def _gather(
    state: Path, drafts_dirs: Sequence[Path], report: RebuildReport
) -> tuple[dict[str, list[_Draft]], dict[str, _Ticket]]:
    drafts: dict[str, list[_Draft]] = {}
    for path, fields, text in _drafts(draft_dirs(state, drafts_dirs)):
        deadline = _time(fields.get("deadline"))
        facts = {name: m.group(1) for name, rx in _DRAFT_FACTS.items() if (m := rx.search(text))}
        named = _DRAFT_SERVICE_ENV.search(text) or _DRAFT_TITLE.search(text)
        if named:
            facts.setdefault("service", _unescape(named.group("service")))
            facts.setdefault("environment", _unescape(named.group("environment")))
        drafts.setdefault(fields["incident"], []).append(_Draft(path, fields.get("template"), deadline, facts, text))
    tickets: dict[str, _Ticket] = {}
    for path in _ticket_files(state):
        try:
            data = read_ticket(path)
        except FileNotFoundError:
            continue
        except TicketFileError as exc:
            report.not_recovered.append(f"{exc} (its incident was recovered from its draft, if it has one)")
            continue
        body = data.get("body") or ""
        facts = {name: m.group(1) for name, rx in _TICKET_FACTS.items() if (m := rx.search(body))}
        title = _TICKET_TITLE.match(data.get("title") or "")
        if title:
            facts.update(service=title.group("service"), environment=title.group("environment"))
        if isinstance(data.get("pipeline_url"), str):
            facts["pipeline_url"] = data["pipeline_url"]
        tickets[path.stem.removeprefix(KEY_PREFIX)] = _Ticket(path, data, facts)
    return drafts, tickets


def _unescape(text: str) -> str:
    """Undo the templates' Markdown escaping of running text."""
    return re.sub(r"\\(.)", r"\1", text).strip()


def _time(value: str | None) -> datetime | None:
    try:
        return parse_ts(value) if value else None
    except (ValueError, OverflowError, UsageError):
        return None


def _incident(
    iid: str,
    drafts: list[_Draft],
    ticket_file: _Ticket | None,
    deadline_hours: Callable[[str], float],
    report: RebuildReport,
) -> tuple[Incident, str, _Draft | None, TicketRef | None]:
    """One incident from its files: the ticket's facts first, then its drafts'."""
    facts: dict[str, str] = {}
    sources: list[str] = []
    if ticket_file is not None:
        facts.update(ticket_file.facts)
        sources.append(str(ticket_file.path))
    for found in drafts:
        for name, value in found.facts.items():
            facts.setdefault(name, value)
        sources.append(str(found.path))
    draft = max(drafts, key=lambda d: d.path.stat().st_mtime) if drafts else None  # the newest is the draft
    environment = facts.get("environment", UNKNOWN)
    recovered = Recovered(iid, "open", sources)
    mitigated = _time(facts.get("mitigated_at"))
    if mitigated is None and draft is not None and draft.deadline is not None:
        mitigated = draft.deadline - timedelta(hours=deadline_hours(environment) or 24.0)
        recovered.estimated.append("mitigated_at (the draft's deadline less the deadline hours)")
    ticket: TicketRef | None = None
    created = None
    status = "open"
    if ticket_file is not None:
        data = ticket_file.data
        resolved = data.get("status") in ("resolved", "closed", "done")
        ticket = TicketRef(
            tracker="file",
            key=ticket_file.path.stem,
            url=ticket_file.path.resolve().as_uri(),
            status="resolved" if resolved else "open",
        )
        status = "done" if resolved else "open"
        created = _time(data.get("created_at") if isinstance(data.get("created_at"), str) else None)
    recovered.status = status
    for name in ("service", "environment", "deploy_sha", "rollback_sha", "mitigated_at"):
        if name not in facts and not (name == "mitigated_at" and mitigated):
            recovered.unknown.append(name)
    if "severity" not in facts:
        recovered.estimated.append("severity (the environment's default)")
    incident = Incident(
        id=iid,
        service=facts.get("service", UNKNOWN),
        environment=environment,
        deploy_sha=facts.get("deploy_sha", UNKNOWN),
        rollback_sha=facts.get("rollback_sha"),
        rollback_sha_source=facts.get("rollback_sha_source") or ("recovered" if "rollback_sha" in facts else None),
        pipeline_url=facts.get("pipeline_url"),
        detected_at=_time(facts.get("detected_at")),
        mitigated_at=mitigated,
        severity=facts.get("severity") or default_severity(environment),
        detected_by=facts.get("detected_by", UNKNOWN),
        status=status,
        created_at=created,
        warnings=[f"recovered by `rollback-pm ledger rebuild` from {', '.join(sources)}"],
    )
    report.recovered.append(recovered)
    # the real key is not known (the pipeline number is in no file): one that cannot collide
    return incident, f"recovered\x1f{iid}", draft, ticket


def _manifest(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(read_nofollow(path, MAX_MANIFEST_BYTES)[: MAX_MANIFEST_BYTES + 1])
    except (OSError, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def _attribute_evidence(
    evidence_dir: Path | None,
    drafts: dict[str, list[_Draft]],
    tickets: dict[str, _Ticket],
    report: RebuildReport,
) -> dict[str, list[EvidenceFile]]:
    """Each bundle to the one incident whose draft or ticket names one of its files."""
    texts: dict[str, str] = {}
    for iid, found in drafts.items():
        texts[iid] = "\n".join(d.text for d in found)
    for iid, ticket in tickets.items():
        texts[iid] = texts.get(iid, "") + "\n" + json.dumps(ticket.data)
    evidence: dict[str, list[EvidenceFile]] = {}
    for bundle, files in sorted(_bundles(evidence_dir).items()):
        names = [p.name for p in files]
        owners = sorted(iid for iid, text in texts.items() if any(name in text for name in names))
        if len(owners) != 1:
            why = "no draft or ticket names it" if not owners else f"several incidents name it ({', '.join(owners)})"
            report.not_recovered.append(f"evidence bundle {bundle}: {why}; its files stay in {evidence_dir}")
            continue
        manifest_path = next((p for p in files if p.name.endswith(".manifest.json")), None)
        manifest = _manifest(manifest_path) if manifest_path else None
        listed = {f.get("name"): f for f in (manifest or {}).get("files", []) if isinstance(f, dict) and f.get("name")}
        for path in files:
            kind = _KINDS[_BUNDLE_FILE.match(path.name).group("kind")]  # type: ignore[union-attr]
            entry = listed.get(path.name) or {}
            listed_sha, listed_size = entry.get("sha256"), entry.get("bytes")
            sha = listed_sha if isinstance(listed_sha, str) else _sha256(path)
            size = listed_size if isinstance(listed_size, int) else path.stat().st_size
            evidence.setdefault(owners[0], []).append(EvidenceFile(str(path), kind, sha, size, bundle))
        if manifest is None:
            report.not_recovered.append(
                f"evidence bundle {bundle}: no readable manifest; its files were recorded with checksums taken now"
            )
    return evidence


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _swap(state: Path, fresh: Path) -> list[str]:
    """Move the ledger (and its -wal/-shm) aside and put ``fresh`` in its place, under the lock."""
    path = state / DB_NAME
    aside = f".broken-{stamp(utcnow())}"
    moved: list[str] = []
    try:
        with FileLock(lock_file(state, LOCK_NAME, "ledger lock"), timeout=60):
            for suffix in ("", *SIDE_FILES):
                current = state / (DB_NAME + suffix)
                if os.path.lexists(current):
                    target = state / (DB_NAME + aside + suffix)
                    if os.path.lexists(target):
                        raise LedgerError(f"{target} exists already; move it away and run the rebuild again")
                    os.rename(current, target)
                    moved.append(str(target))
            os.chmod(fresh, 0o640)
            os.link(fresh, path)
    except FileLockTimeout:
        raise LedgerError(f"ledger {path} is held by another rollback-pm for over 60s; nothing was changed") from None
    except OSError as exc:
        raise LedgerError(
            f"ledger {path} could not be replaced ({exc.strerror or exc}); {moved or 'nothing'} moved"
        ) from None
    if not stat.S_ISREG(os.stat(path).st_mode):  # pragma: no cover - the link above made it
        raise LedgerError(f"ledger {path} is not the rebuilt file")
    return moved


# --------------------------------------------------------------------------- output
