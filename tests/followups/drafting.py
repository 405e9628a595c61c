"""Drafts as the hook writes them, with action rows filled in as a human would."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from rollback_pm.ledger import Ledger
from rollback_pm.lint import ACTION_COLUMNS, OWNER_COLUMNS, action_rows
from rollback_pm.models import Incident, SmokeStep
from rollback_pm.placement import DraftPolicy, write_incident_draft

T0 = datetime(2026, 5, 13, 8, 47, 21, tzinfo=timezone.utc)
DEPLOY = "0123456789abcdef0123456789abcdef01234567"
ROLLBACK = "fedcba9876543210fedcba9876543210fedcba98"


@dataclass
class Item:
    owner: str
    action: str
    due: str
    ticket: str = ""
    status: str = "Open"


def record(
    ledger: Ledger,
    state: Path,
    *,
    template: str = "azaion",
    service: str = "api",
    environment: str = "production",
    pipeline: str = "42",
    mitigated: datetime = T0,
    step: str = "api health",
) -> Incident:
    """A rollback recorded and drafted as the hook does it."""
    incident, _ = ledger.upsert_incident(
        Incident(
            id="",
            service=service,
            environment=environment,
            deploy_sha=DEPLOY,
            rollback_sha=ROLLBACK,
            pipeline_number=pipeline,
            mitigated_at=mitigated,
            smoke_steps=[SmokeStep(name=step, status="failed", step=3, ts=mitigated)],
        )
    )
    write_incident_draft(
        ledger, DraftPolicy(state / "drafts", True, template), incident, now=mitigated, deadline_hours=24
    )
    return ledger.get(incident.id)


def _cell(name: str, n: int, item: Item) -> str:
    if name in OWNER_COLUMNS:
        return item.owner
    if name in ACTION_COLUMNS:
        return item.action
    if name in ("target date", "due", "due date", "target", "by"):
        return item.due
    if name in ("ticket", "issue", "tracker", "beads issue", "tracking issue", "jira"):
        return item.ticket
    if name == "status":
        return item.status
    if name == "id":
        return f"A{n}"
    if name == "#":
        return str(n)
    if name == "category":
        return "Prevention"
    return ""


def _line(header: tuple[str, ...] | list[str], n: int, item: Item) -> str:
    return "| " + " | ".join(_cell(name, n, item) for name in header) + " |"


def fill(text: str, items: list[Item], table: int = 1) -> str:
    """The draft with its ``table``-th action table's rows replaced by ``items``."""
    lines = text.split("\n")
    rows = [r for r in action_rows(text) if r.table == table]
    assert rows, f"action table {table} has no row to replace"
    first = rows[0].line - 1
    body = [_line(rows[0].header, n, item) for n, item in enumerate(items, 1)]
    return "\n".join(lines[:first] + body + lines[first + len(rows) :])


def add_under(text: str, heading: str, items: list[Item]) -> str:
    """``items`` appended to the first table under the line ``heading`` (which may have no rows)."""
    lines = text.split("\n")
    start = lines.index(heading)
    header_at = next(i for i in range(start, len(lines)) if lines[i].startswith("|"))
    header = [c.strip().lower() for c in lines[header_at].strip().strip("|").split("|")]
    end = header_at + 2
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    body = [_line(header, n, item) for n, item in enumerate(items, end - header_at - 1)]
    return "\n".join(lines[:end] + body + lines[end:])


def write(incident: Incident, text: str) -> Path:
    path = Path(incident.draft_path or "")
    path.write_text(text, encoding="utf-8")
    return path
