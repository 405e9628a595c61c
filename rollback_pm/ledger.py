"""The ledger: SQLite (WAL) under the state dir, one row per rollback.

An incident's id derives from its idempotency key (service, environment, deploy SHA,
rollback SHA, pipeline number), so a retried hook updates the same incident. Every
multi-row write runs in one ``BEGIN IMMEDIATE`` transaction, which also serialises two
hooks racing on the same rollback.

The ledger is never lost silently. A new one is built under a temporary name and linked
into place complete, so an existing ``ledger.sqlite3`` that is empty (0 bytes), not SQLite,
fails SQLite's quick check or has no schema version is not ours half-made: it is refused,
untouched, with the way to recover (``rollback-pm ledger check`` / ``ledger rebuild``).
Before a schema migration the ledger is copied with SQLite's backup API to
``backups/ledger.v<version>.<time>.sqlite3``. The state dir, the ledger's files and its
lock follow the symlink policy of ``rollback_pm.safe_dirs``.
"""

from __future__ import annotations

import builtins
import errno
import hashlib
import json
import os
import sqlite3
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from filelock import FileLock
from filelock import Timeout as FileLockTimeout

from rollback_pm import stored_facts
from rollback_pm.errors import IncidentNotFound, LedgerError, UsageError
from rollback_pm.log import get_logger
from rollback_pm.models import (
    FOLLOWUP_CLOSED,
    FOLLOWUP_STATUSES,
    EvidenceFile,
    Followup,
    Incident,
    Signature,
    SmokeStep,
    TicketRef,
    TimelineEvent,
)
from rollback_pm.safe_dirs import ensure_dir, refuse_symlink
from rollback_pm.timeutil import EARLIEST, iso, parse_ts, stamp, utcnow

log = get_logger(__name__)

DB_NAME = "ledger.sqlite3"
LOCK_NAME = ".ledger.lock"
BACKUP_DIR = "backups"
SQLITE_NOTADB = 26  # sqlite3.SQLITE_NOTADB, named there from Python 3.11
NOT_SQLITE = "is not a SQLite database (it was overwritten or is another file)"
SIDE_FILES = ("-wal", "-shm", "-journal")
STATE_DIR_FIX = "set --state-dir or ROLLBACK_PM_STATE_DIR to a real, writable directory"

