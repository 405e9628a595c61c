"""One module per CLI command, one function per command, each returning its exit code.

``cli.py`` only wires click's options to these functions. A command takes typed
``Settings`` (and its own arguments), calls the library, prints, and returns 0 done,
1 failed, or 3 done but degraded. The library raises typed errors
(``rollback_pm.errors``); ``cli.py`` turns those into a message and their exit code.
How a command's output looks lives in the command's module.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click


def emit(as_json: bool, data: Callable[[], Any], lines: Callable[[], list[str]]) -> None:
    """Print a result: as indented JSON for machines, else as lines for people."""
    if as_json:
        click.echo(json.dumps(data(), indent=2))
    else:
        for line in lines():
            click.echo(line)
