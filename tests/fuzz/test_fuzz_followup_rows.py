"""Fuzz the follow-ups' reading of a draft: any text gives action rows (lint's reading),
never an error, and writing a key back touches only its own row."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from rollback_pm.followups.rows import draft_rows
from rollback_pm.followups.sync import with_keys
from rollback_pm.lint import action_rows, cell_spans
from rollback_pm.models import Followup
from tests.fuzz.tally import TALLY, is_error

CELL = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r"), max_size=40)
HEADER = "| Owner | Action | Target date | Ticket |\n|---|---|---|---|"


@given(st.lists(st.tuples(CELL, CELL, CELL, CELL), max_size=6), st.text(max_size=200))
def test_fuzz_action_rows_and_keys_written_back(cells, noise):
    body = "\n".join("| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in cells)
    text = f"<!-- rollback-pm incident=x template=azaion -->\n{noise}\n\n## Prevention\n\n{HEADER}\n{body}\n"
    rows = TALLY.run("follow-up rows", lambda: draft_rows(text), ())
    assert not is_error(rows)
    for row in action_rows(text):
        assert [row.raw[a:b].strip() for a, b in cell_spans(row.raw)] == list(row.cells)
    if rows:
        key = Followup(incident_id="x", row_key="1.1-a", action="x", key="FU-9")
        out, unplaced = with_keys(text, [(rows[0], key)])
        # lines as lint numbers them (str.splitlines: \x1e, \u2028, ... end a line too)
        changed = [i for i, (a, b) in enumerate(zip(text.splitlines(), out.splitlines(), strict=True)) if a != b]
        assert changed in ([], [rows[0].line - 1])
        if not unplaced:
            assert next(r for r in draft_rows(out) if r.line == rows[0].line).has_ticket
