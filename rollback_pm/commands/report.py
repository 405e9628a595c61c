"""`rollback-pm report`: insights over the ledger, written as HTML, JSON or CSV."""

from __future__ import annotations

from datetime import datetime
from functools import partial

import click

from rollback_pm.config import Settings, Since
from rollback_pm.deadline import hours_for
from rollback_pm.errors import EXIT_DEGRADED, EXIT_OK
from rollback_pm.report import build
from rollback_pm.timeutil import iso, utcnow


def report(
    settings: Settings,
    *,
    since: Since,
    until: datetime | None = None,
    service: str | None = None,
    environment: str | None = None,
    html_to: str | None = None,
    json_to: str | None = None,
    csv_to: str | None = None,
) -> int:
    """0 done; 3 when some ledger records could not be read (each is listed)."""
    build.check_targets(html_to, json_to, csv_to)
    clock = utcnow()
    scope = build.scope_for(since, until=until or clock, service=service, environment=environment)
    with build.open_ledger(settings.state_dir) as ledger:
        result = build.build(ledger, scope, partial(hours_for, settings))
    rendered = build.render(result, html=html_to, json_to=json_to, csv_to=csv_to, generated_at=clock)
    to_stdout = any(target == build.STDOUT for target, _ in rendered.outputs.values())
    written = []
    for target, text in rendered.outputs.values():
        if target == build.STDOUT:
            click.echo(text, nl=False)
        else:
            written.append(str(build.write_file(target, text)))
    count = result.rollbacks.count
    what = f"{count} rollback(s)" if count else "no rollbacks in this period"
    for path in written:
        click.echo(f"wrote {path}: {what}, {iso(scope.since)} to {iso(scope.until)}", err=to_stdout)
    for skipped in result.data.skipped:
        click.echo(f"rollback-pm: degraded: {skipped.record} {skipped.ident} left out: {skipped.reason}", err=True)
    return EXIT_DEGRADED if result.data.skipped else EXIT_OK
