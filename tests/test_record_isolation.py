"""One broken record never stops the rest: every reader of the whole ledger (check-deadlines,
incidents list/show, ticket flush, the report, ledger check) reads each incident, ticket
file and outbox entry on its own. A broken one is named with what to fix, the others are
handled, and the exit code says degraded (3), or 1 when something is overdue.

The records are poisoned with real SQL on the real ledger file, as a hand edit, a disk
error or an old version would leave them.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from rollback_pm.cli import cli
from rollback_pm.ledger import DB_NAME, Ledger
from rollback_pm.models import EvidenceFile, Incident, Signature, SmokeStep
from rollback_pm.tickets import open_ticket
from rollback_pm.trackers.file import FileTracker

pytestmark = pytest.mark.usefixtures("clean_env")
T0 = datetime(2026, 5, 13, 8, 47, 21, tzinfo=timezone.utc)
SERVICES = ("api", "web", "worker")
FIX = "correct it with sqlite3, or recover it from its draft and ticket with `rollback-pm ledger rebuild --force`"


def make(service: str, n: int) -> Incident:
    return Incident(
        id="",
        service=service,
        environment="production",
        deploy_sha=f"{n}" * 40,
        rollback_sha="f" * 40,
        rollback_sha_source="flag",
        pipeline_number=str(40 + n),
        mitigated_at=T0,
        detected_at=T0,
        detected_by="smoke test",
        smoke_steps=[SmokeStep(name="api health", status="failed", step=3, ts=T0, message="502", source="s.jsonl")],
    )


@pytest.fixture
def state(tmp_path: Path) -> dict[str, str]:
    """Three incidents with file tickets in tmp_path/state: service -> incident id."""
    ids = {}
    with Ledger(tmp_path / "state") as ledger:
        for n, service in enumerate(SERVICES):
            stored, _ = ledger.upsert_incident(make(service, n))
            open_ticket(ledger, FileTracker(tmp_path / "state"), stored)
            ids[service] = stored.id
    (tmp_path / "none.toml").write_text("")
    return ids


def poison(tmp_path: Path, sql: str, *args: object) -> None:
    db = sqlite3.connect(tmp_path / "state" / DB_NAME)
    try:
        db.execute(sql, args)
        db.commit()
    finally:
        db.close()


def run(tmp_path: Path, *args: str) -> Result:
    return CliRunner().invoke(
        cli,
        ["--config", str(tmp_path / "none.toml"), "--state-dir", str(tmp_path / "state"), *args],
        catch_exceptions=False,
    )


POISONS = {
    # issue 15: a year typo stored before input was checked stopped every reader
    "mitigated-year-typo": (
        "UPDATE incidents SET mitigated_at = '26-05-13T08:40:00Z' WHERE id = ?",
        "mitigated_at '26-05-13T08:40:00Z' is not an ISO 8601 time (e.g. 2026-05-13T08:47:21Z)",
    ),
    # and the same through an OverflowError in the deadline arithmetic
    "mitigated-year-9999": (
        "UPDATE incidents SET mitigated_at = '9999-12-31T23:59:59Z' WHERE id = ?",
        "mitigated_at '9999-12-31T23:59:59Z' lies outside 2000-01-01 .. 9000-01-01, where rollback-pm never writes",
    ),
    "service-is-a-blob": ("UPDATE incidents SET service = X'00ff' WHERE id = ?", "service is bytes, not text"),
    "facts-not-json": (
        "UPDATE incidents SET facts_json = '{\"containers\": [' WHERE id = ?",
        "facts_json is not valid JSON",
    ),
    "step-time-garbage": (
        "UPDATE smoke_steps SET ts = 'soon' WHERE incident_id = ?",
        "smoke step 3 ts 'soon' is not an ISO 8601 time (e.g. 2026-05-13T08:47:21Z)",
    ),
    "ticket-key-a-number-blob": (
        "UPDATE tickets SET key = X'00' WHERE incident_id = ?",
        "ticket key is bytes, not text",
    ),
}


@pytest.mark.parametrize("name", list(POISONS))
def test_one_damaged_incident_is_named_and_the_others_are_read(tmp_path, state, name):
    sql, damage = POISONS[name]
    bad = state["web"]
    poison(tmp_path, sql, bad)
    problem = f"incident {bad} in the ledger {tmp_path / 'state' / DB_NAME} has a damaged record ({damage}); {FIX}"
    good = [state["api"], state["worker"]]

    checked = run(tmp_path, "check-deadlines", "--now", "2026-05-13T10:00:00Z")
    assert checked.exit_code == 3, checked.output
    assert f"rollback-pm: degraded: not checked: {problem}\n" in checked.stderr
    rows = {line.split()[0]: line for line in checked.stdout.splitlines()[1:]}
    assert all(rows[iid].split()[5] == "ok" for iid in good)
    assert rows[bad].endswith("damaged")

    # Overdue wins over degraded: exit 1, and the damaged incident is still named.
    late = run(tmp_path, "check-deadlines", "--now", "2026-05-15T10:00:00Z", "--json")
    assert late.exit_code == 1, late.output
    report = json.loads(late.stdout)
    assert sorted(i["id"] for i in report["incidents"]) == sorted(good)
    assert {i["state"] for i in report["incidents"]} == {"overdue"}
    assert report["unreadable"] == [{"id": bad, "problem": problem}]
    assert f"not checked: {problem}" in report["degraded"]

    listed = run(tmp_path, "incidents", "list")
    assert listed.exit_code == 3, listed.output
    assert listed.stderr == f"rollback-pm: degraded: {problem}\n"
    assert {line.split()[0] for line in listed.stdout.splitlines()[1:]} == {*good, bad}
    as_json = run(tmp_path, "incidents", "list", "--json")
    assert as_json.exit_code == 3 and sorted(i["id"] for i in json.loads(as_json.stdout)) == sorted(good)

    shown = run(tmp_path, "incidents", "show", bad)
    assert shown.exit_code == 3, shown.output
    assert f"id:                 {bad}\n" in shown.stdout and "environment:        production\n" in shown.stdout
    assert shown.stderr == f"rollback-pm: degraded: {problem}\n"
    assert run(tmp_path, "incidents", "show", state["api"]).exit_code == 0

    # The report reads only the columns it needs: damage elsewhere spoils nothing of it.
    reported = run(tmp_path, "report", "--json", "--now", "2026-05-20T00:00:00Z")
    in_report = name not in ("facts-not-json", "step-time-garbage")
    assert reported.exit_code == (3 if in_report else 0), reported.output
    reported_ids = sorted(i["id"] for i in json.loads(reported.stdout)["incidents"])
    assert reported_ids == sorted(good if in_report else [*good, bad])
    assert (f"rollback-pm: degraded: incident {bad} left out: " in reported.stderr) == in_report

    checked_ledger = run(tmp_path, "ledger", "check", "--json")
    assert checked_ledger.exit_code == 1
    problems = json.loads(checked_ledger.stdout)["problems"]
    assert {
        "kind": "record",
        "message": problem,
        "path": str(tmp_path / "state" / DB_NAME),
        "incident": bad,
    } in problems


def test_an_incident_without_an_id_is_named_by_what_is_left(tmp_path, state):
    poison(tmp_path, "UPDATE incidents SET id = NULL WHERE id = ?", state["web"])
    listed = run(tmp_path, "incidents", "list")
    assert listed.exit_code == 3
    assert "rollback-pm: degraded: incident (id NULL) in the ledger" in listed.stderr
    assert "(id NULL, not text)" not in listed.stderr and "(id is NULL, not text)" in listed.stderr
    assert run(tmp_path, "ledger", "check").exit_code == 1  # a problem, not an internal error


def test_a_retry_of_the_hook_repairs_its_damaged_times(tmp_path, state):
    poison(tmp_path, "UPDATE incidents SET mitigated_at = '9999-12-31T23:59:59Z' WHERE id = ?", state["web"])
    with Ledger(tmp_path / "state") as ledger:
        repaired, new = ledger.upsert_incident(make("web", 1))
    assert not new and repaired.mitigated_at == T0
    assert run(tmp_path, "incidents", "list").exit_code == 0


def test_a_broken_ticket_file_stops_only_its_incident(tmp_path, state):
    (tmp_path / "state" / "tickets" / f"PM-{state['web']}.json").write_text('{"key": 5}')
    checked = run(tmp_path, "check-deadlines", "--now", "2026-05-14T06:00:00Z")  # due soon: warnings are owed
    assert checked.exit_code == 3, checked.output
    path = tmp_path / "state" / "tickets" / f"PM-{state['web']}.json"
    assert (
        f"rollback-pm: degraded: could not check {state['web']} (web production): ticket PM-{state['web']} status "
        f'not readable: ticket file {path} is not a ticket: "key" is 5, not "PM-{state["web"]}" (the file\'s name); '
        "fix it (it is JSON; see another ticket file for the shape)"
    ) in checked.stderr
    for service in ("api", "worker"):
        ticket = json.loads((tmp_path / "state" / "tickets" / f"PM-{state[service]}.json").read_text())
        assert [c["body"][:21] for c in ticket["comments"]] == ["Postmortem due in 2h4"]


def test_ticket_flush_sends_the_good_entries_and_names_each_broken_one(tmp_path, state):
    for service in SERVICES:  # their tickets are to be opened from the outbox
        poison(tmp_path, "DELETE FROM tickets WHERE incident_id = ?", state[service])
        (tmp_path / "state" / "tickets" / f"PM-{state[service]}.json").unlink()
    entries = [
        (state["api"], "open", "{}"),  # 1: good
        (state["api"], "comment", "{not json"),  # 2: a payload that is not JSON
        ("0badc0ffee00", "open", "{}"),  # 3: an incident the ledger does not know
        (state["web"], "open", "{}"),  # 4: its incident is damaged ...
        (state["web"], "label", '{"label": "x"}'),  # 5: ... so its later entries wait, in order
        (state["worker"], "label", '{"label": 5}'),  # 6: a label that is not text
        (state["worker"], "teleport", "{}"),  # 7: an action nobody knows
        (state["worker"], "open", "{}"),  # 8: good
    ]
    db = sqlite3.connect(tmp_path / "state" / DB_NAME)
    db.executemany(
        "INSERT INTO outbox (incident_id, action, payload, created_at) VALUES (?, ?, ?, '2026-05-13T08:47:21Z')",
        entries,
    )
    db.execute("UPDATE incidents SET started_at = 'yesterday' WHERE id = ?", (state["web"],))
    db.commit()
    db.close()
    ledger_path = tmp_path / "state" / DB_NAME

    flushed = run(tmp_path, "ticket", "flush")
    assert flushed.exit_code == 3, flushed.output

    def uri(service: str) -> str:
        return (tmp_path / "state" / "tickets" / f"PM-{state[service]}.json").as_uri()

    assert flushed.stdout.splitlines() == [
        f"sent {state['api']}: created PM-{state['api']} {uri('api')}",
        f"sent {state['worker']}: created PM-{state['worker']} {uri('worker')}",
    ]

    def drop(n: int) -> str:
        return f'delete it: sqlite3 {ledger_path} "DELETE FROM outbox WHERE id = {n}"'

    assert flushed.stderr.splitlines() == [
        f"rollback-pm: degraded: outbox entry 2 (comment) for incident {state['api']} is not sent: its payload is "
        f"not a JSON object; correct it or {drop(2)}",
        "rollback-pm: degraded: outbox entry 3 (open) for incident 0badc0ffee00 is not sent: the ledger has no such "
        f"incident; {drop(3)}",
        f"rollback-pm: degraded: outbox entry 4 (open) for incident {state['web']} is not sent: incident "
        f"{state['web']} in the ledger {ledger_path} has a damaged record (started_at 'yesterday' is not an ISO 8601 "
        f"time (e.g. 2026-05-13T08:47:21Z)); {FIX}",
        f"rollback-pm: degraded: outbox entry 6 (label) for incident {state['worker']} is not sent: its payload has "
        f'no "label" text; correct it or {drop(6)}',
        f"rollback-pm: degraded: outbox entry 7 (teleport) for incident {state['worker']} is not sent: its action "
        f"'teleport' is not one of open, comment, label; correct it or {drop(7)}",
    ]
    db = sqlite3.connect(ledger_path)
    pending = [r[0] for r in db.execute("SELECT id FROM outbox WHERE done_at IS NULL ORDER BY id")]
    db.close()
    assert pending == [2, 3, 4, 5, 6, 7]
    assert (tmp_path / "state" / "tickets" / f"PM-{state['worker']}.json").is_file()

    # check-deadlines flushes first and says the same, once per entry
    checked = run(tmp_path, "check-deadlines", "--now", "2026-05-13T10:00:00Z")
    assert checked.exit_code == 3
    assert checked.stderr.count("rollback-pm: degraded: outbox: outbox entry") == 5


def test_a_draft_path_that_would_hang_the_cron_is_a_reason_not_a_hang(tmp_path, state):
    poison(tmp_path, "UPDATE incidents SET draft_path = '/dev/zero' WHERE id = ?", state["web"])
    checked = run(tmp_path, "check-deadlines", "--now", "2026-05-13T10:00:00Z", "--json")
    assert checked.exit_code == 3, checked.output  # its follow-ups cannot be read from it either
    report = json.loads(checked.stdout)
    web = next(i for i in report["incidents"] if i["id"] == state["web"])
    assert web["reason"] == (
        "due in 22h47m; draft unreadable: /dev/zero cannot be read (not a regular file); it must be a regular file"
    )
    assert report["degraded"] == ["draft /dev/zero cannot be read (not a regular file); its follow-ups wait"]


def test_an_incident_whose_ticket_the_tracker_404s_is_named_and_the_others_are_checked(tmp_path, monkeypatch):
    from rollback_pm.trackers.jira import JiraTracker
    from tests.support.fake_jira import FakeJira

    with FakeJira(api_version=3) as jira:
        tracker = JiraTracker(jira.url, jira.project, jira.token, email=jira.email, api_version=3)
        ids = {}
        with Ledger(tmp_path / "state") as ledger:
            for n, service in enumerate(SERVICES):
                stored, _ = ledger.upsert_incident(make(service, n))
                ids[service] = open_ticket(ledger, tracker, stored).ticket.key  # type: ignore[union-attr]
                ids[service + "-id"] = stored.id
        with jira.server.lock:
            del jira.issues[ids["web"]]  # someone deleted it in Jira
        (tmp_path / "none.toml").write_text("")
        monkeypatch.setenv("ROLLBACK_PM_TRACKER_TOKEN", jira.token)
        checked = run(
            tmp_path,
            "check-deadlines",
            "--now",
            "2026-05-14T06:00:00Z",
            "--tracker",
            "jira",
            "--tracker-url",
            jira.url,
            "--jira-project",
            jira.project,
            "--jira-email",
            jira.email,
            "--jira-api",
            "3",
        )
        assert checked.exit_code == 3, checked.output
        web = ids["web-id"]
        assert (
            f"rollback-pm: degraded: could not check {web} (web production): ticket {ids['web']} status not "
            f"readable: jira answered 404 Not Found to GET /rest/api/3/issue/{ids['web']}: Issue does not exist or you do not "
            f"have permission to see it.. Check that issue {ids['web']} still exists and the account can see it"
        ) in checked.stderr
        for service in ("api", "worker"):
            assert len(jira.issue(ids[service])["comments"]) == 1  # the due-soon warning
        assert jira.failures == []


def test_the_report_leaves_out_only_the_broken_evidence_and_signature_rows(tmp_path, state):
    with Ledger(tmp_path / "state") as ledger:
        ledger.add_evidence(state["api"], [EvidenceFile("/e/rollback-1.log", "log", "0" * 64, 2, "20260513T084721Z")])
        ledger.set_signature(Signature(state["worker"], "sig-1", "api health"))
    poison(tmp_path, "UPDATE evidence SET kind = X'01' WHERE incident_id = ?", state["api"])
    poison(tmp_path, "UPDATE signatures SET signature = X'02' WHERE incident_id = ?", state["worker"])
    reported = run(tmp_path, "report", "--json", "--now", "2026-05-20T00:00:00Z")
    assert reported.exit_code == 3, reported.output
    assert len(json.loads(reported.stdout)["incidents"]) == 3
    assert reported.stderr.splitlines() == [
        f"rollback-pm: degraded: evidence {state['api']}/'/e/rollback-1.log' left out: kind is bytes, not text",
        f"rollback-pm: degraded: signature {state['worker']} left out: signature is bytes, not text",
    ]