# Forward migrations; index i migrates user_version i -> i+1. Never edit a shipped one.
MIGRATIONS: tuple[str, ...] = (
    # 1: the walking skeleton
    """
    CREATE TABLE incidents (
        id TEXT PRIMARY KEY,
        idem_key TEXT NOT NULL UNIQUE,
        service TEXT NOT NULL,
        environment TEXT NOT NULL,
        deploy_sha TEXT NOT NULL,
        rollback_sha TEXT,
        rollback_sha_source TEXT,
        pipeline_number TEXT,
        pipeline_url TEXT,
        repo TEXT,
        started_at TEXT,
        detected_at TEXT,
        mitigated_at TEXT,
        severity TEXT NOT NULL,
        detected_by TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'open',
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        deploy_ticket TEXT,
        draft_path TEXT,
        draft_sha256 TEXT,
        draft_template TEXT,
        facts_json TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE smoke_steps (
        incident_id TEXT NOT NULL REFERENCES incidents(id),
        source TEXT NOT NULL,
        step INTEGER,
        name TEXT NOT NULL,
        status TEXT NOT NULL,
        ts TEXT,
        started_at TEXT,
        message TEXT NOT NULL DEFAULT '',
        log_excerpt TEXT NOT NULL DEFAULT '',
        UNIQUE (incident_id, source, step, name)
    );
    CREATE TABLE evidence (
        incident_id TEXT NOT NULL REFERENCES incidents(id),
        path TEXT NOT NULL,
        kind TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        bytes INTEGER NOT NULL,
        bundle TEXT NOT NULL,
        UNIQUE (incident_id, path)
    );
    CREATE TABLE tickets (
        incident_id TEXT PRIMARY KEY REFERENCES incidents(id),
        tracker TEXT NOT NULL,
        key TEXT NOT NULL,
        url TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'open',
        checked_at TEXT,
        created_at TEXT NOT NULL
    );
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        incident_id TEXT NOT NULL REFERENCES incidents(id),
        action TEXT NOT NULL,
        payload TEXT NOT NULL DEFAULT '{}',
        created_at TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        done_at TEXT
    );
    """,
    # 2: deadlines, good deploys, timeline events, two-phase hooks, owners
    """
    CREATE TABLE notifications (
        incident_id TEXT NOT NULL REFERENCES incidents(id),
        kind TEXT NOT NULL,
        channel TEXT NOT NULL,
        sent_at TEXT NOT NULL,
        UNIQUE (incident_id, kind, channel)
    );
    CREATE TABLE good_deploys (
        service TEXT NOT NULL,
        environment TEXT NOT NULL,
        sha TEXT NOT NULL,
        recorded_at TEXT NOT NULL,
        PRIMARY KEY (service, environment)
    );
    CREATE TABLE events (
        incident_id TEXT NOT NULL REFERENCES incidents(id),
        ts TEXT NOT NULL,
        text TEXT NOT NULL,
        source TEXT NOT NULL,
        UNIQUE (incident_id, ts, text)
    );
    CREATE TABLE pending_evidence (
        pending_key TEXT NOT NULL,
        path TEXT NOT NULL,
        kind TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        bytes INTEGER NOT NULL,
        bundle TEXT NOT NULL,
        facts_json TEXT NOT NULL DEFAULT '{}',
        UNIQUE (pending_key, path)
    );
    ALTER TABLE incidents ADD COLUMN owner TEXT;
    CREATE INDEX outbox_pending ON outbox (done_at, id);
    """,
    # 3: when a postmortem became done (the report's "on time"); follow-up tickets of the
    # action tables and failure signatures for repeat detection (issue 19 fills both)
    """
    ALTER TABLE incidents ADD COLUMN done_at TEXT;
    CREATE TABLE followups (
        incident_id TEXT NOT NULL REFERENCES incidents(id),
        row_key TEXT NOT NULL,
        owner TEXT,
        action TEXT NOT NULL,
        target_date TEXT,
        tracker TEXT,
        key TEXT,
        url TEXT,
        status TEXT NOT NULL DEFAULT 'open',
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        closed_at TEXT,
        PRIMARY KEY (incident_id, row_key)
    );
    CREATE TABLE signatures (
        incident_id TEXT PRIMARY KEY REFERENCES incidents(id),
        signature TEXT NOT NULL,
        failed_step TEXT,
        templates_json TEXT NOT NULL DEFAULT '[]',
        created_at TEXT NOT NULL
    );
    CREATE INDEX signatures_signature ON signatures (signature);
    """,
    # 4: what the failing software said (rollback_pm.signals), one report per evidence bundle
    """
    CREATE TABLE signal_reports (
        incident_id TEXT NOT NULL REFERENCES incidents(id),
        bundle TEXT NOT NULL,
        report_json TEXT NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (incident_id, bundle)
    );
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)

# Named here because inside the class ``list`` is the Ledger.list method.
Rows = list[dict[str, Any]]
Followups = list[Followup]
Signatures = list[Signature]


def idempotency_key(
    service: str, environment: str, deploy_sha: str, rollback_sha: str | None, pipeline_number: str | None
) -> str:
    return "\x1f".join([service, environment, deploy_sha, rollback_sha or "", pipeline_number or ""])


def incident_id(key: str) -> str:
    """12 hex characters: short enough to type, long enough never to collide in one ledger."""
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def pending_key(service: str, environment: str, deploy_sha: str, pipeline_number: str | None) -> str:
    """Evidence taken in `--phase collect`, before the rollback SHA is known, waits under this key."""
    return "\x1f".join([service, environment, deploy_sha, pipeline_number or ""])


# The times rollback-pm writes lie in this window (inputs are checked to 2000-01-01 .. now + 1
# day); a stored time outside it is damage, and would overflow the deadline arithmetic.
STORED_EARLIEST = EARLIEST
STORED_LATEST = datetime(9000, 1, 1, tzinfo=timezone.utc)
TIME_COLUMNS = ("started_at", "detected_at", "mitigated_at", "created_at", "done_at")


def stored_time(value: Any, what: str = "timestamp") -> datetime | None:
    """A time column as the ledger holds it (None when empty); ``Damaged`` naming ``what`` otherwise."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise stored_facts.Damaged(f"{what} is {type(value).__name__}, not an ISO 8601 time")
    try:
        parsed = parse_ts(value, what)
    except (UsageError, ValueError, OverflowError):
        raise stored_facts.Damaged(
            f"{what} {value[:40]!r} is not an ISO 8601 time (e.g. 2026-05-13T08:47:21Z)"
        ) from None
    if parsed is None or not STORED_EARLIEST <= parsed < STORED_LATEST:
        raise stored_facts.Damaged(
            f"{what} {value[:40]!r} lies outside {STORED_EARLIEST.date()} .. {STORED_LATEST.date()}, "
            "where rollback-pm never writes"
        )
    return parsed


def _typed(value: Any, kind: type, what: str, *, optional: bool = False) -> Any:
    """A stored column as the type rollback-pm writes (SQLite keeps whatever it is given)."""
    if value is None and optional:
        return None
    if kind is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind is str and isinstance(value, str):
        return value
    shown = "NULL" if value is None else type(value).__name__
    raise stored_facts.Damaged(f"{what} is {shown}, not {'text' if kind is str else 'a whole number'}")


@dataclass(frozen=True)
class Unreadable:
    """A ledger record that cannot be read, so a reader reports it and goes on with the rest.

    ``problem`` is the LedgerError's message: it names the record and how to fix it. The
    other fields are what could be read of it (for a listing), as text."""

    kind: str  # incident | outbox entry
    ident: str
    problem: str
    service: str = "?"
    environment: str = "?"
    status: str = "?"

    @staticmethod
    def of_incident(row: sqlite3.Row, problem: str) -> Unreadable:
        def shown(name: str) -> str:
            value = row[name]
            return value if isinstance(value, str) else "?"

        return Unreadable(
            "incident", record_id(row["id"]), problem, shown("service"), shown("environment"), shown("status")
        )


def record_id(value: Any) -> str:
    """A record's id as text for a message, also when the column is damaged."""
    return value if isinstance(value, str) and value else f"(id {'NULL' if value is None else repr(value)[:20]})"


def open_state_dir(path: Path | str) -> Path:
    """The state dir as a real directory (created when missing), by the symlink policy."""
    return ensure_dir(path, "state dir", STATE_DIR_FIX, LedgerError)


def lock_file(directory: Path, name: str, what: str) -> str:
    """A lock file's path in ``directory``, refused when a symlink was planted there."""
    refuse_symlink(directory / name, what, "remove the link; rollback-pm creates the lock file itself", LedgerError)
    return str(directory / name)


def recovery_hint(path: Path) -> str:
    return (
        f"It was not changed. `rollback-pm ledger check` says what else is in the state dir; "
        f"`rollback-pm ledger rebuild` moves it aside and recovers the incidents from the drafts, ticket files "
        f"and evidence manifests; or restore {path.name} from a backup (the state dir's {BACKUP_DIR}/ holds "
        "the copies taken before each schema upgrade)"
    )


def unusable_reason(path: Path) -> str | None:
    """Why an existing ledger file cannot be used as is (None: it looks like a ledger).

    Only reads: the file itself is never written, whatever the answer. A file that cannot be
    read at all is a LedgerError about permissions, not damage.

    The file is only ever opened through SQLite. POSIX locks belong to the process, so closing
    any other descriptor of the ledger drops the locks this process's open connections hold on
    it: another process then checkpoints and resets the WAL under them, and they read a
    "malformed" database until they close (SQLite's "How To Corrupt", section 2.2).
    """
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            return "is not a regular file (a directory, a device or a pipe)"
        if not os.access(path, os.R_OK):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
    except OSError as exc:
        raise LedgerError(
            f"ledger {path} cannot be read ({exc.strerror}); check the state dir's owner and permissions"
        ) from None
    wal = path.with_name(path.name + "-wal")
    if info.st_size == 0 and not (wal.is_file() and wal.stat().st_size > 0):
        return "is empty (0 bytes): the incidents it held are gone"
    # A check can see a writer's WAL recovery half done (after a killed run, while the next
    # one starts): damage is only believed when it is still there a moment later.
    for pause in CORRUPT_RECHECKS:
        reason = _checked(path)
        if reason is None or not reason.startswith("is corrupt"):
            return reason
        time.sleep(pause)
    return _checked(path)


CORRUPT_RECHECKS = (0.2, 0.5, 1.0)


def _checked(path: Path) -> str | None:
    """SQLite's own quick check and the schema version, through a read-only connection."""
    db: sqlite3.Connection | None = None
    try:
        db = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True, timeout=30.0)
        problems = [row[0] for row in db.execute("PRAGMA quick_check(5)")]
        if problems != ["ok"]:
            return f"is corrupt (SQLite's check: {'; '.join(problems)})"
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version == 0:
            return "has no schema version: it is not a rollback-pm ledger, or its creation was cut short"
    except sqlite3.OperationalError as exc:  # locked, no permission, no space: not damage
        raise LedgerError(
            f"ledger {path} cannot be opened ({exc}); check the state dir's permissions and free space"
        ) from None
    except sqlite3.DatabaseError as exc:  # "file is not a database", "disk image is malformed"
        if getattr(exc, "sqlite_errorcode", None) == SQLITE_NOTADB or "not a database" in str(exc):
            return NOT_SQLITE
        return f"is corrupt ({exc})"
    finally:
        if db is not None:
            db.close()
    return None


