import json
import os
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner
from filelock import FileLock

from rollback_pm.cli import cli
from rollback_pm.deadline import due_at
from rollback_pm.deadlines import LOCK_NAME, clock_state, draft_complete, span
from rollback_pm.ledger import Ledger
from rollback_pm.models import Incident
from rollback_pm.tickets import open_ticket
from rollback_pm.trackers.file import FileTracker

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = "0123456789abcdef0123456789abcdef01234567"
ROLLBACK = "fedcba9876543210fedcba9876543210fedcba98"
T0 = datetime(2026, 5, 13, 8, 47, 21, tzinfo=timezone.utc)  # mitigation
DUE = "2026-05-14T08:47:21Z"
SECRET = "/hooks/T0001/B0002/s3cr3tW3bh00k"
DONE_REASON = "draft passes lint"

FINISHED = """# Production Incident Post-Mortem — api rollback

## Header

| Field | Value |
|-------|-------|
| Incident date | 2026-05-13 |
| Detection time (UTC) | 2026-05-13T08:40:02Z |
| Mitigation time (UTC) | 2026-05-13T08:47:21Z |
| Duration (user-impacting) | 07:19 |
| Affected environment | production |
| Detected by | smoke test |
| Severity | High |
| Deploy SHA at incident start | `0123456789abcdef0123456789abcdef01234567` |
| Rollback SHA (if rolled back) | `fedcba9876543210fedcba9876543210fedcba98` |

## Timeline (UTC)

```
08:38  deploy 0123456 went live            (source: pipeline 42)
08:40  smoke step 3 api health failed: 502 (source: smoke report)
08:47  rollback to fedcba9 finished        (source: pipeline 42)
```

## Detection

Smoke test step 3 (api health) answered 502 two minutes after the deploy.

## Impact

- About 1,900 failed API requests over seven minutes; no data loss.
- Two engineers spent an hour on the rollback and this postmortem.
- No regulatory impact.

## Root cause

Migration 0042 dropped the orders.legacy_ref column that the api still read at startup,
so every api container exited with code 1. The migration test ran against an empty schema.

## Repair

- The rollback to fedcba9 restored the previous image; the column was restored from the
  migration's down step.
- The fix (OPS-101) reads the column lazily and runs the migration in two phases.
- No side effects.

## Detection gaps

- A startup-crash alert on container restarts would have fired a minute earlier.
- The smoke test should hit an endpoint that reads orders.

## Prevention

| Owner | Action | Target date | Ticket |
|-------|--------|-------------|--------|
| @alice | Run migration tests against a production-shaped schema | 2026-06-01 | OPS-101 |
| @bob | Alert on more than three container restarts in five minutes | 2026-06-15 | OPS-102 |

## What went well

- The automatic rollback finished in under ten minutes.

## What was lucky

- The deploy happened outside peak hours.

## Appendix: evidence links

- Container logs: `/var/log/azaion/rollback-20260513T084721Z.log`
- Container inspect: `/var/log/azaion/rollback-20260513T084721Z.inspect.json`
- Deploy ticket: OPS-100
"""
UNFINISHED = FINISHED.replace(
    "Migration 0042 dropped", "[TODO: one paragraph; the specific commit or change]\n\nMigration 0042 dropped"
)


class WebhookEndpoint:
    """A Slack-compatible webhook on 127.0.0.1: records POST bodies, answers `status`."""

    def __init__(self, status=200, delay=0.0, retry_after=None):
        self.status = status
        self.retry_after = retry_after
        self.delay = delay  # keeps a first run busy so a second overlaps it
        self.posts: list[dict] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if endpoint.status == 200:
                    endpoint.posts.append(body)
                time.sleep(endpoint.delay)
                self.send_response(endpoint.status)
                if endpoint.retry_after is not None:
                    self.send_header("Retry-After", endpoint.retry_after)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{SECRET}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook():
    made = []

    def make(**kwargs):
        made.append(WebhookEndpoint(**kwargs))
        return made[-1]

    yield make
    for endpoint in made:
        endpoint.close()


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in list(os.environ):
        if name.startswith(("ROLLBACK_PM_", "PLUGIN_", "CI_")):
            monkeypatch.delenv(name)


