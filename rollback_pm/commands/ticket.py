"""`rollback-pm ticket open|flush|status`: the incident's ticket and the outbox."""

from __future__ import annotations

from functools import partial

import click

from rollback_pm.config import Settings
from rollback_pm.deadline import hours_for
from rollback_pm.errors import EXIT_DEGRADED, EXIT_OK
from rollback_pm.ledger import Ledger
from rollback_pm.tickets import FlushResult, flush, open_ticket, refresh_status
from rollback_pm.trackers import make_tracker


def ticket_open(settings: Settings, incident_id: str) -> int:
    """Open (or find) the incident's ticket; 3 when it had to be queued."""
    with Ledger(settings.state_dir) as ledger:
        incident = ledger.get(incident_id)
        outcome = open_ticket(
            ledger, make_tracker(settings), incident, deadline_hours=hours_for(settings, incident.environment)
        )
    click.echo(outcome.message)
    return EXIT_DEGRADED if outcome.queued else EXIT_OK


def ticket_flush(settings: Settings) -> int:
    """Send what the outbox holds; 3 when something is still queued."""
    with Ledger(settings.state_dir) as ledger:
        result = flush(ledger, make_tracker(settings), deadline_hours=partial(hours_for, settings))
    for line in flush_lines(result):
        click.echo(line)
    for unreadable in result.unreadable:
        click.echo(f"rollback-pm: degraded: {unreadable.problem}", err=True)
    return EXIT_DEGRADED if result.failed or result.unreadable else EXIT_OK


def flush_lines(result: FlushResult) -> list[str]:
    lines = [f"sent {line}" for line in result.sent] + [f"still queued {line}" for line in result.failed]
    return lines or ([] if result.unreadable else ["outbox empty"])


def ticket_status(settings: Settings, incident_id: str) -> int:
    """Read the ticket's state back from the tracker and cache it in the ledger."""
    with Ledger(settings.state_dir) as ledger:
        ref = refresh_status(ledger, make_tracker(settings), ledger.get(incident_id))
    click.echo(f"{ref.key} {ref.status} {ref.url}".rstrip())
    return EXIT_OK
