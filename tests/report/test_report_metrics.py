"""Each metric against figures computed by hand from the seeded ledger (see conftest.seed)."""

from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rollback_pm.report.data import Scope, load, target_date
from rollback_pm.report.metrics import (
    followup_counts,
    median,
    p90,
    postmortem_states,
    quantile,
    repeat_signatures,
    rollbacks_per_week,
    time_to_detect,
    time_to_done,
    time_to_mitigate,
    weeks_in,
)

from .conftest import NOW, SINCE, at, hours


def data_of(seeded, **filters):
    with seeded.ledger() as ledger:
        return load(ledger, seeded.scope(**filters), hours)


def test_quantiles_interpolate_between_closest_ranks():
    assert median([]) is None and p90([]) is None
    assert (median([7]), p90([7])) == (7, 7)
    assert median([120, 300, 600]) == 300
    assert p90([120, 300, 600]) == 540  # rank 1.8: 300 + 0.8 x 300
    assert median([600, 1200, 1800, 2400, 3600]) == 1800
    assert p90([3600, 600, 2400, 1200, 1800]) == 3120  # rank 3.6: 2400 + 0.6 x 1200
    assert median([1, 2, 3, 4]) == 2.5


@given(st.lists(st.floats(min_value=0, max_value=1e7, allow_nan=False), min_size=2, max_size=60))
def test_quantiles_agree_with_the_standard_library(values):
    import statistics

    expected = statistics.quantiles(values, n=10, method="inclusive")[8]
    assert quantile(values, 0.9) == pytest.approx(expected, abs=0.06)
    assert median(values) == pytest.approx(statistics.median(values), abs=0.06)


def test_load_keeps_the_period_and_lists_the_broken_record(seeded):
    data = data_of(seeded)
    ids = seeded.ids
    assert [i.id for i in data.incidents] == [ids[x] for x in "EFDCBA"]  # newest rollback first
    [skipped] = data.skipped
    assert (skipped.record, skipped.ident) == ("incident", ids["H"])
    assert "started_at 'yesterday' is not an ISO 8601 time" in skipped.reason
    a = next(i for i in data.incidents if i.id == ids["A"])
    assert (a.due_at, a.done_at, a.ticket_key, a.signature) == (at(6, 10, 10), at(5, 20), "OPS-1", "S1")
    assert [e.kind for e in a.evidence] == ["log", "manifest"]
    d = next(i for i in data.incidents if i.id == ids["D"])
    assert (d.deadline_hours, d.due_at) == (0.0, None)


def test_filters(seeded):
    assert {i.service for i in data_of(seeded, service="api").incidents} == {"api"}
    assert [i.id for i in data_of(seeded, environment="staging").incidents] == [seeded.ids["D"]]
    assert data_of(seeded, service="nope").incidents == []


def test_weeks_cover_the_period_with_empty_weeks():
    assert weeks_in(Scope(SINCE, NOW)) == [date(2026, 4, 27), date(2026, 5, 4), date(2026, 5, 11), date(2026, 5, 18)]
    sunday_night = datetime(2026, 5, 17, 23, 59, 59, tzinfo=timezone.utc)
    assert weeks_in(Scope(sunday_night, sunday_night + timedelta(seconds=1))) == [date(2026, 5, 11), date(2026, 5, 18)]


def test_rollbacks_per_week(seeded):
    rollbacks = rollbacks_per_week(data_of(seeded))
    assert rollbacks.count == 6
    assert rollbacks.services == ["api", "web", "worker"]
    assert [(w.week, w.by_service, w.total) for w in rollbacks.weeks] == [
        (date(2026, 4, 27), {}, 0),
        (date(2026, 5, 4), {"api": 2}, 2),
        (date(2026, 5, 11), {"api": 1, "web": 2}, 3),
        (date(2026, 5, 18), {"worker": 1}, 1),
    ]


def test_mttd(seeded):
    ids = seeded.ids
    mttd = time_to_detect(data_of(seeded))
    assert mttd.per_incident == {ids["A"]: 120, ids["B"]: 300, ids["D"]: 600}
    assert (mttd.median, mttd.p90, mttd.measured) == (300, 540, 3)
    # C: live time unknown; E: no detection; F: detected before it went live
    assert (mttd.unknown_start, mttd.unknown_end, mttd.inconsistent, mttd.excluded) == (1, 1, 1, 3)
    assert [(w.week, w.count, w.median, w.p90) for w in mttd.weeks] == [
        (date(2026, 4, 27), 0, None, None),
        (date(2026, 5, 4), 2, 210, 282),  # 120, 300: p90 at rank 0.9 = 120 + 0.9 x 180
        (date(2026, 5, 11), 1, 600, 600),
        (date(2026, 5, 18), 0, None, None),
    ]


