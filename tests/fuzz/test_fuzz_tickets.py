"""Fuzz the file tracker's ticket files (humans edit them): every file is a ticket or a
TicketFileError naming the file; a search skips broken files of other incidents."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from rollback_pm.errors import TrackerError
from rollback_pm.models import TicketRef
from rollback_pm.trackers.file import FileTracker
from tests.fuzz.corpus import TICKETS
from tests.fuzz.scratch import scratch_dir
from tests.fuzz.strategies import json_values
from tests.fuzz.tally import TALLY, is_error

IID = "0123456789ab"
KEY = f"PM-{IID}"
STATE = scratch_dir("tickets")
TRACKER = FileTracker(STATE)

odd = json_values
tickets = st.fixed_dictionaries(
    {},
    optional={
        "key": st.just(KEY) | odd,
        "status": st.sampled_from(["open", "resolved", "closed", "done"]) | odd,
        "labels": st.lists(st.text(max_size=10), max_size=3) | odd,
        "comments": st.lists(st.fixed_dictionaries({"body": st.text(max_size=10)}), max_size=2) | odd,
        "attachments": st.lists(st.text(max_size=10), max_size=2) | odd,
        "title": st.text(max_size=20) | odd,
        "body": st.text(max_size=20) | odd,
    },
)
good_tickets = st.fixed_dictionaries(
    {
        "key": st.just(KEY),
        "status": st.sampled_from(["open", "resolved", "closed", "done", "in progress"]),
        "labels": st.lists(st.text(max_size=10), max_size=3),
        "comments": st.lists(st.fixed_dictionaries({"body": st.text(max_size=10)}), max_size=2),
        "attachments": st.lists(st.text(max_size=10), max_size=2),
    },
    optional={"title": st.text(max_size=20) | odd, "due_date": odd, "extra": odd},
)
contents = st.one_of(
    good_tickets.map(json.dumps),
    tickets.map(json.dumps),
    tickets.map(json.dumps),
    json_values.map(json.dumps),
    st.binary(max_size=300).map(lambda b: b.decode("latin-1")),
)


def with_corpus(test):
    for case in TICKETS:
        test = example(case.content.decode())(test)
    return test


def use(content: str) -> Any:
    path = TRACKER.dir / f"{KEY}.json"
    ref = TicketRef(tracker="file", key=KEY, url="")
    status = TRACKER.status(ref)
    TRACKER.comment(ref, "a comment")
    TRACKER.add_label(ref, "postmortem-overdue")
    found = TRACKER.find(f"rollback-pm-{IID}")
    assert found is not None and found.key == KEY
    assert json.loads(path.read_text())["comments"][-1]["body"] == "a comment"
    return status


@given(contents)
@with_corpus
def test_fuzz_ticket_files(content: str) -> None:
    TRACKER.dir.mkdir(parents=True, exist_ok=True)
    path = TRACKER.dir / f"{KEY}.json"
    path.write_text(content, encoding="utf-8", errors="surrogateescape")
    outcome = TALLY.run("ticket file", lambda: use(content), TrackerError)
    if is_error(outcome):
        assert f"ticket file {path}" in str(outcome), str(outcome)


@given(contents)
def test_fuzz_other_broken_ticket_files_do_not_stop_a_search(content: str) -> None:
    TRACKER.dir.mkdir(parents=True, exist_ok=True)
    (TRACKER.dir / "PM-ffffffffffff.json").write_text(content, encoding="utf-8", errors="surrogateescape")
    (TRACKER.dir / f"{KEY}.json").unlink(missing_ok=True)
    outcome = TALLY.run("ticket search", lambda: TRACKER.find(f"rollback-pm-{IID}"), TrackerError)
    assert outcome is None  # a broken file of another incident is skipped, never fatal
