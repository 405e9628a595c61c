"""The file tracker reads ticket files humans edit: a file that is not a ticket is a
TicketFileError naming the file, the field and the fix, and it stops only its own incident."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import date
from pathlib import Path

import pytest

from rollback_pm.errors import EXIT_FAILED, TicketFileError, TrackerError
from rollback_pm.models import TicketRef
from rollback_pm.trackers.base import ExistingTicket, TicketSpec
from rollback_pm.trackers.file import FileTracker
from rollback_pm.trackers.markup import plain_doc
from tests.test_deadlines import World, hm

IID = "0123456789ab"


def spec(iid: str = IID) -> TicketSpec:
    return TicketSpec(
        incident_id=iid,
        unique_label=f"rollback-pm-{iid}",
        title="Postmortem: api production rollback 0123456 -> fedcba9",
        body=plain_doc("body"),
        labels=["postmortem"],
        due_date=date(2026, 5, 14),
    )


@pytest.fixture
def tracker(tmp_path: Path) -> FileTracker:
    return FileTracker(tmp_path / "state")


def plant(tracker: FileTracker, content: str, iid: str = IID) -> Path:
    tracker.dir.mkdir(parents=True, exist_ok=True)
    path = tracker.dir / f"PM-{iid}.json"
    path.write_text(content)
    return path


FIX = f"`rollback-pm ticket open {IID}` to write it again"


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ('{"key": 5}', 'is not a ticket: "key" is 5, not "PM-0123456789ab" (the file\'s name)'),
        ("[1, 2]", "is not a ticket: it holds a list, not a JSON object"),
        ("garbage", "is not valid JSON: Expecting value at line 1 column 1"),
        ('{"key": "PM-0123456789ab"', "is not valid JSON: Expecting ',' delimiter at line 1 column 26"),
        (
            '{"key": "PM-0123456789ab", "status": "open", "labels": "postmortem", "comments": [], "attachments": []}',
            'is not a ticket: "labels" must be a list of strings, not a string',
        ),
        (
            '{"key": "PM-0123456789ab", "status": 1, "labels": [], "comments": [], "attachments": []}',
            'is not a ticket: "status" is a number, not a string such as "open" or "resolved"',
        ),
        (
            '{"key": "PM-0123456789ab", "status": "open", "labels": [], "comments": ["hi"], "attachments": []}',
            'is not a ticket: "comments" must be a list of objects, not a list',
        ),
        ("[" * 100_000 + "]" * 100_000, "is not valid JSON"),
    ],
    ids=["key-5", "a-list", "garbage", "truncated", "labels-text", "status-number", "comment-text", "deep"],
)
def test_a_file_that_is_not_a_ticket_names_the_file_and_the_fix(tracker, content, problem):
    path = plant(tracker, content)
    ref = TicketRef(tracker="file", key=f"PM-{IID}", url="")
    for action in (
        lambda: tracker.status(ref),
        lambda: tracker.comment(ref, "hello"),
        lambda: tracker.add_label(ref, "overdue"),
        lambda: tracker.find(f"rollback-pm-{IID}"),
    ):
        with pytest.raises(TicketFileError) as caught:
            action()
        assert str(caught.value).startswith(f"ticket file {path} {problem}")
        assert str(caught.value).endswith(FIX)
        assert isinstance(caught.value, TrackerError) and caught.value.exit_code == EXIT_FAILED
    assert path.read_text() == content  # never rewritten


def test_create_never_replaces_an_existing_ticket(tracker):
    first = tracker.create(spec())
    path = tracker.dir / f"PM-{IID}.json"
    edited = {**json.loads(path.read_text()), "body": "a human wrote this"}
    path.write_text(json.dumps(edited))
    again = tracker.create(spec())
    assert isinstance(again, ExistingTicket) and asdict(again) == asdict(first)  # found, not made
    assert json.loads(path.read_text())["body"] == "a human wrote this"


def test_create_over_a_broken_file_is_refused_and_keeps_it(tracker):
    path = plant(tracker, '{"key": 5}')
    with pytest.raises(TicketFileError, match="is not a ticket"):
        tracker.create(spec())
    assert path.read_text() == '{"key": 5}'


def test_find_skips_other_broken_files(tracker):
    tracker.create(spec("aaaaaaaaaaaa"))
    plant(tracker, "garbage", iid="bbbbbbbbbbbb")
    assert tracker.find("rollback-pm-aaaaaaaaaaaa").key == "PM-aaaaaaaaaaaa"
    assert tracker.find("rollback-pm-cccccccccccc") is None


def test_a_symlinked_ticket_file_is_refused_and_its_target_untouched(tracker, tmp_path):
    target = tmp_path / "elsewhere.json"
    target.write_text("precious")
    tracker.dir.mkdir(parents=True)
    (tracker.dir / f"PM-{IID}.json").symlink_to(target)
    ref = TicketRef(tracker="file", key=f"PM-{IID}", url="")
    with pytest.raises(TicketFileError, match="is a symlink; refusing to follow it"):
        tracker.comment(ref, "hello")
    with pytest.raises(TicketFileError, match="is a symlink"):
        tracker.create(spec())
    assert target.read_text() == "precious"


def test_one_broken_ticket_file_does_not_stop_check_deadlines_for_the_others(tmp_path):
    world = World(tmp_path)
    broken = world.incident(pipeline="41")
    fine = world.incident(pipeline="42")
    path = world.state / "tickets" / f"PM-{broken.id}.json"
    path.write_text('{"key": 5}')
    result = world.run("--quiet", at=hm(22))
    assert result.exit_code == 3
    assert result.stdout == f"{fine.id}: sent due-soon comment to PM-{fine.id}\n"
    assert result.stderr == (
        f"rollback-pm: degraded: could not check {broken.id} (api production): ticket PM-{broken.id} status not "
        f'readable: ticket file {path} is not a ticket: "key" is 5, not "PM-{broken.id}" (the file\'s name); fix it '
        "(it is JSON; see another ticket file for the shape), or move it away and run "
        f"`rollback-pm ticket open {broken.id}` to write it again; its state uses the last known ticket status, "
        "notifications wait for the next run\n"
    )
    assert "internal error" not in result.output
