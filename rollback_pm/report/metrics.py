"""The report's figures: one function per metric, each computed from ``ReportData`` alone.

Every definition is in ``DEFINITIONS`` (printed under its plot, put in the JSON, and
explained in docs/report.md). Times are UTC; durations are seconds rounded to 0.1 s.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from rollback_pm.report.data import ReportData, ReportFollowup, ReportIncident, Scope

DONE_ON_TIME = "done_on_time"
DONE_LATE = "done_late"
DONE_TIME_UNKNOWN = "done_time_unknown"
OPEN = "open"
OVERDUE = "overdue"
POSTMORTEM_STATES = (DONE_ON_TIME, DONE_LATE, DONE_TIME_UNKNOWN, OPEN, OVERDUE)
REPEAT_LIMIT = 10

DEFINITIONS: dict[str, str] = {
    "rollback_time": "An incident's rollback time is when its rollback finished (mitigated_at), "
    "or when rollback-pm recorded it if that is unknown; the period and the weeks are counted by it.",
    "rollbacks_per_week": "Rollbacks per week: incidents counted in the UTC week (Monday to Sunday) "
    "of their rollback time, stacked by service.",
    "mttd": "MTTD (time to detect): from the bad version going live (the incident's started_at, the deploy) "
    "to detection (its first failed smoke step or alert); per incident, with the median and 90th percentile "
    "of each week's incidents.",
    "mttr": "MTTR (time to mitigate): from the bad version going live to mitigation (the rollback finished); "
    "per incident, with the median and 90th percentile of each week's incidents.",
    "excluded": "An incident whose live time is unknown is left out of MTTD and MTTR and counted as excluded, "
    "as is one without a detection (MTTD) or mitigation (MTTR) time, or whose times run backwards.",
    "quantiles": "Median and p90 interpolate linearly between the closest ranks: p90 of n sorted values "
    "sits at rank 0.9 x (n - 1), counting from 0.",
    "postmortems": "Postmortem state now: done on time (by its deadline, mitigation + the environment's "
    "deadline_hours; 0 = no deadline), done late, done when unknown (before rollback-pm kept the time), "
    "open, or overdue (not done and past its deadline).",
    "time_to_done": "Time to done: from the rollback time to when check-deadlines found the postmortem done "
    "(its draft passed lint or its ticket was resolved).",
    "followups": "Follow-ups: the postmortems' action rows tracked as tickets; past due means still open after "
    "the end (UTC) of its target date.",
    "repeat_signatures": "Repeat signatures: failure signatures (the failed smoke step and the top error "
    "templates of the logs) shared by two or more incidents in this period, most frequent first.",
}


# -- quantiles ------------------------------------------------------------------------------


def quantile(values: Sequence[float], q: float) -> float | None:
    """The q-quantile by linear interpolation between closest ranks (numpy's default,
    ``statistics.quantiles(method="inclusive")``); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return _seconds(ordered[low] + (rank - low) * (ordered[high] - ordered[low]))


def median(values: Sequence[float]) -> float | None:
    return quantile(values, 0.5)


def p90(values: Sequence[float]) -> float | None:
    return quantile(values, 0.9)


def _seconds(value: float) -> float:
    """Seconds to 0.1 s; whole seconds as an int, so that JSON and CSV say 120, not 120.0."""
    rounded = round(value, 1) + 0.0  # + 0.0: no -0.0
    return int(rounded) if rounded.is_integer() else rounded


# -- weeks ----------------------------------------------------------------------------------


def week_of(when: datetime) -> date:
    """The Monday (UTC) of the week holding ``when``."""
    day = when.date()
    return day - timedelta(days=day.weekday())


