"""What the report reads: the ledger's incidents in one scope, each record parsed on its own.

A record with a value that does not parse (a hand-edited timestamp, say) is left out and
listed in ``ReportData.skipped`` with the reason; the rest of the report stands.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timezone

from rollback_pm.deadline import due_at
from rollback_pm.errors import RollbackPmError
from rollback_pm.ledger import STORED_EARLIEST, STORED_LATEST, Ledger, stored_time
from rollback_pm.models import FOLLOWUP_CLOSED, Incident
from rollback_pm.timeutil import parse_ts

TIMES = ("started_at", "detected_at", "mitigated_at", "created_at", "done_at")


@dataclass(frozen=True)
class Scope:
    """Which rollbacks the report covers: rollback time in [since, until], optional filters."""

    since: datetime
    until: datetime  # also "now": what is overdue is judged at this time
    service: str | None = None
    environment: str | None = None


@dataclass(frozen=True)
class EvidenceLink:
    bundle: str
    kind: str  # log | inspect | manifest
    path: str


@dataclass
class ReportIncident:
    """One incident as the report sees it."""

    id: str
    service: str
    environment: str
    status: str  # open | done, as check-deadlines last recorded it
    severity: str
    deploy_sha: str
    started_at: datetime | None  # the bad version went live
    detected_at: datetime | None
    mitigated_at: datetime | None
    created_at: datetime | None
    done_at: datetime | None
    deadline_hours: float  # 0: no deadline in this environment
    due_at: datetime | None
    owner: str | None = None
    draft_path: str | None = None
    ticket_key: str | None = None
    ticket_url: str | None = None
    ticket_status: str | None = None
    evidence: list[EvidenceLink] = field(default_factory=list)
    signature: str | None = None
    failed_step: str | None = None

    @property
    def rolled_back_at(self) -> datetime:
        """The rollback time: mitigation (the rollback finished), else when rollback-pm recorded it."""
        when = self.mitigated_at or self.created_at
        assert when is not None  # load() skips records with neither
        return when


@dataclass
class ReportFollowup:
    incident_id: str
    row_key: str
    action: str
    owner: str | None
    target_date: date | None  # None: none given, or not a YYYY-MM-DD date
    status: str  # open | closed
    key: str | None
    url: str | None

    @property
    def closed(self) -> bool:
        return self.status == FOLLOWUP_CLOSED


@dataclass(frozen=True)
class Skipped:
    record: str  # incident | follow-up | signature | evidence
    ident: str
    reason: str


@dataclass
class ReportData:
    scope: Scope
    incidents: list[ReportIncident]  # newest rollback first
    followups: list[ReportFollowup]  # of the incidents in scope
    skipped: list[Skipped] = field(default_factory=list)


def load(ledger: Ledger, scope: Scope, deadline_hours: Callable[[str], float]) -> ReportData:
    """The incidents whose rollback time is in the scope, with their follow-ups and signatures.

    ``deadline_hours(environment)`` gives the postmortem deadline in hours (0: none), the
    same setting check-deadlines uses.
    """
    skipped: list[Skipped] = []
    evidence: dict[str, list[EvidenceLink]] = {}
    for row in ledger.evidence_rows():
        try:
            link = EvidenceLink(_required(row, "bundle"), _required(row, "kind"), _required(row, "path"))
        except TypeError as exc:
            skipped.append(Skipped("evidence", f"{row['incident_id']}/{row['path']!r}"[:80], str(exc)))
            continue
        evidence.setdefault(row["incident_id"], []).append(link)
    hours_cache: dict[str, float] = {}
    incidents: list[ReportIncident] = []
    for row in ledger.report_rows(service=scope.service, environment=scope.environment):
        try:
            incident = _incident(row, evidence.get(row["id"], []), hours_cache, deadline_hours)
        except (RollbackPmError, ValueError, TypeError, OverflowError) as exc:
            skipped.append(Skipped("incident", str(row["id"]), str(exc)))
            continue
        if scope.since <= incident.rolled_back_at <= scope.until:
            incidents.append(incident)
    incidents.sort(key=lambda i: (i.rolled_back_at, i.id), reverse=True)
    by_id = {i.id: i for i in incidents}
    for row in ledger.signature_rows():
        target = by_id.get(row["incident_id"])
        if target is None:
            continue
        try:
            target.signature, target.failed_step = _required(row, "signature"), _optional(row, "failed_step")
        except TypeError as exc:
            skipped.append(Skipped("signature", target.id, str(exc)))
    followups: list[ReportFollowup] = []
    for row in ledger.followup_rows():
        if row["incident_id"] not in by_id:
            continue
        try:
            followups.append(_followup(row))
        except (RollbackPmError, ValueError, TypeError) as exc:
            skipped.append(Skipped("follow-up", f"{row['incident_id']}/{row['row_key']}", str(exc)))
    return ReportData(scope=scope, incidents=incidents, followups=followups, skipped=skipped)


def _incident(
    row: dict[str, object],
    evidence: list[EvidenceLink],
    hours_cache: dict[str, float],
    deadline_hours: Callable[[str], float],
) -> ReportIncident:
    times = {name: _time(row[name], name) for name in TIMES}
    if times["mitigated_at"] is None and times["created_at"] is None:
        raise ValueError("neither mitigated_at nor created_at is recorded: no rollback time")
    environment = _required(row, "environment")
    if environment not in hours_cache:
        hours_cache[environment] = float(deadline_hours(environment) or 0.0)
    hours = hours_cache[environment]
    clock = Incident(
        id=_required(row, "id"),
        service=_required(row, "service"),
        environment=environment,
        deploy_sha=_required(row, "deploy_sha"),
        mitigated_at=times["mitigated_at"],
        created_at=times["created_at"],
    )
    return ReportIncident(
        id=_required(row, "id"),
        service=_required(row, "service"),
        environment=environment,
        status=_required(row, "status"),
        severity=_required(row, "severity"),
        deploy_sha=_required(row, "deploy_sha"),
        started_at=times["started_at"],
        detected_at=times["detected_at"],
        mitigated_at=times["mitigated_at"],
        created_at=times["created_at"],
        done_at=times["done_at"],
        deadline_hours=hours,
        due_at=due_at(clock, hours),
        owner=_optional(row, "owner"),
        draft_path=_optional(row, "draft_path"),
        ticket_key=_optional(row, "ticket_key"),
        ticket_url=_optional(row, "ticket_url"),
        ticket_status=_optional(row, "ticket_status"),
        evidence=evidence,
    )


def _time(value: object, name: str) -> datetime | None:
    """A stored time; the ledger's own form (2026-05-13T08:47:21Z) the fast way. Outside the
    window the ledger writes in (or not a time) it is a ValueError naming the column."""
    if isinstance(value, str) and len(value) == 20 and value.endswith("Z"):
        try:
            parsed = datetime.fromisoformat(value[:19]).replace(tzinfo=timezone.utc)
        except ValueError:
            pass
        else:
            if STORED_EARLIEST <= parsed < STORED_LATEST:
                return parsed
    return stored_time(value, name)


def _followup(row: dict[str, object]) -> ReportFollowup:
    return ReportFollowup(
        incident_id=_required(row, "incident_id"),
        row_key=_required(row, "row_key"),
        action=_required(row, "action"),
        owner=_optional(row, "owner"),
        target_date=target_date(_optional(row, "target_date")),
        status=_required(row, "status"),
        key=_optional(row, "key"),
        url=_optional(row, "url"),
    )


def target_date(text: str | None) -> date | None:
    """A follow-up's target date: YYYY-MM-DD (or a full ISO time, its UTC date); else None."""
    if not text:
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        pass
    try:
        parsed = parse_ts(text.strip(), "target_date")
    except RollbackPmError:
        return None
    return parsed.date() if parsed else None


def _optional(row: dict[str, object], name: str) -> str | None:
    value = row[name]
    return None if value is None or value == "" else _required(row, name)


def _required(row: dict[str, object], name: str) -> str:
    value = row[name]
    if not isinstance(value, str):
        raise TypeError(f"{name} is {'NULL' if value is None else type(value).__name__}, not text")
    return value