class World:
    """A state dir with a ledger, the file tracker, drafts and a config file."""

    def __init__(self, tmp_path: Path, config: str = ""):
        self.root = tmp_path
        self.state = tmp_path / "state"
        self.config = tmp_path / "config.toml"
        self.config.write_text(config)
        self.tracker = FileTracker(self.state)

    def incident(
        self, *, environment="production", draft=UNFINISHED, ticket=True, owner="alice", pipeline="42"
    ) -> Incident:
        with Ledger(self.state) as ledger:
            stored, _ = ledger.upsert_incident(
                Incident(
                    id="",
                    service="api",
                    environment=environment,
                    deploy_sha=DEPLOY,
                    rollback_sha=ROLLBACK,
                    pipeline_number=pipeline,
                    mitigated_at=T0,
                    detected_at=T0,
                    owner=owner,
                )
            )
            if draft is not None:
                path = self.root / f"postmortem-{stored.id}.md"
                path.write_text(draft)
                ledger.set_draft(stored.id, path, "0" * 64, "azaion")
            if ticket:
                open_ticket(ledger, self.tracker, ledger.get(stored.id))
            return ledger.get(stored.id)

    def ticket(self, incident: Incident) -> dict:
        return json.loads((self.state / "tickets" / f"PM-{incident.id}.json").read_text())

    def set_ticket(self, incident: Incident, **changes) -> None:
        path = self.state / "tickets" / f"PM-{incident.id}.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))

    def notifications(self) -> list[tuple[str, str, str]]:
        with Ledger(self.state) as ledger:
            return [
                tuple(r)
                for r in ledger.db.execute(
                    "SELECT incident_id, kind, channel FROM notifications WHERE kind IN ('due-soon', 'overdue') "
                    "ORDER BY incident_id, kind, channel"
                )
            ]

    def status(self, incident: Incident) -> str:
        with Ledger(self.state) as ledger:
            return ledger.get(incident.id).status

    def args(self, *extra: str, log_level: str = "warning") -> list[str]:
        return [
            "--config",
            str(self.config),
            "--state-dir",
            str(self.state),
            "--log-level",
            log_level,
            "check-deadlines",
            *extra,
        ]

    def run(self, *extra: str, at: timedelta, log_level: str = "warning"):
        now = (T0 + at).strftime("%Y-%m-%dT%H:%M:%SZ")
        return CliRunner().invoke(cli, self.args("--now", now, *extra, log_level=log_level), catch_exceptions=False)


def hm(hours: int, minutes: int = 0) -> timedelta:
    return timedelta(hours=hours, minutes=minutes)


# -- the clock ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "after, state",
    [
        (hm(19, 59), "ok"),
        (hm(20), "due-soon"),  # warn-before 4h: the warning window starts at 20:00
        (hm(23, 59), "due-soon"),
        (hm(24), "due-soon"),  # due at 24:00 is still on time at 24:00
        (hm(24, 1), "overdue"),
    ],
)
def test_clock_boundaries(after, state):
    due = due_at(Incident(id="x", service="api", environment="production", deploy_sha=DEPLOY, mitigated_at=T0), 24)
    assert due == T0 + hm(24)
    assert clock_state(T0 + after, due, warn_before=4 * 3600) == state


def test_no_deadline_and_fallback_start():
    incident = Incident(id="x", service="api", environment="staging", deploy_sha=DEPLOY, created_at=T0)
    assert due_at(incident, 0) is None
    assert clock_state(T0 + hm(1000), None, 4 * 3600) == "ok"
    assert due_at(incident, 24) == T0 + hm(24)  # no mitigation time: counts from when it was recorded
    assert span(hm(26, 5)) == "26h05m" and span(-hm(0, 1)) == "0h01m"


@pytest.mark.parametrize(
    "after, state, code", [(hm(23, 59), "due-soon", 0), (hm(24), "due-soon", 0), (hm(24, 1), "overdue", 1)]
)
def test_cli_boundaries_after_mitigation(tmp_path, after, state, code):
    world = World(tmp_path)
    incident = world.incident()
    result = world.run("--json", "--dry-run", at=after)
    assert result.exit_code == code
    [row] = json.loads(result.stdout)["incidents"]
    assert (row["id"], row["due"], row["state"]) == (incident.id, DUE, state)


