"""`rollback-pm mark-good`: remember the last good SHA of a service and environment."""

from __future__ import annotations

import click

from rollback_pm.config import Settings
from rollback_pm.errors import EXIT_OK, UsageError
from rollback_pm.facts.shas import validate_sha
from rollback_pm.ledger import Ledger


def mark_good(settings: Settings, sha: str) -> int:
    if not settings.service:
        raise UsageError("mark-good needs --service (or ROLLBACK_PM_SERVICE)")
    good = validate_sha(sha, "--sha")
    with Ledger(settings.state_dir) as ledger:
        ledger.mark_good(settings.service, settings.environment, good)
    click.echo(f"last good {settings.service} {settings.environment}: {good}")
    return EXIT_OK