class Ledger:
    """The SQLite store. Use as a context manager or call close()."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = open_state_dir(state_dir)
        self.path = self.state_dir / DB_NAME
        lock_path = lock_file(self.state_dir, LOCK_NAME, "ledger lock")
        for name in (DB_NAME, *(DB_NAME + s for s in SIDE_FILES)):
            refuse_symlink(
                self.state_dir / name, "ledger file", "replace the link with the file it points to", LedgerError
            )
        connection: sqlite3.Connection | None = None  # closed again if opening fails half-way
        try:
            # Creating, switching to WAL and migrating need the database to themselves: SQLite
            # answers "locked" at once (no busy wait) to a second process doing the same, so
            # two hooks starting together take turns here.
            with FileLock(lock_path, timeout=60):
                if not self.path.exists():
                    self._create()
                else:
                    reason = unusable_reason(self.path)
                    if reason:
                        raise LedgerError(f"ledger {self.path} {reason}. {recovery_hint(self.path)}")
                self.db = connection = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
                self.db.row_factory = sqlite3.Row
                self.db.execute("PRAGMA busy_timeout = 30000")
                self.db.execute("PRAGMA journal_mode = WAL")
                self.db.execute("PRAGMA foreign_keys = ON")
                self._migrate()
                os.chmod(self.path, 0o640)
        except FileLockTimeout:
            raise LedgerError(
                f"ledger {self.path} is held by another rollback-pm for over 60s; check for a hung process"
            ) from None
        except sqlite3.Error as exc:
            if connection is not None:
                connection.close()
            raise LedgerError(
                f"ledger {self.path} cannot be opened ({exc}); check the state dir's permissions and free space"
            ) from None
        except OSError as exc:  # the lock file or the new ledger could not be made
            if connection is not None:
                connection.close()
            raise LedgerError(f"ledger {self.path} cannot be opened ({exc.strerror or exc}); {STATE_DIR_FIX}") from None
        except BaseException:
            if connection is not None:
                connection.close()
            raise

    def _create(self) -> None:
        """A new ledger, built under a temporary name and linked into place complete.

        So the ledger file exists only with its schema: one found empty or without a
        schema version was damaged later, never left half-made by us (see unusable_reason).
        """
        temp = self.state_dir / f".{DB_NAME}.new-{os.getpid()}"
        for leftover in (temp, *(temp.with_name(temp.name + s) for s in SIDE_FILES)):
            leftover.unlink(missing_ok=True)
        try:
            db = sqlite3.connect(temp, isolation_level=None)
            try:
                db.execute("BEGIN IMMEDIATE")
                for target in range(SCHEMA_VERSION):
                    for statement in MIGRATIONS[target].split(";"):
                        if statement.strip():
                            db.execute(statement)
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                db.execute("COMMIT")
            finally:
                db.close()
            os.chmod(temp, 0o640)
            with open(temp, "rb") as handle:
                os.fsync(handle.fileno())
            os.link(temp, self.path)  # never replaces a file that appeared meanwhile
        finally:
            temp.unlink(missing_ok=True)

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.db.close()

    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise LedgerError(
                f"ledger {self.path} has schema version {version}, newer than this rollback-pm "
                f"knows ({SCHEMA_VERSION}); upgrade rollback-pm"
            )
        if version == SCHEMA_VERSION:
            return
        backup = self.backup(f"v{version}")
        log.info("ledger backed up before its schema upgrade", backup=str(backup), version=version)
        with self.transaction():
            for target in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[target].split(";"):
                    if statement.strip():
                        self.db.execute(statement)
                self.db.execute(f"PRAGMA user_version = {target + 1}")

    def backup(self, label: str) -> Path:
        """A consistent copy of the ledger (SQLite's backup API) as backups/ledger.<label>.<time>.sqlite3."""
        directory = ensure_dir(
            self.state_dir / BACKUP_DIR, "ledger backup dir", "make it a real, writable directory", LedgerError
        )
        name = f"ledger.{label}.{stamp(utcnow())}"
        final = directory / f"{name}.sqlite3"
        n = 1
        while final.exists() or final.is_symlink():
            final = directory / f"{name}-{n}.sqlite3"
            n += 1
        temp = directory / f".{final.name}.tmp-{os.getpid()}"
        try:
            copy = sqlite3.connect(temp)
            try:
                self.db.backup(copy)
                copy.execute("PRAGMA journal_mode = DELETE")  # one self-contained file, no -wal beside it
            finally:
                copy.close()
            os.chmod(temp, 0o640)
            with open(temp, "rb") as handle:
                os.fsync(handle.fileno())
            os.link(temp, final)
        except (OSError, sqlite3.Error) as exc:
            raise LedgerError(
                f"ledger {self.path} could not be backed up to {final} ({getattr(exc, 'strerror', None) or exc}); "
                "nothing was changed. Free space in the state dir and run the command again"
            ) from None
        finally:
            temp.unlink(missing_ok=True)
        return final

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        else:
            self.db.execute("COMMIT")

    # -- incidents -------------------------------------------------------------------------

    def upsert_incident(self, incident: Incident, *, idem_key: str | None = None) -> tuple[Incident, bool]:
        """Insert or update an incident and its smoke steps, evidence and events.

        Facts only grow: known times are not erased by a retry that lacks them. Returns
        the stored incident and whether it was new. ``idem_key`` replaces the key derived
        from the facts (``ledger rebuild`` stores incidents whose facts are partly unknown;
        a Swarm rollback has a name of its own: service id and the update's start, so every
        process that sees it lands on the same incident); a new incident's ``created_at`` is
        kept when given.
        """
        key = idem_key or idempotency_key(
            incident.service, incident.environment, incident.deploy_sha, incident.rollback_sha, incident.pipeline_number
        )
        incident.id = incident.id or incident_id(key)
        now = iso(utcnow())
        facts = json.dumps(
            {
                "containers": [asdict(c) for c in incident.containers],
                "commits": [asdict(c) for c in incident.commits],
                "changed_files": [asdict(f) for f in incident.changed_files],
                "warnings": incident.warnings,
                "started_at_source": incident.started_at_source if incident.started_at else None,
                "swarm": asdict(incident.swarm) if incident.swarm else None,
            },
            default=iso,
        )
        with self.transaction() as db:
            existing = db.execute("SELECT id, facts_json FROM incidents WHERE id = ?", (incident.id,)).fetchone()
            if existing is None:
                db.execute(
                    """INSERT INTO incidents (id, idem_key, service, environment, deploy_sha, rollback_sha,
                       rollback_sha_source, pipeline_number, pipeline_url, repo, started_at, detected_at,
                       mitigated_at, severity, detected_by, status, created_at, updated_at, deploy_ticket,
                       owner, facts_json)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                    (
                        incident.id,
                        key,
                        incident.service,
                        incident.environment,
                        incident.deploy_sha,
                        incident.rollback_sha,
                        incident.rollback_sha_source,
                        incident.pipeline_number,
                        incident.pipeline_url,
                        incident.repo,
                        iso(incident.started_at),
                        iso(incident.detected_at),
                        iso(incident.mitigated_at),
                        incident.severity,
                        incident.detected_by,
                        incident.status,
                        iso(incident.created_at) or now,
                        now,
                        incident.deploy_ticket,
                        incident.owner,
                        facts,
                    ),
                )
            else:
                self._clear_damaged_times(db, incident.id, now)
                # A retry may know less (no smoke report the second time); keep what we had.
                try:
                    old_facts = stored_facts.raw_incident_facts(existing["facts_json"])
                except stored_facts.Damaged as exc:  # this retry's facts replace them
                    log.warning("stored facts were damaged and are replaced", incident=incident.id, damage=str(exc))
                    old_facts = {}
                merged = json.loads(facts)
                for name, value in old_facts.items():
                    if not merged.get(name):
                        merged[name] = value
                db.execute(
                    """UPDATE incidents SET rollback_sha_source = COALESCE(?, rollback_sha_source),
                       pipeline_url = COALESCE(?, pipeline_url), repo = COALESCE(?, repo),
                       started_at = COALESCE(?, started_at), detected_at = COALESCE(?, detected_at),
                       mitigated_at = COALESCE(mitigated_at, ?), severity = ?, detected_by = ?,
                       deploy_ticket = COALESCE(?, deploy_ticket), owner = COALESCE(?, owner),
                       facts_json = ?, updated_at = ? WHERE id = ?""",
                    (
                        incident.rollback_sha_source,
                        incident.pipeline_url,
                        incident.repo,
                        iso(incident.started_at),
                        iso(incident.detected_at),
                        iso(incident.mitigated_at),
                        incident.severity,
                        incident.detected_by,
                        incident.deploy_ticket,
                        incident.owner,
                        json.dumps(merged),
                        now,
                        incident.id,
                    ),
                )
            for step in incident.smoke_steps:
                db.execute(
                    """INSERT INTO smoke_steps (incident_id, source, step, name, status, ts, started_at,
                       message, log_excerpt) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                       ON CONFLICT (incident_id, source, step, name) DO UPDATE SET status = excluded.status,
                       ts = excluded.ts, started_at = excluded.started_at, message = excluded.message,
                       log_excerpt = CASE WHEN excluded.log_excerpt != '' THEN excluded.log_excerpt
                                          ELSE smoke_steps.log_excerpt END""",
                    (
                        incident.id,
                        step.source,
                        step.step if step.step is not None else -1,
                        step.name,
                        step.status,
                        iso(step.ts),
                        iso(step.started_at),
                        step.message,
                        step.log_excerpt,
                    ),
                )
            self._add_evidence(db, incident.id, incident.evidence)
            for event in incident.events:
                db.execute(
                    "INSERT OR IGNORE INTO events (incident_id, ts, text, source) VALUES (?, ?, ?, ?)",
                    (incident.id, iso(event.ts), event.text, event.source),
                )
        return self.get(incident.id), existing is None

    @staticmethod
    def _clear_damaged_times(db: sqlite3.Connection, iid: str, now: str | None) -> None:
        """A retry's times replace stored ones that are damaged (a kept time must be one)."""
        row = db.execute(f"SELECT {', '.join(TIME_COLUMNS)} FROM incidents WHERE id = ?", (iid,)).fetchone()
        for column in TIME_COLUMNS:
            try:
                stored_time(row[column], column)
            except stored_facts.Damaged as exc:
                log.warning("a damaged stored time is replaced", incident=iid, damage=str(exc))
                value = now if column == "created_at" else None  # created_at is NOT NULL
                db.execute(f"UPDATE incidents SET {column} = ? WHERE id = ?", (value, iid))

    @staticmethod
    def _add_evidence(db: sqlite3.Connection, incident_id_: str, files: list[EvidenceFile]) -> None:
        for f in files:
            db.execute(
                "INSERT OR IGNORE INTO evidence (incident_id, path, kind, sha256, bytes, bundle) VALUES (?, ?, ?, ?, ?, ?)",
                (incident_id_, f.path, f.kind, f.sha256, f.bytes, f.bundle),
            )

    def add_evidence(self, incident_id_: str, files: list[EvidenceFile]) -> None:
        with self.transaction() as db:
            self._add_evidence(db, incident_id_, files)

    def resolve_id(self, ident: str) -> str:
        """A full id, or a unique prefix of one (at least 4 characters)."""
        ident = ident.strip()
        row = self.db.execute("SELECT id FROM incidents WHERE id = ?", (ident,)).fetchone()
        if row:
            return row["id"]
        if len(ident) >= 4:
            rows = self.db.execute("SELECT id FROM incidents WHERE id LIKE ? || '%'", (ident,)).fetchall()
            if len(rows) == 1:
                return rows[0]["id"]
            if len(rows) > 1:
                raise UsageError(f"incident id prefix {ident!r} is ambiguous ({len(rows)} match); give more characters")
        raise IncidentNotFound(f"no incident {ident!r} in the ledger {self.path}; see `rollback-pm incidents list`")

    def get(self, ident: str) -> Incident:
        iid = self.resolve_id(ident)
        row = self.db.execute("SELECT * FROM incidents WHERE id = ?", (iid,)).fetchone()
        return self._incident(row)

    def row(self, ident: str) -> dict[str, Any]:
        """An incident's columns as stored, unparsed (what ``incidents show`` prints of a damaged one)."""
        iid = self.resolve_id(ident)
        return dict(self.db.execute("SELECT * FROM incidents WHERE id = ?", (iid,)).fetchone())

    # Below this method, `list` in an annotation would name it: those say builtins.list.
    def list(
        self,
        *,
        service: str | None = None,
        environment: str | None = None,
        status: str | None = None,
        since: datetime | None = None,
    ) -> list[Incident]:
        """Incidents, newest first; a damaged one is a LedgerError (``read_each`` reads past it)."""
        return [self._incident(r) for r in self._rows(service, environment, status, since)]

    def read_each(
        self,
        *,
        service: str | None = None,
        environment: str | None = None,
        status: str | None = None,
        since: datetime | None = None,
    ) -> tuple[builtins.list[Incident], builtins.list[Unreadable]]:
        """Incidents, newest first, each read on its own: (the readable ones, the damaged ones).

        For readers of the whole ledger (check-deadlines, incidents list): one damaged record
        is reported by id with how to fix it, and never stops the others."""
        good: builtins.list[Incident] = []
        damaged: builtins.list[Unreadable] = []
        for row in self._rows(service, environment, status, since):
            try:
                good.append(self._incident(row))
            except LedgerError as exc:
                damaged.append(Unreadable.of_incident(row, str(exc)))
        return good, damaged

    def _rows(
        self, service: str | None, environment: str | None, status: str | None, since: datetime | None
    ) -> builtins.list[sqlite3.Row]:
        clauses: builtins.list[str] = []
        args: builtins.list[str | None] = []
        for column, value in (("service", service), ("environment", environment), ("status", status)):
            if value:
                clauses.append(f"{column} = ?")
                args.append(value)
        if since:
            clauses.append("created_at >= ?")
            args.append(iso(since))
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        return self.db.execute(f"SELECT * FROM incidents {where} ORDER BY created_at DESC, id", args).fetchall()

    def _incident(self, row: sqlite3.Row) -> Incident:
        return read_incident(self.db, self.path, row)

    def set_status(self, iid: str, status: str) -> None:
        with self.transaction() as db:
            db.execute("UPDATE incidents SET status = ?, updated_at = ? WHERE id = ?", (status, iso(utcnow()), iid))

    def mark_done(self, iid: str, at: datetime) -> None:
        """The postmortem is done: status ``done``, and when, the first time only (a later
        run that sees it done again does not move the time the report judges "on time" by)."""
        with self.transaction() as db:
            db.execute(
                "UPDATE incidents SET status = 'done', done_at = COALESCE(done_at, ?), updated_at = ? WHERE id = ?",
                (iso(at), iso(utcnow()), iid),
            )

    def report_rows(self, *, service: str | None = None, environment: str | None = None) -> Rows:
        """Every incident as stored, with its ticket, for readers that take each record on
        its own (the report): the text is not parsed here, so one broken value spoils only
        its own record, and no smoke steps or events are read (10,000 incidents in one query)."""
        clauses, args = [], []
        for column, value in (("i.service", service), ("i.environment", environment)):
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self.db.execute(
            f"""SELECT i.id, i.service, i.environment, i.deploy_sha, i.rollback_sha, i.severity, i.status,
                       i.started_at, i.detected_at, i.mitigated_at, i.created_at, i.done_at, i.owner,
                       i.draft_path, t.tracker AS ticket_tracker, t.key AS ticket_key, t.url AS ticket_url,
                       t.status AS ticket_status
                FROM incidents i LEFT JOIN tickets t ON t.incident_id = i.id {where} ORDER BY i.id""",
            args,
        ).fetchall()
        return [dict(r) for r in rows]

    def evidence_rows(self) -> Rows:
        """Every evidence file (incident_id, path, kind, bundle), in bundle order."""
        rows = self.db.execute(
            "SELECT incident_id, path, kind, bundle FROM evidence ORDER BY incident_id, bundle, rowid"
        ).fetchall()
        return [dict(r) for r in rows]

    # -- drafts ----------------------------------------------------------------------------

    def draft_record(self, iid: str) -> tuple[str | None, str | None, str | None]:
        row = self.db.execute(
            "SELECT draft_path, draft_sha256, draft_template FROM incidents WHERE id = ?", (iid,)
        ).fetchone()
        return (row["draft_path"], row["draft_sha256"], row["draft_template"]) if row else (None, None, None)

    def set_draft(self, iid: str, path: Path, sha256: str, template: str) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE incidents SET draft_path = ?, draft_sha256 = ?, draft_template = ?, updated_at = ? "
                "WHERE id = ?",
                (str(path), sha256, template, iso(utcnow()), iid),
            )

    # -- tickets and outbox ----------------------------------------------------------------

    def set_ticket(self, iid: str, ticket: TicketRef) -> None:
        now = iso(utcnow())
        with self.transaction() as db:
            db.execute(
                """INSERT INTO tickets (incident_id, tracker, key, url, status, checked_at, created_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (incident_id) DO UPDATE SET tracker = excluded.tracker,
                   key = excluded.key, url = excluded.url, status = excluded.status, checked_at = excluded.checked_at""",
                (iid, ticket.tracker, ticket.key, ticket.url, ticket.status, now, now),
            )

    def enqueue(self, iid: str, action: str, payload: dict[str, Any], error: str) -> int:
        """Queue a tracker action; one pending entry per (incident, action, payload)."""
        text = json.dumps(payload, sort_keys=True)
        with self.transaction() as db:
            row = db.execute(
                "SELECT id FROM outbox WHERE incident_id = ? AND action = ? AND payload = ? AND done_at IS NULL",
                (iid, action, text),
            ).fetchone()
            if row:
                db.execute("UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE id = ?", (error, row["id"]))
                return int(row["id"])
            cur = db.execute(
                "INSERT INTO outbox (incident_id, action, payload, created_at, attempts, last_error) "
                "VALUES (?, ?, ?, ?, 1, ?)",
                (iid, action, text, iso(utcnow()), error),
            )
            return int(cur.lastrowid or 0)

    def pending_outbox(self) -> builtins.list[sqlite3.Row]:
        return self.db.execute("SELECT * FROM outbox WHERE done_at IS NULL ORDER BY id").fetchall()

    def outbox_done(self, entry_id: int) -> None:
        with self.transaction() as db:
            db.execute("UPDATE outbox SET done_at = ? WHERE id = ?", (iso(utcnow()), entry_id))

    def outbox_failed(self, entry_id: int, error: str) -> None:
        with self.transaction() as db:
            db.execute("UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE id = ?", (error, entry_id))

    # -- notifications ---------------------------------------------------------------------

    def notified(self, iid: str, kind: str, channel: str) -> bool:
        return (
            self.db.execute(
                "SELECT 1 FROM notifications WHERE incident_id = ? AND kind = ? AND channel = ?", (iid, kind, channel)
            ).fetchone()
            is not None
        )

    def record_notification(self, iid: str, kind: str, channel: str) -> bool:
        """True when this call recorded it (exactly-once across processes)."""
        with self.transaction() as db:
            cur = db.execute(
                "INSERT OR IGNORE INTO notifications (incident_id, kind, channel, sent_at) VALUES (?, ?, ?, ?)",
                (iid, kind, channel, iso(utcnow())),
            )
            return cur.rowcount == 1

    # -- follow-ups and failure signatures (issue 19 writes them, the report reads them) ----

    def upsert_followup(self, followup: Followup) -> tuple[Followup, bool]:
        """Insert or update one action-table row's follow-up; returns it as stored and whether it was new.

        The ticket (tracker, key, url) only grows, like an incident's facts: an update that
        does not know it keeps the stored one. ``closed_at`` is set when the status becomes
        ``closed`` (the follow-up's own closed_at when given, else now) and cleared when it
        is reopened.
        """
        if followup.status not in FOLLOWUP_STATUSES:
            raise UsageError(
                f"follow-up status {followup.status!r} is not one of {', '.join(FOLLOWUP_STATUSES)}; "
                "map the tracker's state to open or closed"
            )
        now = iso(utcnow())
        closed_at = iso(followup.closed_at or utcnow()) if followup.status == FOLLOWUP_CLOSED else None
        with self.transaction() as db:
            existing = db.execute(
                "SELECT 1 FROM followups WHERE incident_id = ? AND row_key = ?",
                (followup.incident_id, followup.row_key),
            ).fetchone()
            db.execute(
                """INSERT INTO followups (incident_id, row_key, owner, action, target_date, tracker, key, url,
                   status, created_at, updated_at, closed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (incident_id, row_key) DO UPDATE SET owner = excluded.owner,
                   action = excluded.action, target_date = excluded.target_date,
                   tracker = COALESCE(excluded.tracker, followups.tracker), key = COALESCE(excluded.key, followups.key),
                   url = COALESCE(excluded.url, followups.url), status = excluded.status,
                   updated_at = excluded.updated_at,
                   closed_at = CASE WHEN excluded.status = 'closed'
                                    THEN COALESCE(followups.closed_at, excluded.closed_at) END""",
                (
                    followup.incident_id,
                    followup.row_key,
                    followup.owner,
                    followup.action,
                    followup.target_date,
                    followup.tracker,
                    followup.key,
                    followup.url,
                    followup.status,
                    iso(followup.created_at) or now,
                    now,
                    closed_at,
                ),
            )
            row = db.execute(
                "SELECT * FROM followups WHERE incident_id = ? AND row_key = ?",
                (followup.incident_id, followup.row_key),
            ).fetchone()
        return _followup(row), existing is None

    def list_followups(self, incident_id_: str | None = None) -> Followups:
        """Follow-ups of one incident (or of all), in the order they were created."""
        where, args = ("WHERE incident_id = ?", [incident_id_]) if incident_id_ else ("", [])
        rows = self.db.execute(
            f"SELECT * FROM followups {where} ORDER BY incident_id, created_at, row_key", args
        ).fetchall()
        return [_followup(r) for r in rows]

    def read_followups(self, incident_id_: str | None = None) -> tuple[Followups, builtins.list[str]]:
        """Like list_followups, each record on its own: (the readable ones, why each other one is not)."""
        where, args = ("WHERE incident_id = ?", [incident_id_]) if incident_id_ else ("", [])
        rows = self.db.execute(
            f"SELECT * FROM followups {where} ORDER BY incident_id, created_at, row_key", args
        ).fetchall()
        found: Followups = []
        damaged: builtins.list[str] = []
        for row in rows:
            try:
                found.append(_followup(row))
            except LedgerError as exc:
                damaged.append(str(exc))
        return found, damaged

    def followup_rows(self) -> Rows:
        """Every follow-up as stored (unparsed), for readers that take each record on its own."""
        return [dict(r) for r in self.db.execute("SELECT * FROM followups ORDER BY incident_id, row_key")]

    def set_signature(self, signature: Signature) -> Signature:
        """Record (or replace) an incident's failure signature; its first created_at stays."""
        with self.transaction() as db:
            db.execute(
                """INSERT INTO signatures (incident_id, signature, failed_step, templates_json, created_at)
                   VALUES (?, ?, ?, ?, ?) ON CONFLICT (incident_id) DO UPDATE SET signature = excluded.signature,
                   failed_step = excluded.failed_step, templates_json = excluded.templates_json""",
                (
                    signature.incident_id,
                    signature.signature,
                    signature.failed_step,
                    json.dumps(signature.templates),
                    iso(signature.created_at or utcnow()),
                ),
            )
            row = db.execute("SELECT * FROM signatures WHERE incident_id = ?", (signature.incident_id,)).fetchone()
        return _signature(row)

    def get_signature(self, incident_id_: str) -> Signature | None:
        row = self.db.execute("SELECT * FROM signatures WHERE incident_id = ?", (incident_id_,)).fetchone()
        return _signature(row) if row else None

    def recorded_before(self, first_id: str, second_id: str) -> bool:
        """Whether incident ``first_id`` was recorded in this ledger before ``second_id``:
        the order of two rollbacks whose times, kept to the second, are equal."""
        rows = dict(
            self.db.execute("SELECT id, rowid FROM incidents WHERE id IN (?, ?)", (first_id, second_id)).fetchall()
        )
        return first_id in rows and second_id in rows and rows[first_id] < rows[second_id]

    def list_signatures(
        self, signature: str | None = None, *, service: str | None = None, environment: str | None = None
    ) -> Signatures:
        """Every recorded signature, or the incidents that share one (by the signature index),
        or those of one service and environment (repeat detection's candidates)."""
        return [_signature(r) for r in self._signature_rows(signature, service, environment)]

    def read_signatures(
        self, *, service: str | None = None, environment: str | None = None
    ) -> tuple[Signatures, builtins.list[str]]:
        """Like list_signatures, each record on its own: (the readable ones, why each other one is not)."""
        found: Signatures = []
        damaged: builtins.list[str] = []
        for row in self._signature_rows(None, service, environment):
            try:
                found.append(_signature(row))
            except LedgerError as exc:
                damaged.append(str(exc))
        return found, damaged

    def _signature_rows(
        self, signature: str | None, service: str | None, environment: str | None
    ) -> builtins.list[sqlite3.Row]:
        clauses, args = [], []
        for column, value in (("s.signature", signature), ("i.service", service), ("i.environment", environment)):
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        return self.db.execute(
            f"""SELECT s.* FROM signatures s JOIN incidents i ON i.id = s.incident_id {where}
                ORDER BY s.created_at, s.incident_id""",
            args,
        ).fetchall()

    def signature_rows(self) -> Rows:
        """Every signature as stored (unparsed), for readers that take each record on its own."""
        return [dict(r) for r in self.db.execute("SELECT * FROM signatures ORDER BY incident_id")]

    # -- signal reports (rollback_pm.signals) ----------------------------------------------

    def set_signal_report(self, incident_id_: str, bundle: str, report: dict[str, Any]) -> None:
        """Record (or replace) the signal report of one of the incident's evidence bundles."""
        with self.transaction() as db:
            db.execute(
                """INSERT INTO signal_reports (incident_id, bundle, report_json, created_at) VALUES (?, ?, ?, ?)
                   ON CONFLICT (incident_id, bundle) DO UPDATE SET report_json = excluded.report_json""",
                (incident_id_, bundle, json.dumps(report), iso(utcnow())),
            )

    def signal_report_rows(self, incident_id_: str) -> Rows:
        """The incident's signal reports as stored (unparsed: ``rollback_pm.signals.stored`` reads
        them back checked, each on its own), oldest bundle first."""
        return [
            dict(r)
            for r in self.db.execute(
                "SELECT bundle, report_json, created_at FROM signal_reports WHERE incident_id = ? ORDER BY bundle",
                (incident_id_,),
            )
        ]

    # -- good deploys and pending evidence ------------------------------------------------

    def mark_good(self, service: str, environment: str, sha: str) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO good_deploys (service, environment, sha, recorded_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (service, environment) DO UPDATE SET sha = excluded.sha, "
                "recorded_at = excluded.recorded_at",
                (service, environment, sha, iso(utcnow())),
            )

    def last_good(self, service: str, environment: str) -> str | None:
        row = self.db.execute(
            "SELECT sha FROM good_deploys WHERE service = ? AND environment = ?", (service, environment)
        ).fetchone()
        return row["sha"] if row else None

    def add_pending_evidence(self, key: str, files: builtins.list[EvidenceFile], facts: dict[str, Any]) -> None:
        with self.transaction() as db:
            for f in files:
                db.execute(
                    "INSERT OR IGNORE INTO pending_evidence (pending_key, path, kind, sha256, bytes, bundle, "
                    "facts_json) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (key, f.path, f.kind, f.sha256, f.bytes, f.bundle, json.dumps(facts, default=iso)),
                )

    def take_pending_evidence(self, key: str) -> tuple[builtins.list[EvidenceFile], builtins.list[dict[str, Any]]]:
        """Evidence from an earlier `--phase collect` (kept until adopted by an incident)."""
        rows = self.db.execute(
            "SELECT * FROM pending_evidence WHERE pending_key = ? ORDER BY bundle, rowid", (key,)
        ).fetchall()
        files = [
            EvidenceFile(path=r["path"], kind=r["kind"], sha256=r["sha256"], bytes=r["bytes"], bundle=r["bundle"])
            for r in rows
        ]
        facts = []
        for r in rows:
            if r["kind"] != "manifest":
                continue
            try:
                facts.append(stored_facts.pending_facts(r["facts_json"]))
            except stored_facts.Damaged as exc:  # the evidence itself is still adopted
                log.warning("facts parked with evidence were damaged and are dropped", key=key, damage=str(exc))
        return files, facts

    def drop_pending_evidence(self, key: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM pending_evidence WHERE pending_key = ?", (key,))


def read_incident(db: sqlite3.Connection, path: Path, row: sqlite3.Row) -> Incident:
    """The incident of ``row`` (a ``SELECT * FROM incidents`` row, sqlite3.Row), every column
    checked; a damaged one is a LedgerError naming the incident, what is wrong and the fix."""
    iid = row["id"]
    try:
        return _read_incident(db, _typed(iid, str, "id"), row)
    except (stored_facts.Damaged, UsageError, ValueError, TypeError, OverflowError, OSError) as exc:
        raise LedgerError(
            f"incident {record_id(iid)} in the ledger {path} has a damaged record ({exc}); "
            "correct it with sqlite3, or recover it from its draft and ticket with "
            "`rollback-pm ledger rebuild --force`"
        ) from None


def _read_incident(db: sqlite3.Connection, iid: str, row: sqlite3.Row) -> Incident:
    facts = stored_facts.incident_facts(row["facts_json"])

    def text(r: sqlite3.Row, name: str, what: str, optional: bool = False) -> Any:
        return _typed(r[name], str, f"{what}{name}", optional=optional)

    steps = []
    for s in db.execute("SELECT * FROM smoke_steps WHERE incident_id = ? ORDER BY ts IS NULL, ts, step", (iid,)):
        what = f"smoke step {s['step']!r} "
        number = _typed(s["step"], int, f"{what}step", optional=True)
        steps.append(
            SmokeStep(
                name=text(s, "name", what),
                status=text(s, "status", what),
                step=None if number in (None, -1) else number,
                ts=stored_time(s["ts"], f"{what}ts"),
                started_at=stored_time(s["started_at"], f"{what}started_at"),
                message=text(s, "message", what),
                source=text(s, "source", what),
                log_excerpt=text(s, "log_excerpt", what),
            )
        )
    evidence = [
        EvidenceFile(
            path=text(e, "path", "evidence "),
            kind=text(e, "kind", f"evidence {e['path']!r} "),
            sha256=text(e, "sha256", f"evidence {e['path']!r} "),
            bytes=_typed(e["bytes"], int, f"evidence {e['path']!r} bytes"),
            bundle=text(e, "bundle", f"evidence {e['path']!r} "),
        )
        for e in db.execute("SELECT * FROM evidence WHERE incident_id = ? ORDER BY bundle, rowid", (iid,))
    ]
    events = []
    for e in db.execute("SELECT * FROM events WHERE incident_id = ? ORDER BY ts", (iid,)):
        ts = stored_time(e["ts"], "event ts")
        if ts is None:
            raise stored_facts.Damaged("an event has no ts")
        events.append(TimelineEvent(ts=ts, text=text(e, "text", "event "), source=text(e, "source", "event ")))
    ticket_row = db.execute("SELECT * FROM tickets WHERE incident_id = ?", (iid,)).fetchone()
    ticket = (
        TicketRef(
            tracker=text(ticket_row, "tracker", "ticket "),
            key=text(ticket_row, "key", "ticket "),
            url=text(ticket_row, "url", "ticket "),
            status=text(ticket_row, "status", "ticket "),
        )
        if ticket_row
        else None
    )
    return Incident(
        id=iid,
        service=text(row, "service", ""),
        environment=text(row, "environment", ""),
        deploy_sha=text(row, "deploy_sha", ""),
        rollback_sha=text(row, "rollback_sha", "", True),
        rollback_sha_source=text(row, "rollback_sha_source", "", True),
        pipeline_number=text(row, "pipeline_number", "", True),
        pipeline_url=text(row, "pipeline_url", "", True),
        repo=text(row, "repo", "", True),
        started_at=stored_time(row["started_at"], "started_at"),
        started_at_source=facts["started_at_source"] if row["started_at"] else None,
        detected_at=stored_time(row["detected_at"], "detected_at"),
        mitigated_at=stored_time(row["mitigated_at"], "mitigated_at"),
        severity=text(row, "severity", ""),
        detected_by=text(row, "detected_by", ""),
        status=text(row, "status", ""),
        created_at=stored_time(row["created_at"], "created_at"),
        updated_at=stored_time(row["updated_at"], "updated_at"),
        deploy_ticket=text(row, "deploy_ticket", "", True),
        owner=text(row, "owner", "", True),
        done_at=stored_time(row["done_at"], "done_at"),
        smoke_steps=steps,
        evidence=evidence,
        events=events,
        containers=facts["containers"],
        commits=facts["commits"],
        changed_files=facts["changed_files"],
        warnings=facts["warnings"],
        draft_path=text(row, "draft_path", "", True),
        ticket=ticket,
        swarm=facts["swarm"],
    )


def _damaged(what: str, exc: Exception) -> LedgerError:
    return LedgerError(f"{what} in the ledger has a damaged record ({exc}); correct it with sqlite3")


def _followup(row: sqlite3.Row) -> Followup:
    try:
        return Followup(
            incident_id=row["incident_id"],
            row_key=row["row_key"],
            action=row["action"],
            owner=row["owner"],
            target_date=row["target_date"],
            tracker=row["tracker"],
            key=row["key"],
            url=row["url"],
            status=row["status"],
            created_at=stored_time(row["created_at"], "created_at"),
            updated_at=stored_time(row["updated_at"], "updated_at"),
            closed_at=stored_time(row["closed_at"], "closed_at"),
        )
    except (UsageError, ValueError, OverflowError) as exc:
        raise _damaged(f"follow-up {row['row_key']} of incident {row['incident_id']}", exc) from None


def _signature(row: sqlite3.Row) -> Signature:
    try:
        return Signature(
            incident_id=row["incident_id"],
            signature=row["signature"],
            failed_step=row["failed_step"],
            templates=stored_facts.text_list(row["templates_json"], "templates_json"),
            created_at=stored_time(row["created_at"], "created_at"),
        )
    except (stored_facts.Damaged, UsageError, ValueError, OverflowError) as exc:
        raise _damaged(f"the signature of incident {row['incident_id']}", exc) from None