def test_draft_completion_without_lint(tmp_path):
    finished, unfinished = tmp_path / "done.md", tmp_path / "todo.md"
    finished.write_text(FINISHED)
    unfinished.write_text(UNFINISHED)
    assert draft_complete(str(finished), now=T0) == (True, DONE_REASON)
    assert draft_complete(str(unfinished), now=T0)[0] is False
    assert draft_complete(str(tmp_path / "missing.md"), now=T0)[0] is False
    assert draft_complete(None, now=T0) == (False, "no draft recorded")
    for placeholder in ("| Incident date | YYYY-MM-DD |", "| Deploy SHA | `<full sha>` |"):
        path = tmp_path / "placeholder.md"
        path.write_text(FINISHED + placeholder + "\n")
        assert draft_complete(str(path), now=T0)[0] is False


# -- notifications --------------------------------------------------------------------------


def test_due_soon_warns_once(tmp_path):
    world = World(tmp_path)
    incident = world.incident()
    iid = incident.id
    first = world.run(at=hm(23, 59))
    assert first.exit_code == 0, first.output
    assert first.stdout.splitlines() == [
        "ID            SERVICE          ENV         DUE                      LEFT  STATE    TICKET           OWNER",
        f"{iid}  api              production  {DUE}    0h01m  due-soon PM-{iid}  alice",
        f"{iid}: sent due-soon comment to PM-{iid}",
    ]
    assert first.stderr == ""
    [comment] = world.ticket(incident)["comments"]
    assert comment["body"] == (
        f"Postmortem due in 0h01m, by {DUE} (24h after mitigation). It counts as done when the draft "
        f"`{tmp_path}/postmortem-{iid}.md` passes `rollback-pm lint` or this ticket is resolved."
    )
    second = world.run("--quiet", at=hm(24))
    assert (second.exit_code, second.stdout, second.stderr) == (0, "", "")
    assert len(world.ticket(incident)["comments"]) == 1
    assert world.notifications() == [(iid, "due-soon", "ticket-comment")]


def test_overdue_escalates_once_on_ticket_and_webhook(tmp_path, webhook):
    endpoint = webhook()
    world = World(tmp_path, f'webhook_url = "{endpoint.url}"\n')
    incident = world.incident()
    iid = incident.id
    for _ in range(2):
        first = world.run("--quiet", at=hm(26, 5))
        assert first.exit_code == 1
        if _ == 0:
            assert first.stdout.splitlines() == [
                f"{iid}: sent overdue comment to PM-{iid}",
                f"{iid}: sent overdue label postmortem-overdue to PM-{iid}",
                f"{iid}: sent overdue webhook to 127.0.0.1",
            ]
        else:
            assert first.stdout == ""
        assert first.stderr == ""
    ticket = world.ticket(incident)
    assert "postmortem-overdue" in ticket["labels"]
    assert [c["body"] for c in ticket["comments"]] == [
        f"Postmortem overdue: it was due {DUE} (24h after mitigation), 2h05m ago. It counts as done when the "
        f"draft `{tmp_path}/postmortem-{iid}.md` passes `rollback-pm lint` or this ticket is resolved."
    ]
    ticket_url = (world.state / "tickets" / f"PM-{iid}.json").resolve().as_uri()
    assert endpoint.posts == [
        {
            "text": (
                f"Postmortem overdue: api production rollback of 0123456 (incident {iid}) was due {DUE}, 2h05m ago. "
                f"Owner: alice. Ticket: PM-{iid} {ticket_url}. Draft: {tmp_path}/postmortem-{iid}.md."
            )
        }
    ]
    assert world.notifications() == [
        (iid, "overdue", "ticket-comment"),
        (iid, "overdue", "ticket-label"),
        (iid, "overdue", "webhook"),
    ]
    assert "s3cr3t" not in json.dumps(ticket)


def test_overdue_without_warning_first_skips_the_warning(tmp_path):
    world = World(tmp_path)
    incident = world.incident()
    world.run(at=hm(30))
    world.run(at=hm(31))
    assert world.notifications() == [
        (incident.id, "overdue", "ticket-comment"),
        (incident.id, "overdue", "ticket-label"),
    ]


