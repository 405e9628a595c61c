"""check-deadlines and the follow-ups: it syncs the drafts' action rows, reads their state
back, warns once before a target date and escalates once after it, like the postmortem
deadline, and treats each follow-up on its own."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from click.testing import CliRunner

from rollback_pm.cli import cli
from rollback_pm.config import load_settings
from rollback_pm.deadlines import check_deadlines
from rollback_pm.ledger import Ledger
from rollback_pm.tickets import open_ticket
from rollback_pm.trackers.file import FileTracker
from tests.followups.conftest import JiraSide
from tests.followups.drafting import Item, fill, record, write
from tests.support.fake_jira import FakeJira
from tests.test_deadlines import WebhookEndpoint

ROWS = [Item("@ana", "Add a migration dry run to CI", "2026-06-01"), Item("bo", "Alert on 5xx", "2026-06-10")]


class Cron:
    """A state dir with the file tracker, a drafted incident whose postmortem has no deadline
    (so only the follow-ups' dates count) and a webhook."""

    def __init__(self, tmp_path: Path, webhook: WebhookEndpoint) -> None:
        self.state = tmp_path / "state"
        self.config = tmp_path / "config.toml"
        self.config.write_text(f'deadline_hours = 0\nwebhook_url = "{webhook.url}"\n')
        self.tracker = FileTracker(self.state)
        with Ledger(self.state) as ledger:
            incident = record(ledger, self.state)
            open_ticket(ledger, self.tracker, incident)
            write(incident, fill(Path(incident.draft_path).read_text(), ROWS))
            self.incident = ledger.get(incident.id)

    def run(self, now: str, *extra: str):
        return CliRunner().invoke(
            cli,
            ["--config", str(self.config), "--state-dir", str(self.state), "check-deadlines", "--now", now, *extra],
            catch_exceptions=False,
        )

    def ticket(self, key: str) -> dict:
        return json.loads((self.state / "tickets" / "followups" / f"{key}.json").read_text())

    def followups(self) -> list[tuple[str | None, str]]:
        with Ledger(self.state) as ledger:
            return [(f.key, f.status) for f in ledger.list_followups(self.incident.id)]


def test_follow_ups_are_synced_then_warned_once_and_escalated_once(tmp_path, clean_env):
    webhook = WebhookEndpoint()
    try:
        cron = Cron(tmp_path, webhook)
        iid, draft = cron.incident.id, cron.incident.draft_path
        first = cron.run("2026-05-14T00:00:00Z", "--quiet")
        line = first.stdout.splitlines()
        assert first.exit_code == 0, first.output
        assert line[0] == f"follow-ups: {iid}: {draft}"
        assert [x.split(" (")[0] for x in line[1:]] == [
            f"follow-ups:   line {_line(cron, 1)} created FU-1",
            f"follow-ups:   line {_line(cron, 2)} created FU-2",
            "follow-ups:   ticket keys written into the draft",
        ]
        assert cron.run("2026-06-01T12:00:00Z", "--quiet").stdout == ""  # more than 4h before the end of the day

        warned = cron.run("2026-06-01T21:00:00Z", "--quiet")
        assert (warned.exit_code, warned.stdout) == (0, f"{iid} follow-up FU-1: sent due-soon comment to FU-1\n")
        assert cron.run("2026-06-01T23:30:00Z", "--quiet").stdout == ""  # once
        [comment] = cron.ticket("FU-1")["comments"]
        assert "Follow-up due by the end of 2026-06-01 (UTC), in 3h00m." in comment["body"]

        late = cron.run("2026-06-02T00:00:00Z", "--quiet")
        assert late.exit_code == 1
        assert late.stdout.splitlines() == [
            f"{iid} follow-up FU-1: sent overdue comment to FU-1",
            f"{iid} follow-up FU-1: sent overdue label followup-overdue to FU-1",
            f"{iid} follow-up FU-1: sent overdue webhook to 127.0.0.1",
        ]
        assert "followup-overdue" in cron.ticket("FU-1")["labels"]
        assert (
            len(webhook.posts) == 1 and "Follow-up overdue: 'Add a migration dry run to CI'" in webhook.posts[0]["text"]
        )

        again = cron.run("2026-06-02T06:00:00Z")
        assert again.exit_code == 1  # still overdue: as loud as an overdue postmortem, but nothing sent twice
        assert "sent" not in again.stdout and len(webhook.posts) == 1
        assert any(line.startswith("FU-1 ") and " overdue " in line for line in again.stdout.splitlines())

        ticket = cron.ticket("FU-1")
        ticket["status"] = "done"
        (cron.state / "tickets" / "followups" / "FU-1.json").write_text(json.dumps(ticket))
        closed = cron.run("2026-06-02T07:00:00Z", "--quiet")
        assert (closed.exit_code, closed.stdout) == (0, "")
        assert cron.followups() == [("FU-1", "closed"), ("FU-2", "open")]
    finally:
        webhook.close()


def _line(cron: Cron, n: int) -> int:
    text = Path(cron.incident.draft_path or "").read_text().splitlines()
    return next(i for i, line in enumerate(text, 1) if ROWS[n - 1].action in line)


def test_one_unreadable_follow_up_never_stops_the_others(tmp_path, clean_env):
    webhook = WebhookEndpoint()
    try:
        cron = Cron(tmp_path, webhook)
        assert cron.run("2026-05-14T00:00:00Z", "--quiet").exit_code == 0
        (cron.state / "tickets" / "followups" / "FU-1.json").unlink()  # its tracker cannot say its state
        result = cron.run("2026-06-10T22:00:00Z", "--quiet")
        assert result.exit_code == 1  # FU-1 is overdue by its last known state; that wins over degraded
        assert result.stdout == f"{cron.incident.id} follow-up FU-2: sent due-soon comment to FU-2\n"
        assert f"could not check follow-up FU-1 of {cron.incident.id}" in result.stderr
        assert webhook.posts == []  # FU-1 is past its date, but no escalation on a guess
    finally:
        webhook.close()


def test_the_json_output_lists_the_follow_ups(tmp_path, clean_env):
    webhook = WebhookEndpoint()
    try:
        cron = Cron(tmp_path, webhook)
        data = json.loads(cron.run("2026-06-01T21:00:00Z", "--json", "--dry-run").stdout)
        assert [r["result"] for r in data["followups"]["synced"][0]["rows"]] == ["would-create", "would-create"]
        assert data["followups"]["followups"] == []  # a dry run recorded nothing
        assert cron.followups() == [] and "FU-" not in Path(cron.incident.draft_path).read_text()

        data = json.loads(cron.run("2026-06-01T21:00:00Z", "--json").stdout)
        checks = data["followups"]["followups"]
        assert [(c["ticket"], c["state"], c["due"], [n["result"] for n in c["notifications"]]) for c in checks] == [
            ("FU-1", "due-soon", "2026-06-01T23:59:59Z", ["sent"]),
            ("FU-2", "ok", "2026-06-10T23:59:59Z", []),
        ]
        assert data["exit_code"] == 0
    finally:
        webhook.close()


def test_jira_follow_up_overdue_comment_and_label(tmp_path, clean_env):
    with FakeJira(api_version=3) as fake:
        side = JiraSide(fake)
        config = tmp_path / "config.toml"
        config.write_text("deadline_hours = 0\n")
        settings = load_settings({"state_dir": str(tmp_path / "state")}, env={}, config_path=config)
        with Ledger(tmp_path / "state") as ledger:
            incident = record(ledger, tmp_path / "state")
            open_ticket(ledger, side.tracker, incident)
            write(incident, fill(Path(incident.draft_path).read_text(), ROWS[:1]))
            created = check_deadlines(
                ledger, side.tracker, now=datetime(2026, 5, 20, tzinfo=timezone.utc), settings=settings
            )
            [key] = [r.key for s in created.followups.syncs for r in s.rows]
            late = check_deadlines(
                ledger, side.tracker, now=datetime(2026, 6, 2, 1, tzinfo=timezone.utc), settings=settings
            )
            assert late.exit_code == 1
            assert [n.describe() for c in late.followups.checks for n in c.notices] == [
                f"overdue comment to {key}",
                f"overdue label followup-overdue to {key}",
            ]
            assert "followup-overdue" in side.labels(key)
            assert "Follow-up overdue: its target date 2026-06-01 ended 1h00m ago." in side.comments(key)[0]
            again = check_deadlines(
                ledger, side.tracker, now=datetime(2026, 6, 3, tzinfo=timezone.utc), settings=settings
            )
            assert [n for c in again.followups.checks for n in c.notices] == [] and len(side.comments(key)) == 1
        assert fake.failures == []


def test_without_tickets_an_overdue_follow_up_goes_to_the_webhook_once(tmp_path, clean_env):
    webhook = WebhookEndpoint()
    try:
        cron = Cron(tmp_path, webhook)
        cron.config.write_text(cron.config.read_text() + 'tracker = "none"\n')
        assert cron.run("2026-05-14T00:00:00Z", "--quiet").exit_code == 0
        assert cron.followups() == [(None, "open"), (None, "open")]  # recorded, no ticket anywhere
        late = cron.run("2026-06-02T00:00:00Z", "--quiet")
        assert late.exit_code == 1
        assert late.stdout.splitlines() == [
            f"{cron.incident.id} follow-up 1.1-4072870f: sent overdue webhook to 127.0.0.1"
        ]
        assert cron.run("2026-06-03T00:00:00Z", "--quiet").stdout == ""
        assert len(webhook.posts) == 1 and "Ticket: none." in webhook.posts[0]["text"]
    finally:
        webhook.close()
