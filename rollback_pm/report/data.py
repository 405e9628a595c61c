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
from rollback_pm.ledger import Ledger
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
    record: str  # incident | follow-up | signature
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
        evidence.setdefault(row["incident_id"], []).append(EvidenceLink(row["bundle"], row["kind"], row["path"]))
    hours_cache: dict[str, float] = {}
    incidents: list[ReportIncident] = []
    for row in ledger.report_rows(service=scope.service, environment=scope.environment):
        try:
            incident = _incident(row, evidence.get(row["id"], []), hours_cache, deadline_hours)
        except (RollbackPmError, ValueError, TypeError) as exc:
            skipped.append(Skipped("incident", str(row["id"]), str(exc)))
            continue
        if scope.since <= incident.rolled_back_at <= scope.until:
            incidents.append(incident)
    incidents.sort(key=lambda i: (i.rolled_back_at, i.id), reverse=True)
    by_id = {i.id: i for i in incidents}
    for row in ledger.signature_rows():
        target = by_id.get(row["incident_id"])
        if target is not None:
            target.signature, target.failed_step = row["signature"], row["failed_step"]
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
    environment = str(row["environment"])
    if environment not in hours_cache:
        hours_cache[environment] = float(deadline_hours(environment) or 0.0)
    hours = hours_cache[environment]
    clock = Incident(
        id=str(row["id"]),
        service=str(row["service"]),
        environment=environment,
        deploy_sha=str(row["deploy_sha"]),
        mitigated_at=times["mitigated_at"],
        created_at=times["created_at"],
    )
    return ReportIncident(
        id=str(row["id"]),
        service=str(row["service"]),
        environment=environment,
        status=str(row["status"]),
        severity=str(row["severity"]),
        deploy_sha=str(row["deploy_sha"]),
        started_at=times["started_at"],
        detected_at=times["detected_at"],
        mitigated_at=times["mitigated_at"],
        created_at=times["created_at"],
        done_at=times["done_at"],
        deadline_hours=hours,
        due_at=due_at(clock, hours),
        owner=_text(row["owner"]),
        draft_path=_text(row["draft_path"]),
        ticket_key=_text(row["ticket_key"]),
        ticket_url=_text(row["ticket_url"]),
        ticket_status=_text(row["ticket_status"]),
        evidence=evidence,
    )


def _time(value: object, name: str) -> datetime | None:
    """A stored time; the ledger's own form (2026-05-13T08:47:21Z) the fast way."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and len(value) == 20 and value.endswith("Z"):
        try:
            return datetime.fromisoformat(value[:19]).replace(tzinfo=timezone.utc)
        except ValueError:
            pass
    return parse_ts(value, name)  # type: ignore[arg-type]  # raises a UsageError naming the value


def _followup(row: dict[str, object]) -> ReportFollowup:
    return ReportFollowup(
        incident_id=str(row["incident_id"]),
        row_key=str(row["row_key"]),
        action=str(row["action"]),
        owner=_text(row["owner"]),
        target_date=target_date(_text(row["target_date"])),
        status=str(row["status"]),
        key=_text(row["key"]),
        url=_text(row["url"]),
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


def _text(value: object) -> str | None:
    return None if value is None or value == "" else str(value)