def test_webhook_failure_is_retried_next_run(tmp_path, webhook):
    failing = webhook(status=503, retry_after="0")  # retried at once, three times, then left for the next run
    world = World(tmp_path, f'webhook_url = "{failing.url}"\n')
    iid = world.incident().id
    first = world.run("--quiet", at=hm(25))
    assert first.exit_code == 1  # overdue wins over degraded; the degraded line still says what failed
    assert first.stdout.splitlines() == [
        f"{iid}: sent overdue comment to PM-{iid}",
        f"{iid}: sent overdue label postmortem-overdue to PM-{iid}",
    ]
    assert first.stderr == (
        f"rollback-pm: degraded: {iid}: overdue webhook to 127.0.0.1 not delivered: webhook at "
        "127.0.0.1 not reached after 3 attempt(s): HTTP 503 (ok); the next check-deadlines run "
        "tries again\n"
    )
    assert "s3cr3t" not in first.output
    working = webhook()
    world.config.write_text(f'webhook_url = "{working.url}"\n')
    second = world.run("--quiet", at=hm(25, 15))
    assert second.stdout.splitlines() == [f"{iid}: sent overdue webhook to 127.0.0.1"]
    assert len(working.posts) == 1 and "was due 2026-05-14T08:47:21Z, 1h15m ago" in working.posts[0]["text"]
    with Ledger(world.state) as ledger:
        assert len(world.ticket(ledger.get(iid))["comments"]) == 1


def test_tracker_down_is_degraded_and_the_next_run_recovers(tmp_path):
    world = World(tmp_path)
    incident = world.incident()
    iid = incident.id
    tickets = world.state / "tickets"
    tickets.rename(world.state / "tickets.away")
    tickets.write_text("not a directory")  # the tracker answers nothing, like a server that is down
    down = world.run("--quiet", at=hm(22))
    assert down.exit_code == 3
    assert down.stdout == ""
    assert down.stderr == (
        f"rollback-pm: degraded: could not check {iid} (api production): ticket PM-{iid} status not readable: "
        f"ticket directory {tickets} exists but is not a directory; make the state dir's tickets/ a real, "
        "writable directory; its state uses the last known ticket status, notifications wait for the next run\n"
    )
    assert world.notifications() == []
    tickets.unlink()
    (world.state / "tickets.away").rename(tickets)
    up = world.run("--quiet", at=hm(22, 15))
    assert (up.exit_code, up.stdout, up.stderr) == (0, f"{iid}: sent due-soon comment to PM-{iid}\n", "")
    assert len(world.ticket(incident)["comments"]) == 1


def test_no_escalation_on_a_guess_while_the_tracker_is_down(tmp_path, webhook):
    endpoint = webhook()
    world = World(tmp_path)
    incident = world.incident()
    iid = incident.id
    tickets = world.state / "tickets"
    tickets.rename(world.state / "tickets.away")
    tickets.write_text("not a directory")
    down = world.run("--json", "--webhook", endpoint.url, at=hm(25))
    assert down.exit_code == 1  # overdue by the last known status; the degraded line says it is a guess
    [row] = json.loads(down.stdout)["incidents"]
    assert (row["state"], row["checked"]) == ("overdue", False)
    assert [(n["channel"], n["result"]) for n in row["notifications"]] == [
        ("ticket-comment", "deferred"),
        ("ticket-label", "deferred"),
        ("webhook", "deferred"),
    ]
    assert down.stderr.startswith(f"rollback-pm: degraded: could not check {iid} (api production): ")
    assert endpoint.posts == [] and world.notifications() == []
    tickets.unlink()
    (world.state / "tickets.away").rename(tickets)
    up = world.run("--quiet", "--webhook", endpoint.url, at=hm(25, 15))
    assert up.exit_code == 1 and up.stderr == ""
    assert len(up.stdout.splitlines()) == 3 and len(endpoint.posts) == 1


