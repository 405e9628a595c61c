"""`rollback-pm draft ID`: re-render an incident's draft with the ledger's facts."""

from __future__ import annotations

import click

from rollback_pm.config import Settings
from rollback_pm.deadline import hours_for
from rollback_pm.errors import EXIT_OK
from rollback_pm.ledger import Ledger
from rollback_pm.placement import draft_policy, write_incident_draft
from rollback_pm.timeutil import utcnow


def draft(settings: Settings, incident_id: str, *, force: bool = False, template: str | None = None) -> int:
    """``template`` is the one given for this run; else the incident keeps the one it was drafted with."""
    with Ledger(settings.state_dir) as ledger:
        incident = ledger.get(incident_id)
        local = settings.for_environment(incident.environment)
        result = write_incident_draft(
            ledger,
            draft_policy(local),
            incident,
            now=utcnow(),
            deadline_hours=hours_for(settings, incident.environment),
            force=force,
            template=template,
        )
    click.echo(f"{result.path} ({result.reason})")
    if result.backup:
        click.echo(f"previous version kept as {result.backup}")
    return EXIT_OK
