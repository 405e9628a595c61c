"""The action rows of a draft as follow-ups read them (lint's own table reading), their
stable row keys, which recorded follow-up each row is, and the keys written back into cells."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

import pytest

from rollback_pm.atomic import write_atomic
from rollback_pm.followups.rows import draft_rows, match_rows, new_row_key, plain
from rollback_pm.followups.sync import with_keys, write_if_unchanged
from rollback_pm.lint import lint_text
from rollback_pm.models import Followup
from tests.followups.drafting import T0

AZAION = """<!-- rollback-pm incident=abc123abc123 template=azaion -->
# Production Incident Post-Mortem

## Prevention

| Owner | Action | Target date | Ticket |
|-------|--------|-------------|--------|
| @ana | Add a migration dry run to CI | 2026-06-01 | |
| [TODO: @owner] | [TODO: concrete action] | [TODO: YYYY-MM-DD] | [TODO: tracker key, e.g. ABC-123] |
| bo | Alert on \\| pipes | 2026-06-02 | OPS-7 |
| cy | Runbook for the cutover | backlog | |
|  |  |  |  |

## What went well
"""

SEED_000 = """## Prevention

| Owner | Action | Target date |
|-------|--------|-------------|
| @ana | Add a migration check | 2026-06-01 |
| @… | <concrete action — write a test> | YYYY-MM-DD |
"""


def followup(row_key: str, action: str, key: str | None = None, url: str | None = None) -> Followup:
    return Followup(incident_id="abc123abc123", row_key=row_key, action=action, key=key, url=url)


def test_rows_are_read_as_lint_reads_them():
    rows = draft_rows(AZAION)
    assert [(r.line, r.position, r.action, r.owner, r.target, r.has_ticket, r.problem) for r in rows] == [
        (8, "1.1", "Add a migration dry run to CI", "@ana", date(2026, 6, 1), False, None),
        (9, "1.2", "[TODO: concrete action]", "[TODO: @owner]", None, False, "no action yet"),
        (10, "1.3", "Alert on | pipes", "bo", date(2026, 6, 2), True, None),
        (11, "1.4", "Runbook for the cutover", "cy", None, False, "target date 'backlog' is not a date (YYYY-MM-DD)"),
    ]
    # the same rows lint flags for a missing tracker key
    flagged = {f.line for f in lint_text(AZAION, now=T0) if f.rule == "action-ticket"}
    assert flagged == {r.line for r in rows if not r.has_ticket and r.has_action}


def test_a_seed_table_without_a_ticket_column():
    rows = draft_rows(SEED_000)
    assert [(r.action, r.problem) for r in rows] == [
        ("Add a migration check", None),
        ("<concrete action — write a test>", "no action yet"),
    ]


def test_a_cell_reads_as_its_text():
    assert (
        plain(r"**Add** `a check` for \_ids<br>and [the alert](<https://x/y>)") == "Add a check for _ids and the alert"
    )


def test_row_keys_are_the_first_seen_place_and_text():
    row = draft_rows(AZAION)[0]
    digest = hashlib.sha256(b"add a migration dry run to ci").hexdigest()[:8]
    assert new_row_key(row, set()) == f"1.1-{digest}"
    assert new_row_key(row, {f"1.1-{digest}"}) == f"1.1-{digest}-2"


def test_a_row_is_found_by_its_key_then_its_text_then_its_place():
    text = AZAION.replace(
        "| @ana | Add a migration dry run to CI | 2026-06-01 | |", "| @ana | Dry-run migrations in CI | 2026-06-01 | |"
    )
    rows = draft_rows(text)
    by_key = followup("1.9-00000000", "something else entirely", key="OPS-7")
    by_place = followup("1.1-12345678", "Add a migration dry run to CI")  # its row was edited in place
    by_text = followup("2.5-00000000", "runbook FOR the   cutover")  # moved, same words
    found = match_rows(rows, [by_place, by_text, by_key])
    assert found == [by_place, None, by_key, by_text]


@pytest.mark.parametrize(
    ("short", "long"),
    [
        ("FU-1", "FU-12"),
        ("OPS-1", "OPS-10"),
        ("acme/shop#2", "acme/shop#23"),
        (
            "[acme/shop#2](<https://git.example.com/acme/shop/issues/2>)",
            "[acme/shop#21](<https://git.example.com/acme/shop/issues/21>)",
        ),
    ],
)
def test_a_ticket_key_is_matched_as_a_whole_word(short, long):
    """With ten follow-ups or more, FU-1's record must not take the row showing FU-12."""
    text = AZAION.replace(
        "| @ana | Add a migration dry run to CI | 2026-06-01 | |", f"| @ana | First | 2026-06-01 | {long} |"
    )
    text = text.replace("| bo | Alert on \\| pipes | 2026-06-02 | OPS-7 |", f"| bo | Second | 2026-06-02 | {short} |")
    rows = draft_rows(text)
    key = plain(short)
    one = followup(
        "1.9-00000000", "no text in common", key=key, url=f"https://git.example.com/acme/shop/issues/{key[-1]}"
    )
    assert [f is one for f in match_rows(rows, [one])] == [False, False, True, False]