def test_queued_ticket_is_flushed_first_then_warned(tmp_path):
    world = World(tmp_path)
    world.state.mkdir()
    (world.state / "tickets").write_text("not a directory")
    incident = world.incident()  # the hook's ticket open went to the outbox
    iid = incident.id
    assert incident.ticket is None
    (world.state / "tickets").unlink()
    result = world.run("--quiet", at=hm(21))
    ticket_url = (world.state / "tickets" / f"PM-{iid}.json").resolve().as_uri()
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout.splitlines() == [
        f"outbox: sent {iid}: created PM-{iid} {ticket_url}",
        f"{iid}: sent due-soon comment to PM-{iid}",
    ]
    assert len(world.ticket(incident)["comments"]) == 1


def test_finished_draft_is_done_without_notification(tmp_path, webhook):
    endpoint = webhook()
    world = World(tmp_path, f'webhook_url = "{endpoint.url}"\n')
    incident = world.incident(draft=FINISHED)
    result = world.run(at=hm(30))
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        "ID            SERVICE          ENV         DUE                      LEFT  STATE    TICKET           OWNER",
        f"{incident.id}  api              production  {DUE}        -  done     PM-{incident.id}  alice",
        f"{incident.id}: done ({DONE_REASON})",
    ]
    assert world.status(incident) == "done"
    assert world.notifications() == [] and endpoint.posts == [] and world.ticket(incident)["comments"] == []
    again = world.run(at=hm(31))
    assert (again.exit_code, again.stdout) == (0, "no open incidents\n")
    with Ledger(world.state) as ledger:  # when it became done: the run that found it (the report's "late")
        assert ledger.get(incident.id).done_at == T0 + hm(30)


def test_resolved_ticket_is_done(tmp_path):
    world = World(tmp_path)
    incident = world.incident()
    world.set_ticket(incident, status="resolved")
    result = world.run("--quiet", at=hm(25))
    assert (result.exit_code, result.stdout) == (0, f"{incident.id}: done (ticket PM-{incident.id} resolved)\n")
    assert world.status(incident) == "done"
    assert world.notifications() == []


def test_staging_without_deadline(tmp_path, webhook):
    endpoint = webhook()
    world = World(tmp_path, f'webhook_url = "{endpoint.url}"\n[environments.staging]\ndeadline_hours = 0\n')
    staging = world.incident(environment="staging")
    result = world.run("--json", at=hm(100))
    assert result.exit_code == 0
    [row] = json.loads(result.stdout)["incidents"]
    assert (row["id"], row["env"], row["due"], row["state"], row["notifications"]) == (
        staging.id,
        "staging",
        None,
        "ok",
        [],
    )
    assert world.notifications() == [] and endpoint.posts == []


def test_hours_and_warn_before_flags(tmp_path):
    world = World(tmp_path)
    world.incident()
    result = world.run("--json", "--dry-run", "--hours", "48", "--warn-before", "1h", at=hm(46, 59))
    [row] = json.loads(result.stdout)["incidents"]
    assert (row["due"], row["state"]) == ("2026-05-15T08:47:21Z", "ok")


def test_dry_run_sends_and_changes_nothing(tmp_path, webhook):
    endpoint = webhook()
    world = World(tmp_path, f'webhook_url = "{endpoint.url}"\n')
    late = world.incident()
    finished = world.incident(draft=FINISHED, pipeline="43")
    result = world.run("--dry-run", "--quiet", at=hm(25))
    assert result.exit_code == 1
    lines = {
        finished.id: [f"{finished.id}: would mark done ({DONE_REASON})"],
        late.id: [
            f"{late.id}: would send overdue comment to PM-{late.id}",
            f"{late.id}: would send overdue label postmortem-overdue to PM-{late.id}",
            f"{late.id}: would send overdue webhook to 127.0.0.1",
        ],
    }
    assert result.stdout.splitlines() == [line for iid in sorted(lines) for line in lines[iid]]  # same due: by id
    assert endpoint.posts == [] and world.notifications() == []
    assert world.status(finished) == "open" and world.ticket(late)["comments"] == []


