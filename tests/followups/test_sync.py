"""`followups sync` against every tracker: action rows become linked, labelled, dated,
assigned tickets; a rerun creates nothing; an edited row updates its ticket; a human's edit
of the draft is never lost; the tickets' state reads back."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from rollback_pm.errors import TrackerUnavailable
from rollback_pm.followups.reminders import check_followup
from rollback_pm.followups.sync import Syncer, followup_label
from rollback_pm.ledger import Ledger
from rollback_pm.lint import lint_text
from rollback_pm.tickets import open_ticket
from tests.followups.conftest import Side
from tests.followups.drafting import T0, Item, fill, record, write

ROWS = [
    Item("@ana", "Add a migration dry run to CI", "2026-06-01"),
    Item("Zed Unknown", "Alert on 5xx above 1 %", "2026-06-15"),
    Item("[TODO: name]", "Nobody owns this yet", "2026-06-20"),
]


def recorded(ledger: Ledger, side: Side, tmp_path: Path, items: list[Item] = ROWS, template: str = "azaion"):
    incident = record(ledger, tmp_path / "state", template=template)
    parent = open_ticket(ledger, side.tracker, incident).ticket
    assert parent is not None
    write(incident, fill(Path(incident.draft_path).read_text(), items))
    return ledger.get(incident.id), parent


def test_rows_become_tickets_linked_to_the_incidents_and_a_rerun_creates_nothing(tmp_path, side):
    with Ledger(tmp_path / "state") as ledger:
        incident, parent = recorded(ledger, side, tmp_path)
        result = Syncer(ledger, side.tracker).sync(incident)
        assert [(r.line, r.result) for r in result.rows] == [
            (result.rows[0].line, "created"),
            (result.rows[0].line + 1, "created"),
            (result.rows[0].line + 2, "skipped"),
        ]
        if side.zed is None:  # unassigned, and said so
            assert result.rows[1].detail.startswith(f"owner 'Zed Unknown' is no {side.tracker.name} user")
        assert result.rows[2].detail == "no owner yet"
        assert result.problems == [] and result.written is True
        first, second = (r.key for r in result.rows[:2])
        assert first and second and first != second

        for key, item, row_key in ((first, ROWS[0], result.rows[0].row_key), (second, ROWS[1], result.rows[1].row_key)):
            assert {incident.unique_label, "followup", followup_label(incident.id, row_key or "")} <= set(
                side.labels(key)
            )
            assert side.due(key) == item.due
            assert side.summary(key) == item.action
            assert side.linked(key, parent.key)
        assert side.assignee(first) == side.ana
        assert side.assignee(second) == side.zed

        # the incident's own ticket is still the one its label finds
        assert side.tracker.find(incident.unique_label).key == parent.key
        assert side.tracker.find(followup_label(incident.id, result.rows[0].row_key or "")).key == first

        # the keys are in the draft: lint no longer wants a ticket for these rows
        text = Path(incident.draft_path).read_text()
        missing = [f.line for f in lint_text(text, now=T0) if f.rule == "action-ticket"]
        assert missing == [result.rows[2].line]
        stored = ledger.list_followups(incident.id)
        assert [(f.key, f.action, f.owner, f.target_date, f.status) for f in stored] == [
            (first, ROWS[0].action, "@ana", "2026-06-01", "open"),
            (second, ROWS[1].action, "Zed Unknown", "2026-06-15", "open"),
        ]

        issues = side.issues()
        again = Syncer(ledger, side.tracker).sync(ledger.get(incident.id))
        assert [r.result for r in again.rows] == ["unchanged", "unchanged", "skipped"]
        assert again.written is False and side.issues() == issues
        assert Path(incident.draft_path).read_text() == text


def test_a_lost_ledger_write_is_found_by_the_label_not_created_twice(tmp_path, side):
    with Ledger(tmp_path / "state") as ledger:
        incident, _ = recorded(ledger, side, tmp_path, ROWS[:1])
        before = Path(incident.draft_path).read_text()
        first = Syncer(ledger, side.tracker).sync(incident)
        # as if the run died after creating the ticket: no record, no key in the draft
        ledger.db.execute("DELETE FROM followups")
        write(incident, before)
        issues = side.issues()
        again = Syncer(ledger, side.tracker).sync(ledger.get(incident.id))
        assert [(r.result, r.key) for r in again.rows] == [("found", first.rows[0].key)]
        assert side.issues() == issues
        assert again.written


def test_an_edited_row_updates_its_ticket(tmp_path, side):
    with Ledger(tmp_path / "state") as ledger:
        incident, _ = recorded(ledger, side, tmp_path, ROWS[:1])
        key = Syncer(ledger, side.tracker).sync(incident).rows[0].key
        text = Path(incident.draft_path).read_text()
        write(
            incident,
            text.replace("Add a migration dry run to CI", "Dry-run every migration in CI").replace(
                "2026-06-01", "2026-06-08"
            ),
        )
        issues = side.issues()
        result = Syncer(ledger, side.tracker).sync(ledger.get(incident.id))
        assert [(r.result, r.key) for r in result.rows] == [("updated", key)]
        assert side.issues() == issues
        assert (side.summary(key), side.due(key)) == ("Dry-run every migration in CI", "2026-06-08")
        stored = ledger.list_followups(incident.id)[0]
        assert (stored.action, stored.target_date) == ("Dry-run every migration in CI", "2026-06-08")


def test_a_human_edit_between_read_and_write_is_never_lost(tmp_path, side):
    with Ledger(tmp_path / "state") as ledger:
        incident, parent = recorded(ledger, side, tmp_path, ROWS[:1])
        path = Path(incident.draft_path)
        real_create = side.tracker.create_followup

        def human_saves_meanwhile(spec):
            ticket = real_create(spec)
            path.write_text(path.read_text().replace("## Root cause", "## Root cause\n\nThe migration locked a table."))
            return ticket

        side.tracker.create_followup = human_saves_meanwhile  # type: ignore[method-assign]
        result = Syncer(ledger, side.tracker).sync(incident)
        side.tracker.create_followup = real_create  # type: ignore[method-assign]
        key = result.rows[0].key
        assert result.written is False and result.commented == [key]
        edited = path.read_text()
        assert "The migration locked a table." in edited and key not in edited
        assert any(key in c for c in side.comments(parent.key))
        comments = len(side.comments(parent.key))

        # the next run finds the draft unchanged while it works: the key goes in, the edit stays
        again = Syncer(ledger, side.tracker).sync(ledger.get(incident.id))
        assert again.written is True and again.commented == []
        final = path.read_text()
        assert "The migration locked a table." in final and key in final
        assert final.replace(f" {key} |", "").replace(f"[{key}]", "") != final
        assert len(side.comments(parent.key)) == comments  # said once


def test_status_reads_back_from_the_tracker(tmp_path, side):
    with Ledger(tmp_path / "state") as ledger:
        incident, _ = recorded(ledger, side, tmp_path, ROWS[:1])
        Syncer(ledger, side.tracker).sync(incident)
        followup = ledger.list_followups(incident.id)[0]
        check = check_followup(
            ledger, side.tracker, followup, incident, now=T0, warn_before=4 * 3600, webhook=None, remind=False
        )
        assert (check.state, check.followup.status) == ("ok", "open")
        side.close(followup.key or "")
        check = check_followup(
            ledger, side.tracker, followup, incident, now=T0 + timedelta(days=60), warn_before=4 * 3600, webhook=None
        )
        assert (check.state, check.notices) == ("closed", [])
        stored = ledger.list_followups(incident.id)[0]
        assert stored.status == "closed" and stored.closed_at is not None


@pytest.mark.parametrize("template", ["blameless", "sev", "finance"])
def test_every_templates_action_table(tmp_path, template):
    from tests.followups.conftest import FileSide

    side = FileSide(tmp_path / "state")
    with Ledger(tmp_path / "state") as ledger:
        incident, parent = recorded(ledger, side, tmp_path, ROWS[:2], template=template)
        result = Syncer(ledger, side.tracker).sync(incident)
        assert [(r.result, r.key) for r in result.rows] == [("created", "FU-1"), ("created", "FU-2")]
        text = Path(incident.draft_path).read_text()
        assert not [f for f in lint_text(text, now=T0) if f.rule == "action-ticket"]


def test_one_failing_row_never_stops_the_others(tmp_path, side):
    with Ledger(tmp_path / "state") as ledger:
        incident, _ = recorded(ledger, side, tmp_path, ROWS[:2])
        real_create = side.tracker.create_followup
        calls = []

        def first_fails(spec):
            calls.append(spec.title)
            if len(calls) == 1:
                raise TrackerUnavailable("tracker is unavailable: answered 503 (test)")
            return real_create(spec)

        side.tracker.create_followup = first_fails  # type: ignore[method-assign]
        result = Syncer(ledger, side.tracker).sync(incident)
        side.tracker.create_followup = real_create  # type: ignore[method-assign]
        assert [r.result for r in result.rows] == ["failed", "created"]
        assert result.problems == [
            f"{incident.id} follow-up at {incident.draft_path}:{result.rows[0].line}: "
            "tracker is unavailable: answered 503 (test)"
        ]
        again = Syncer(ledger, side.tracker).sync(ledger.get(incident.id))
        assert [r.result for r in again.rows] == ["created", "unchanged"]


def test_follow_ups_wait_for_the_incidents_ticket(tmp_path):
    from rollback_pm.trackers.file import FileTracker

    tracker = FileTracker(tmp_path / "state")
    with Ledger(tmp_path / "state") as ledger:
        incident = record(ledger, tmp_path / "state")
        write(incident, fill(Path(incident.draft_path).read_text(), ROWS[:1]))
        result = Syncer(ledger, tracker).sync(ledger.get(incident.id))
        assert [r.result for r in result.rows] == ["waiting"]
        assert "the incident has no ticket yet" in result.problems[0]
        assert ledger.list_followups(incident.id) == []
        open_ticket(ledger, tracker, ledger.get(incident.id))
        assert [r.result for r in Syncer(ledger, tracker).sync(ledger.get(incident.id)).rows] == ["created"]


def test_the_none_tracker_records_rows_without_tickets(tmp_path):
    from rollback_pm.trackers.none import NoneTracker

    with Ledger(tmp_path / "state") as ledger:
        incident = record(ledger, tmp_path / "state")
        path = write(incident, fill(Path(incident.draft_path).read_text(), ROWS[:1]))
        before = path.read_text()
        result = Syncer(ledger, NoneTracker()).sync(ledger.get(incident.id))
        assert [(r.result, r.detail) for r in result.rows] == [("recorded", "tracker none keeps no tickets")]
        assert path.read_text() == before
        assert [(f.key, f.target_date) for f in ledger.list_followups(incident.id)] == [(None, "2026-06-01")]


def test_the_owner_setting_maps_owners_to_users(tmp_path):
    from tests.followups.conftest import ForgeSide
    from tests.support.fake_gitea import FakeGitea

    with FakeGitea() as fake, Ledger(tmp_path / "state") as ledger:
        side = ForgeSide(fake)
        incident, _ = recorded(ledger, side, tmp_path, [Item("Zed Unknown", "Alert on 5xx", "2026-06-15")])
        result = Syncer(ledger, side.tracker, owners={"zed unknown": "alice"}).sync(incident)
        assert side.assignee(result.rows[0].key or "") == "alice"
        assert fake.failures == []


def test_a_tracker_outage_costs_one_retry_budget_per_run(tmp_path):
    """Once the tracker is out of its retry budget, the run asks it nothing more: each later
    row and follow-up is reported at once, not after waiting out the budget again."""
    from rollback_pm.config import load_settings
    from rollback_pm.followups import run_followups
    from rollback_pm.trackers.gitea import GiteaTracker
    from tests.followups.conftest import ForgeSide
    from tests.followups.drafting import add_under
    from tests.support.fake_gitea import FakeGitea
    from tests.trackers.conftest import FastClock

    clock = FastClock()
    with FakeGitea() as fake, Ledger(tmp_path / "state") as ledger:
        side = ForgeSide(fake)
        side.tracker = GiteaTracker(
            fake.url, fake.repo, fake.token, retry_budget_s=10, sleep=clock.sleep, clock=clock.monotonic
        )
        incident, _ = recorded(ledger, side, tmp_path, ROWS[:2])
        assert [r.result for r in Syncer(ledger, side.tracker).sync(incident).rows] == ["created", "created"]
        path = Path(incident.draft_path or "")
        write(incident, add_under(path.read_text(), "## Prevention", [Item("@ana", "Page on errors", "2026-06-20")]))
        fake.server.inject("*", ".*", status=503, times=1000)
        before = len(fake.server.requests)
        settings = load_settings({"state_dir": str(tmp_path / "state")}, env={})

        run = run_followups(ledger, side.tracker, settings, now=T0, incident_id=incident.id, remind=False)

        assert len(fake.server.requests) - before == 5  # the first search's attempts, then nothing
        assert sum(clock.sleeps) <= 10
        assert [r.result for r in run.syncs[0].rows] == ["unchanged", "unchanged", "failed"]
        assert "503 Service Unavailable (5 attempts" in run.syncs[0].rows[2].detail
        skipped = "gitea not asked: it was unavailable earlier in this run"
        assert [c.unchecked for c in run.checks] == [
            f"ticket {c.followup.key} status not readable: {skipped}" for c in run.checks
        ]
        assert len(run.degraded) == 3 and fake.failures == []