def test_a_moved_row_keeps_its_follow_up_and_a_new_row_at_its_place_is_new():
    original = followup(new_row_key(draft_rows(AZAION)[0], set()), "Add a migration dry run to CI")
    moved = AZAION.replace(
        "| @ana | Add a migration dry run to CI | 2026-06-01 | |",
        "| dee | A brand new action | 2026-07-01 | |\n| @ana | Add a migration dry run to CI | 2026-06-01 | |",
    )
    rows = draft_rows(moved)
    found = match_rows(rows, [original])
    assert [r.action for r, f in zip(rows, found, strict=True) if f is original] == ["Add a migration dry run to CI"]
    assert found[0] is None


def test_keys_go_into_the_ticket_cell_and_nothing_else_changes():
    rows = draft_rows(AZAION)
    out, unplaced = with_keys(
        AZAION, [(rows[0], followup("1.1-a", "x", key="OPS-12", url="https://jira.example/browse/OPS-12"))]
    )
    assert unplaced == []
    before, after = AZAION.split("\n"), out.split("\n")
    assert [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b] == [7]
    assert (
        after[7]
        == "| @ana | Add a migration dry run to CI | 2026-06-01 | [OPS-12](<https://jira.example/browse/OPS-12>) |"
    )
    assert not [f for f in lint_text(out, now=T0) if f.line == 8 and f.rule == "action-ticket"]


def test_a_human_note_in_the_ticket_cell_stays_beside_the_key():
    text = AZAION.replace("| 2026-06-01 | |", "| 2026-06-01 | asked Bo |")
    out, _ = with_keys(text, [(draft_rows(text)[0], followup("1.1-a", "x", key="FU-3"))])
    assert "| 2026-06-01 | asked Bo FU-3 |" in out


def test_without_a_ticket_column_the_key_follows_the_action_and_is_read_back():
    rows = draft_rows(SEED_000)
    out, _ = with_keys(
        SEED_000, [(rows[0], followup("1.1-a", "x", key="acme/shop#5", url="https://git.example/acme/shop/issues/5"))]
    )
    assert (
        "| @ana | Add a migration check ([acme/shop#5](<https://git.example/acme/shop/issues/5>)) | 2026-06-01 |" in out
    )
    again = draft_rows(out)[0]
    assert (again.action, again.has_ticket) == ("Add a migration check", True)


def test_a_row_that_moved_since_it_was_read_gets_no_key(tmp_path):
    rows = draft_rows(AZAION)
    shifted = AZAION.replace("## Prevention\n", "## Prevention\n\nA new sentence.\n")
    out, unplaced = with_keys(shifted, [(rows[0], followup("1.1-a", "x", key="FU-1"))])
    assert out == shifted and [f.key for f in unplaced] == ["FU-1"]


def test_write_if_unchanged_checks_again_right_before_the_rename(tmp_path):
    path = tmp_path / "draft.md"
    path.write_text("original\n")
    assert write_if_unchanged(path, b"something else\n", "new\n") is False
    assert path.read_text() == "original\n"

    def human_saves_in_between() -> bool:
        path.write_text("the human's edit\n")
        return path.read_bytes() == b"original\n"

    assert write_atomic(path, b"ours\n", precondition=human_saves_in_between) is False
    assert path.read_text() == "the human's edit\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["draft.md"]  # no temp file left
    assert write_if_unchanged(path, b"the human's edit\n", "ours\n") is True
    assert path.read_text() == "ours\n"


def test_the_files_mode_is_kept(tmp_path):
    path = tmp_path / "draft.md"
    path.write_text("original\n")
    path.chmod(0o664)
    assert write_if_unchanged(path, b"original\n", "new\n")
    assert path.stat().st_mode & 0o777 == 0o664


@pytest.mark.parametrize("name", ["draft.md"])
def test_read_draft_never_follows_a_symlink(tmp_path, name):
    from rollback_pm.followups.sync import read_draft

    target = tmp_path / "real.md"
    target.write_text("x")
    (tmp_path / name).symlink_to(target)
    with pytest.raises(OSError):
        read_draft(Path(tmp_path / name))