def weeks_in(scope: Scope) -> list[date]:
    """Every week the scope touches, oldest first, so empty weeks show as empty."""
    first, last = week_of(scope.since), week_of(scope.until)
    return [first + timedelta(weeks=n) for n in range((last - first).days // 7 + 1)]


# -- rollbacks per week ---------------------------------------------------------------------


@dataclass(frozen=True)
class WeekCount:
    week: date
    by_service: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.by_service.values())


@dataclass(frozen=True)
class RollbacksPerWeek:
    count: int
    services: list[str]  # most rollbacks first, then by name
    weeks: list[WeekCount]


def rollbacks_per_week(data: ReportData) -> RollbacksPerWeek:
    """Incidents per UTC week of their rollback time, by service."""
    per_week: dict[date, Counter[str]] = {week: Counter() for week in weeks_in(data.scope)}
    totals: Counter[str] = Counter()
    for incident in data.incidents:
        per_week.setdefault(week_of(incident.rolled_back_at), Counter())[incident.service] += 1
        totals[incident.service] += 1
    services = sorted(totals, key=lambda s: (-totals[s], s))
    weeks = [
        WeekCount(week, {s: per_week[week][s] for s in services if per_week[week][s]}) for week in sorted(per_week)
    ]
    return RollbacksPerWeek(count=len(data.incidents), services=services, weeks=weeks)


# -- MTTD and MTTR --------------------------------------------------------------------------


@dataclass(frozen=True)
class WeekStat:
    week: date
    count: int
    median: float | None
    p90: float | None


@dataclass(frozen=True)
class DurationMetric:
    """One duration per incident where both ends are known, and how many were left out."""

    per_incident: dict[str, float]
    median: float | None
    p90: float | None
    unknown_start: int = 0  # no started_at: when the bad version went live is unknown
    unknown_end: int = 0  # no detection (MTTD) / mitigation (MTTR) time
    inconsistent: int = 0  # the end is before the start: the clocks disagree
    weeks: list[WeekStat] = field(default_factory=list)

    @property
    def measured(self) -> int:
        return len(self.per_incident)

    @property
    def excluded(self) -> int:
        return self.unknown_start + self.unknown_end + self.inconsistent


def _duration_metric(data: ReportData, end: str) -> DurationMetric:
    values: dict[str, float] = {}
    unknown_start = unknown_end = inconsistent = 0
    by_week: dict[date, list[float]] = {week: [] for week in weeks_in(data.scope)}
    for incident in data.incidents:
        stop: datetime | None = getattr(incident, end)
        if incident.started_at is None:
            unknown_start += 1
        elif stop is None:
            unknown_end += 1
        elif stop < incident.started_at:
            inconsistent += 1
        else:
            seconds = _seconds((stop - incident.started_at).total_seconds())
            values[incident.id] = seconds
            by_week.setdefault(week_of(incident.rolled_back_at), []).append(seconds)
    weeks = [WeekStat(w, len(v), median(v), p90(v)) for w, v in sorted(by_week.items())]
    all_values = list(values.values())
    return DurationMetric(
        per_incident=values,
        median=median(all_values),
        p90=p90(all_values),
        unknown_start=unknown_start,
        unknown_end=unknown_end,
        inconsistent=inconsistent,
        weeks=weeks,
    )


def time_to_detect(data: ReportData) -> DurationMetric:
    """MTTD: started_at (the bad version went live) -> detected_at, per incident."""
    return _duration_metric(data, "detected_at")


def time_to_mitigate(data: ReportData) -> DurationMetric:
    """MTTR: started_at (the bad version went live) -> mitigated_at (the rollback finished), per incident."""
    return _duration_metric(data, "mitigated_at")


# -- postmortems ----------------------------------------------------------------------------


def postmortem_state(incident: ReportIncident, now: datetime) -> str:
    """done_on_time, done_late, done_time_unknown, open or overdue, judged at ``now``.

    On the deadline itself is still on time (check-deadlines' rule); no deadline (0 hours)
    means a done postmortem is on time and an open one never overdue.
    """
    if incident.status == "done":
        if incident.done_at is None:
            return DONE_TIME_UNKNOWN
        if incident.due_at is None or incident.done_at <= incident.due_at:
            return DONE_ON_TIME
        return DONE_LATE
    if incident.due_at is not None and now > incident.due_at:
        return OVERDUE
    return OPEN


@dataclass(frozen=True)
class PostmortemStates:
    counts: dict[str, int]  # every state in POSTMORTEM_STATES order, zeros included
    per_incident: dict[str, str]


def postmortem_states(data: ReportData) -> PostmortemStates:
    """Each incident's postmortem state at the end of the scope, and the count per state."""
    per_incident = {i.id: postmortem_state(i, data.scope.until) for i in data.incidents}
    counted = Counter(per_incident.values())
    return PostmortemStates(counts={s: counted[s] for s in POSTMORTEM_STATES}, per_incident=per_incident)


def time_to_done(data: ReportData) -> DurationMetric:
    """From the rollback time (the deadline's start) to done_at, for postmortems done with a known time."""
    values: dict[str, float] = {}
    unknown = inconsistent = 0
    for incident in data.incidents:
        if incident.status != "done":
            continue
        if incident.done_at is None:
            unknown += 1
        elif incident.done_at < incident.rolled_back_at:
            inconsistent += 1
        else:
            values[incident.id] = _seconds((incident.done_at - incident.rolled_back_at).total_seconds())
    all_values = list(values.values())
    return DurationMetric(
        per_incident=values,
        median=median(all_values),
        p90=p90(all_values),
        unknown_end=unknown,
        inconsistent=inconsistent,
    )


# -- follow-ups -----------------------------------------------------------------------------


def followup_past_due(followup: ReportFollowup, now: datetime) -> bool:
    """Open after the end (UTC) of its target date."""
    return not followup.closed and followup.target_date is not None and followup.target_date < now.date()


@dataclass(frozen=True)
class FollowupCounts:
    total: int
    open: int  # past due and without a target date included
    past_due: int
    no_target_date: int  # open, and no readable YYYY-MM-DD target date
    closed: int
    per_incident: dict[str, dict[str, int]]  # id -> open, past_due, closed


def followup_counts(data: ReportData) -> FollowupCounts:
    """Follow-ups of the incidents in scope: open, past due (a subset of open), closed."""
    now = data.scope.until
    per_incident: dict[str, dict[str, int]] = {}
    open_ = past_due = no_target = closed = 0
    for f in data.followups:
        counts = per_incident.setdefault(f.incident_id, {"open": 0, "past_due": 0, "closed": 0})
        if f.closed:
            closed += 1
            counts["closed"] += 1
            continue
        open_ += 1
        counts["open"] += 1
        if f.target_date is None:
            no_target += 1
        elif followup_past_due(f, now):
            past_due += 1
            counts["past_due"] += 1
    return FollowupCounts(
        total=len(data.followups),
        open=open_,
        past_due=past_due,
        no_target_date=no_target,
        closed=closed,
        per_incident=per_incident,
    )


# -- repeat signatures ----------------------------------------------------------------------


@dataclass(frozen=True)
class RepeatSignature:
    signature: str
    count: int
    services: list[str]
    environments: list[str]
    failed_step: str | None  # of the latest incident
    first_seen: datetime
    last_seen: datetime
    incidents: list[str]  # newest first


def repeat_signatures(data: ReportData, limit: int = REPEAT_LIMIT) -> list[RepeatSignature]:
    """Signatures shared by >= 2 incidents in scope: most incidents first, then most recent."""
    groups: dict[str, list[ReportIncident]] = {}
    for incident in data.incidents:
        if incident.signature:
            groups.setdefault(incident.signature, []).append(incident)
    repeats = []
    for signature, group in groups.items():
        if len(group) < 2:
            continue
        members = sorted(group, key=lambda i: (i.rolled_back_at, i.id), reverse=True)
        repeats.append(
            RepeatSignature(
                signature=signature,
                count=len(members),
                services=_distinct(i.service for i in members),
                environments=_distinct(i.environment for i in members),
                failed_step=members[0].failed_step,
                first_seen=members[-1].rolled_back_at,
                last_seen=members[0].rolled_back_at,
                incidents=[i.id for i in members],
            )
        )
    repeats.sort(key=lambda r: (-r.count, -r.last_seen.timestamp(), r.signature))
    return repeats[:limit]


def _distinct(values: Iterable[str]) -> list[str]:
    return sorted(set(values))


# -- the whole report -----------------------------------------------------------------------


@dataclass(frozen=True)
class Report:
    data: ReportData
    rollbacks: RollbacksPerWeek
    mttd: DurationMetric
    mttr: DurationMetric
    postmortems: PostmortemStates
    time_to_done: DurationMetric
    followups: FollowupCounts
    repeats: list[RepeatSignature]

    @property
    def empty(self) -> bool:
        return not self.data.incidents


def compute(data: ReportData) -> Report:
    return Report(
        data=data,
        rollbacks=rollbacks_per_week(data),
        mttd=time_to_detect(data),
        mttr=time_to_mitigate(data),
        postmortems=postmortem_states(data),
        time_to_done=time_to_done(data),
        followups=followup_counts(data),
        repeats=repeat_signatures(data),
    )
