"""Fuzz the JSON and times the ledger stores: whatever a column holds (a hand edit, a disk
error), reading the incident gives it back or a LedgerError naming the incident; a retry
of the hook still records its facts and repairs what was damaged."""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from rollback_pm.errors import LedgerError
from rollback_pm.ledger import Ledger, pending_key
from rollback_pm.models import EvidenceFile, Incident, SmokeStep
from tests.fuzz.scratch import scratch_dir
from tests.fuzz.strategies import big_ints, floats, json_values, timestamps
from tests.fuzz.tally import TALLY, is_error

T0 = datetime(2026, 5, 13, 8, 47, 21, tzinfo=timezone.utc)
STATE = scratch_dir("ledger")


def incident() -> Incident:
    return Incident(
        id="",
        service="api",
        environment="production",
        deploy_sha="d" * 40,
        rollback_sha="c" * 40,
        pipeline_number="42",
        mitigated_at=T0,
        smoke_steps=[SmokeStep(name="api health", status="failed", step=3, ts=T0, source="smoke.jsonl")],
    )


with Ledger(STATE) as _ledger:
    IID = _ledger.upsert_incident(incident())[0].id

odd = json_values
sqlite_values = st.one_of(
    st.none(),
    big_ints.filter(lambda n: -(2**63) <= n < 2**63),
    floats,
    st.text(max_size=30),
    st.binary(max_size=20),
    timestamps.map(str),
)
containers = st.fixed_dictionaries(
    {"name": st.text(max_size=10) | odd, "id": st.text(max_size=10) | odd},
    optional={
        "image": st.text(max_size=10) | odd,
        "status": st.sampled_from(["exited", "running"]) | odd,
        "exit_code": st.integers(-1, 255) | odd,
        "oom_killed": st.booleans() | odd,
        "restart_count": st.integers(0, 10) | odd,
        "started_at": timestamps | odd,
        "finished_at": timestamps | odd,
        "health_status": st.sampled_from(["healthy", "unhealthy"]) | odd,
        "health_log": st.lists(st.dictionaries(st.text(max_size=5), odd, max_size=3), max_size=2) | odd,
        "image_revision": st.text(max_size=10) | odd,
        "future_field": odd,
    },
)
commits = st.fixed_dictionaries(
    {"sha": st.text(max_size=10) | odd, "author": st.text(max_size=10) | odd, "subject": st.text(max_size=10) | odd},
    optional={"date": timestamps | odd},
)
swarm_image = st.fixed_dictionaries(
    {"image": st.text(max_size=10) | odd}, optional={"digest": odd, "revision": st.text(max_size=10) | odd}
)
swarm = st.fixed_dictionaries(
    {"service": st.text(max_size=10) | odd, "service_id": st.text(max_size=10) | odd},
    optional={
        "trigger": st.sampled_from(["automatic", "manual", "pipeline"]) | odd,
        "deploy": swarm_image | odd,
        "rollback": swarm_image | odd,
        "update": st.fixed_dictionaries(
            {"state": st.text(max_size=10) | odd}, optional={"started_at": timestamps | odd, "message": odd}
        )
        | odd,
        "failures": st.fixed_dictionaries(
            {}, optional={"count": st.integers(0, 5) | odd, "first_at": timestamps | odd, "nodes": odd}
        )
        | odd,
    },
)
facts = st.fixed_dictionaries(
    {},
    optional={
        "swarm": swarm | odd,
        "containers": st.lists(containers, max_size=3) | odd,
        "commits": st.lists(commits, max_size=3) | odd,
        "changed_files": st.lists(
            st.fixed_dictionaries({"path": st.text(max_size=10) | odd}, optional={"added": odd, "deleted": odd}),
            max_size=3,
        )
        | odd,
        "warnings": st.lists(st.text(max_size=10), max_size=3) | odd,
    },
)
facts_json = st.one_of(
    facts.map(json.dumps),
    facts.map(json.dumps),
    json_values.map(json.dumps),
    sqlite_values.filter(lambda v: v is not None and not (isinstance(v, float) and math.isnan(v))),
)  # the column is NOT NULL (and SQLite stores NaN as NULL)


def read_back(ledger: Ledger) -> Any:
    got = ledger.get(IID)
    ledger.list()
    return got


good_times = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2030, 1, 1)).map(
    lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ")
)
time_columns = st.one_of(st.none(), good_times, good_times, sqlite_values)
good_facts = st.one_of(st.just("{}"), st.just('{"containers": [], "warnings": ["w"]}'))


@given(facts_json | good_facts, time_columns, time_columns, time_columns)
def test_fuzz_stored_incident(stored_facts: Any, started: Any, mitigated: Any, step_ts: Any) -> None:
    with Ledger(STATE) as ledger:
        ledger.db.execute(
            "UPDATE incidents SET facts_json = ?, started_at = ?, mitigated_at = ? WHERE id = ?",
            (stored_facts, started, mitigated, IID),
        )
        ledger.db.execute("UPDATE smoke_steps SET ts = ? WHERE incident_id = ?", (step_ts, IID))
        outcome = TALLY.run("ledger stored incident", lambda: read_back(ledger), LedgerError)
        if is_error(outcome):
            assert f"incident {IID}" in str(outcome), str(outcome)
        # a retry of the hook records its facts whatever was stored before: its own replace
        # damaged facts and times, so the incident reads again
        retry = TALLY.run("ledger retry over it", lambda: ledger.upsert_incident(incident()), LedgerError)
        assert not is_error(retry), str(retry)
        ledger.db.execute(
            "UPDATE incidents SET facts_json = '{}', started_at = NULL, mitigated_at = ? WHERE id = ?",
            ("2026-05-13T08:47:21Z", IID),
        )
        ledger.db.execute("UPDATE smoke_steps SET ts = NULL WHERE incident_id = ?", (IID,))


@given(facts_json)
def test_fuzz_stored_pending_evidence(stored: Any) -> None:
    key = pending_key("api", "production", "d" * 40, "42")
    with Ledger(STATE) as ledger:
        manifest = EvidenceFile("/e/rollback-1.manifest.json", "manifest", "0" * 64, 1, "20260513T084721Z")
        ledger.add_pending_evidence(key, [manifest], {})
        ledger.db.execute("UPDATE pending_evidence SET facts_json = ? WHERE pending_key = ?", (stored, key))
        outcome = TALLY.run("ledger pending facts", lambda: ledger.take_pending_evidence(key), LedgerError)
        assert not is_error(outcome)  # damaged parked facts are dropped (logged); the evidence stays
        files, _ = outcome
        assert [f.path for f in files] == [manifest.path]
        ledger.drop_pending_evidence(key)
