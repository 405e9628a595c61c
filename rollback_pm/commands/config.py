"""`rollback-pm config show|options`: the effective settings and the option reference."""

from __future__ import annotations

import json

import click

from rollback_pm.config import Settings, options_markdown
from rollback_pm.errors import EXIT_OK


def config_show(settings: Settings, *, as_json: bool = False) -> int:
    """Every setting, its effective value and where it came from (secrets masked)."""
    rows = settings.rows()
    if as_json:
        click.echo(json.dumps([{"name": n, "value": v, "source": s} for n, v, s in rows], indent=2))
        return EXIT_OK
    width = max(len(n) for n, _, _ in rows)
    for name, value, source in rows:
        click.echo(f"{name:<{width}}  {value}  [{source}]")
    return EXIT_OK


def config_options() -> int:
    click.echo(options_markdown(), nl=False)
    return EXIT_OK