def test_json_output(tmp_path):
    world = World(tmp_path)
    incident = world.incident()
    no_ticket = world.incident(ticket=False, owner=None, pipeline="43", draft=None)
    result = world.run("--json", at=hm(23))
    assert result.exit_code == 3  # the warning for the incident without a ticket could not be posted
    data = json.loads(result.stdout)
    ticket_url = (world.state / "tickets" / f"PM-{incident.id}.json").resolve().as_uri()
    rows = {row["id"]: row for row in data["incidents"]}
    assert rows[incident.id] == {
        "id": incident.id,
        "service": "api",
        "env": "production",
        "due": DUE,
        "state": "due-soon",
        "reason": rows[incident.id]["reason"],
        "checked": True,
        "ticket": f"PM-{incident.id}",
        "ticket_url": ticket_url,
        "draft": f"{tmp_path}/postmortem-{incident.id}.md",
        "owner": "alice",
        "notifications": [{"kind": "due-soon", "channel": "ticket-comment", "result": "sent"}],
    }
    assert rows[incident.id]["reason"].startswith("due in 1h00m; draft ")
    assert rows[no_ticket.id]["reason"] == "due in 1h00m; no draft recorded"
    assert (rows[no_ticket.id]["ticket"], rows[no_ticket.id]["owner"], rows[no_ticket.id]["draft"]) == (
        None,
        None,
        None,
    )
    assert rows[no_ticket.id]["notifications"] == [
        {
            "kind": "due-soon",
            "channel": "ticket-comment",
            "result": "failed",
            "detail": f"incident {no_ticket.id} has no ticket yet; run `rollback-pm ticket open {no_ticket.id}`",
        }
    ]
    assert data["now"] == "2026-05-14T07:47:21Z" and data["exit_code"] == 3
    assert data["degraded"] == [
        f"{no_ticket.id}: due-soon comment to the ticket not delivered: "
        f"{rows[no_ticket.id]['notifications'][0]['detail']}"
    ]


# -- overlap --------------------------------------------------------------------------------


def test_a_run_that_cannot_get_the_lock_exits_quietly(tmp_path):
    world = World(tmp_path)
    incident = world.incident()
    world.state.mkdir(exist_ok=True)
    with FileLock(str(world.state / LOCK_NAME)):
        busy = world.run(at=hm(25))
        assert (busy.exit_code, busy.stdout, busy.stderr) == (0, "", "")
        debug = world.run(at=hm(25), log_level="debug")
        assert debug.exit_code == 0 and debug.stdout == ""
        assert "another check-deadlines run holds the lock" in debug.stderr
    assert world.notifications() == [] and world.ticket(incident)["comments"] == []


def test_two_concurrent_processes_notify_once(tmp_path, webhook):
    endpoint = webhook(delay=0.5)  # the first run is still posting when the second starts
    world = World(tmp_path, f'webhook_url = "{endpoint.url}"\n')
    incident = world.incident()
    iid = incident.id
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "rollback_pm", *world.args("--quiet", "--now", "2026-05-14T09:00:00Z")]
    procs = [
        subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outcomes = sorted((p.wait(timeout=60), p.stdout.read(), p.stderr.read()) for p in procs)
    for p in procs:
        p.stdout.close()
        p.stderr.close()
    sent = (
        f"{iid}: sent overdue comment to PM-{iid}\n"
        f"{iid}: sent overdue label postmortem-overdue to PM-{iid}\n"
        f"{iid}: sent overdue webhook to 127.0.0.1\n"
    )
    # Either the second run found the lock taken (exit 0, silent) or came after the first (exit 1,
    # overdue, nothing new to send): never a second notification.
    assert outcomes[1] == (1, sent, "")
    assert outcomes[0] in ((0, "", ""), (1, "", ""))
    assert len(endpoint.posts) == 1
    ticket = world.ticket(incident)
    assert len(ticket["comments"]) == 1 and "postmortem-overdue" in ticket["labels"]
    assert world.notifications() == [
        (iid, "overdue", "ticket-comment"),
        (iid, "overdue", "ticket-label"),
        (iid, "overdue", "webhook"),
    ]


def test_webhook_url_stays_out_of_debug_logs(tmp_path, webhook):
    failing = webhook(status=503, retry_after="0")
    world = World(tmp_path, f'webhook_url = "{failing.url}"\n')
    world.incident()
    result = world.run("--json", at=hm(25), log_level="debug")
    assert "webhook attempt failed" in result.stderr and "host=127.0.0.1" in result.stderr
    assert "s3cr3t" not in result.output and "B0002" not in result.output
