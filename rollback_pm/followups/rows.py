"""The action rows of a postmortem draft, and which recorded follow-up each one is.

A row is read the way ``rollback-pm lint`` reads it (``lint.action_rows``): the action
tables of the template's action sections (azaion Prevention, blameless and SEV action
items in every priority table, finance corrective actions), their Owner, Action,
Target date / Due and Ticket columns.

A row becomes a follow-up when it names an owner, an action and a real target date
(``YYYY-MM-DD``), none of them a placeholder. Its **row key** is
``<table>.<row>-<hash>``: where the row was first seen (the 1-based action table of the
document and the row in it) and the first 8 hex digits of the sha256 of its action text
as first seen. The key never changes, so a row is recognised after an edit:

1. by the ticket key in it (the row carries its follow-up's key once it was written in);
2. else by its action text: the first-seen text (the key's hash) or the last-seen text
   (the ledger's ``action``);
3. else by its place: an unmatched follow-up first seen at the same table and row is
   this row with its text changed (a new row typed over a deleted one at the same place
   is taken for an edit of it; a row moved and edited at once is taken for a new one).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date

from rollback_pm.lint import TRACKER_KEY, ActionRow, action_rows, date_in, has_placeholder
from rollback_pm.models import Followup

_BR = re.compile(r"(?i)<br\s*/?>")
_LINK = re.compile(r"!?\[((?:\\.|[^\]\\])*)\]\((?:<[^>]*>|[^)]*)\)")
_ESCAPE = re.compile(r"\\(.)")
_EMPHASIS = re.compile(r"(\*\*|__|`+)")
# A key rollback-pm appended to the action cell of a table without a Ticket column.
_APPENDED_KEY = re.compile(r"\s*\((\[[^\]\n]*\]\(<[^>\n]*>\)|[^()]*)\)\s*$")
_ROW_KEY = re.compile(r"^(\d+\.\d+)-([0-9a-f]{8})(?:-\d+)?$")


def plain(cell: str | None) -> str:
    """A Markdown table cell as the text a reader sees: links by their label, escapes,
    emphasis and code marks dropped, ``<br>`` and whitespace runs one space."""
    text = _BR.sub(" ", cell or "")
    text = _LINK.sub(lambda m: m.group(1), text)
    text = _EMPHASIS.sub("", text)
    text = _ESCAPE.sub(lambda m: m.group(1), text)
    return " ".join(text.split())


def norm(text: str | None) -> str:
    """What two action texts are compared by: case and whitespace aside."""
    return " ".join((text or "").casefold().split())


def text_hash(action: str) -> str:
    return hashlib.sha256(norm(action).encode("utf-8")).hexdigest()[:8]


@dataclass
class Row:
    """One action row as follow-ups see it."""

    source: ActionRow
    action: str  # plain text (a key rollback-pm appended without a Ticket column left out)
    owner: str | None
    target: date | None
    has_ticket: bool  # a tracker key is where lint wants one (ours or a human's)
    problem: str | None  # why it is not a follow-up (None: it is one)

    @property
    def position(self) -> str:
        return f"{self.source.table}.{self.source.row}"

    @property
    def line(self) -> int:
        return self.source.line

    @property
    def has_action(self) -> bool:
        """A real action is written (not empty, not a placeholder): the row is about something."""
        return bool(self.action) and not has_placeholder(self.source.cell("action") or "")

    def shows(self, followup: Followup) -> bool:
        """Does the row carry this follow-up's ticket (its key or URL), as a whole word:
        FU-1 is not in a row showing FU-12, nor acme/shop#2 in one showing acme/shop#23."""
        if not followup.key:
            return False
        return any(_whole(value, self.source.raw) for value in (followup.key, followup.url) if value)


def _whole(value: str, text: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(value)}(?![\w])", text) is not None


def draft_rows(text: str) -> list[Row]:
    """Every non-empty action row of a draft, in document order."""
    rows = []
    for source in action_rows(text):
        if source.empty:
            continue
        action_cell = source.cell("action")
        if source.column("ticket") is None and action_cell:
            appended = _APPENDED_KEY.search(action_cell)
            if appended and TRACKER_KEY.search(appended.group(1)):
                action_cell = action_cell[: appended.start()]
        action, owner, due = plain(action_cell), plain(source.cell("owner")), source.cell("due")
        target = None if due is None or has_placeholder(due) else date_in(due)
        problem = None
        if source.column("action") is None:
            problem = "its table has no Action column"
        elif not action or has_placeholder(action_cell or ""):
            problem = "no action yet"
        elif source.column("owner") is None:
            problem = "its table has no Owner column"
        elif not owner or has_placeholder(source.cell("owner") or ""):
            problem = "no owner yet"
        elif source.column("due") is None:
            problem = "its table has no target date column"
        elif target is None:
            problem = f"target date {plain(due)!r} is not a date (YYYY-MM-DD)" if plain(due) else "no target date yet"
        rows.append(
            Row(
                source=source,
                action=action,
                owner=owner or None,
                target=target,
                has_ticket=source.has_ticket(),
                problem=problem,
            )
        )
    return rows


def position_of(row_key: str) -> str | None:
    match = _ROW_KEY.match(row_key)
    return match.group(1) if match else None


def first_hash_of(row_key: str) -> str | None:
    match = _ROW_KEY.match(row_key)
    return match.group(2) if match else None


def new_row_key(row: Row, taken: set[str]) -> str:
    """``<table>.<row>-<hash>`` for a row seen for the first time (``-2``, ``-3`` if taken)."""
    key = f"{row.position}-{text_hash(row.action)}"
    n = 1
    candidate = key
    while candidate in taken:
        n += 1
        candidate = f"{key}-{n}"
    return candidate


def match_rows(rows: list[Row], known: list[Followup]) -> list[Followup | None]:
    """The recorded follow-up of each row (None: a row not seen before), by the rules above."""
    found: list[Followup | None] = [None] * len(rows)
    free = list(known)

    def take(index: int, followup: Followup) -> None:
        found[index] = followup
        free.remove(followup)

    for index, row in enumerate(rows):
        hit = next((f for f in free if row.shows(f)), None)
        if hit is not None:
            take(index, hit)
    for index, row in enumerate(rows):
        if found[index] is None and row.has_action:
            digest = text_hash(row.action)
            hit = next(
                (f for f in free if first_hash_of(f.row_key) == digest or norm(f.action) == norm(row.action)), None
            )
            if hit is not None:
                take(index, hit)
    for index, row in enumerate(rows):
        if found[index] is None and row.has_action:
            hit = next((f for f in free if position_of(f.row_key) == row.position), None)
            if hit is not None:
                take(index, hit)
    return found