def test_mttr(seeded):
    ids = seeded.ids
    mttr = time_to_mitigate(data_of(seeded))
    assert mttr.per_incident == {ids["A"]: 600, ids["B"]: 1200, ids["D"]: 2400, ids["E"]: 3600, ids["F"]: 1800}
    assert (mttr.median, mttr.p90, mttr.measured) == (1800, 3120, 5)
    assert (mttr.unknown_start, mttr.unknown_end, mttr.inconsistent) == (1, 0, 0)
    assert [(w.week, w.count, w.median, w.p90) for w in mttr.weeks] == [
        (date(2026, 4, 27), 0, None, None),
        (date(2026, 5, 4), 2, 900, 1140),
        (date(2026, 5, 11), 2, 2100, 2340),
        (date(2026, 5, 18), 1, 3600, 3600),
    ]


def test_postmortem_states(seeded):
    ids = seeded.ids
    states = postmortem_states(data_of(seeded))
    assert states.counts == {"done_on_time": 1, "done_late": 1, "done_time_unknown": 1, "open": 2, "overdue": 1}
    assert states.per_incident == {
        ids["A"]: "done_on_time",
        ids["B"]: "done_late",
        ids["C"]: "overdue",
        ids["D"]: "open",  # staging: no deadline
        ids["E"]: "open",
        ids["F"]: "done_time_unknown",
    }


def test_on_the_deadline_is_on_time_and_overdue_after_it(seeded):
    data = data_of(seeded)
    c = next(i for i in data.incidents if i.id == seeded.ids["C"])
    for now, state in ((c.due_at, "open"), (c.due_at + timedelta(seconds=1), "overdue")):
        data.scope = Scope(SINCE, now)
        assert postmortem_states(data).per_incident[c.id] == state
    a = next(i for i in data.incidents if i.id == seeded.ids["A"])
    a.done_at = a.due_at
    assert postmortem_states(data).per_incident[a.id] == "done_on_time"


def test_time_to_done(seeded):
    ids = seeded.ids
    done = time_to_done(data_of(seeded))
    # A: 05-05 10:10 -> 20:00; B: 05-06 09:20 -> 05-08 12:00 = 2d 2h40m
    assert done.per_incident == {ids["A"]: 35400, ids["B"]: 182400}
    assert (done.median, done.p90) == (108900, 167700)
    assert (done.unknown_end, done.inconsistent) == (1, 0)  # F


def test_followups(seeded):
    ids = seeded.ids
    counts = followup_counts(data_of(seeded))
    assert (counts.total, counts.open, counts.past_due, counts.no_target_date, counts.closed) == (4, 3, 1, 1, 1)
    assert counts.per_incident == {
        ids["A"]: {"open": 1, "past_due": 1, "closed": 1},
        ids["B"]: {"open": 1, "past_due": 0, "closed": 0},
        ids["D"]: {"open": 1, "past_due": 0, "closed": 0},
    }


def test_a_followup_is_past_due_after_its_target_day_ends(seeded):
    data = data_of(seeded)
    data.scope = Scope(SINCE, datetime(2026, 5, 10, 23, 59, 59, tzinfo=timezone.utc))
    assert followup_counts(data).past_due == 0
    data.scope = Scope(SINCE, datetime(2026, 5, 11, 0, 0, tzinfo=timezone.utc))
    assert followup_counts(data).past_due == 1


def test_repeat_signatures_count_only_the_period(seeded):
    ids = seeded.ids
    [repeat] = repeat_signatures(data_of(seeded))  # S2's other incident (G) is before the period
    assert (repeat.signature, repeat.count, repeat.services, repeat.environments) == ("S1", 3, ["api"], ["production"])
    assert (repeat.first_seen, repeat.last_seen, repeat.failed_step) == (at(5, 10, 10), at(14, 10, 30), "3 api health")
    assert repeat.incidents == [ids["F"], ids["B"], ids["A"]]


def test_repeat_signatures_order_and_limit(seeded):
    data = data_of(seeded)
    for incident, signature in zip(data.incidents, ["T", "T", "U", "U", "U", "V"]):
        incident.signature = signature
    assert [(r.signature, r.count) for r in repeat_signatures(data)] == [("U", 3), ("T", 2)]
    assert [r.signature for r in repeat_signatures(data, limit=1)] == ["U"]


def test_rollback_time_falls_back_to_when_it_was_recorded(tmp_path):
    from rollback_pm.ledger import Ledger
    from rollback_pm.models import Incident

    with Ledger(tmp_path) as ledger:
        ledger.upsert_incident(Incident(id="", service="api", environment="production", deploy_sha="a" * 40))
        now = datetime.now(timezone.utc) + timedelta(minutes=1)
        data = load(ledger, Scope(now - timedelta(days=1), now), hours)
    [incident] = data.incidents
    assert incident.mitigated_at is None and incident.rolled_back_at == incident.created_at
    assert incident.due_at == incident.created_at + timedelta(hours=24)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-06-01", date(2026, 6, 1)),
        (" 2026-06-01 ", date(2026, 6, 1)),
        ("2026-06-01T23:30:00+02:00", date(2026, 6, 1)),
        ("next sprint", None),
        ("", None),
        (None, None),
    ],
)
def test_target_dates(text, expected):
    assert target_date(text) == expected


@given(st.text(max_size=40))
def test_target_date_never_raises(text):
    target_date(text)
