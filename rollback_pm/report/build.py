"""One report run: read the ledger for a scope, compute, render the asked formats, write them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import orjson

from rollback_pm.atomic import write_atomic
from rollback_pm.config import Since
from rollback_pm.errors import UsageError
from rollback_pm.ledger import DB_NAME, Ledger
from rollback_pm.report.data import Scope, load
from rollback_pm.report.export import as_csv, as_json
from rollback_pm.report.metrics import Report, compute

STDOUT = "-"
REPORT_MODE = 0o644  # a report holds no secret and is meant to be shared


@dataclass
class Rendered:
    report: Report
    outputs: dict[str, tuple[str, str]] = field(default_factory=dict)  # format -> (target, text)


def scope_for(since: Since, *, until: datetime, service: str | None, environment: str | None) -> Scope:
    """The scope from the command's options: --since (a duration back from the period's end, or a time)."""
    start = since.start(until)
    if start > until:
        raise UsageError(f"--since {since} is after the end of the period ({until:%Y-%m-%dT%H:%M:%SZ})")
    return Scope(since=start, until=until, service=service or None, environment=environment or None)


def check_targets(html: str | None, json_to: str | None, csv_to: str | None) -> None:
    if not (html or json_to or csv_to):
        raise UsageError("say what to write: --html FILE, --json [FILE] or --csv [FILE] (no FILE: stdout)")
    if html == STDOUT:
        raise UsageError("--html needs a FILE (the page is meant to be opened in a browser)")
    if json_to == STDOUT and csv_to == STDOUT:
        raise UsageError("--json and --csv cannot both go to stdout; give one of them a FILE")
    if html:
        from rollback_pm.report.plots import require_matplotlib

        require_matplotlib()  # before reading anything: the usage error names the extra


def open_ledger(state_dir: Path | str) -> Ledger:
    """The ledger to report on. A report only reads: a state dir without a ledger is a wrong
    --state-dir (an empty report would hide it), not a place to create one."""
    path = Path(state_dir) / DB_NAME
    if not path.exists():
        raise UsageError(
            f"no ledger at {path}; set --state-dir or ROLLBACK_PM_STATE_DIR to the state dir "
            "the hook and check-deadlines use"
        )
    return Ledger(Path(state_dir))


def build(ledger: Ledger, scope: Scope, deadline_hours: Callable[[str], float]) -> Report:
    return compute(load(ledger, scope, deadline_hours))


def render(
    report: Report, *, html: str | None, json_to: str | None, csv_to: str | None, generated_at: datetime
) -> Rendered:
    rendered = Rendered(report)
    if json_to:
        # orjson: with an indent, the stdlib encoder is pure Python (8 s for 10,000 incidents)
        text = orjson.dumps(as_json(report, generated_at=generated_at), option=orjson.OPT_INDENT_2).decode() + "\n"
        rendered.outputs["json"] = (json_to, text)
    if csv_to:
        rendered.outputs["csv"] = (csv_to, as_csv(report))
    if html:
        from rollback_pm.report import html as page

        rendered.outputs["html"] = (html, page.render(report, generated_at=generated_at))
    return rendered


def write_file(target: str, text: str) -> Path:
    """Write one output atomically; a path that cannot be written is bad input (exit 2)."""
    path = Path(target)
    try:
        write_atomic(path, text, mode=REPORT_MODE)
    except IsADirectoryError:
        raise UsageError(f"cannot write {target}: it is a directory; give a file name") from None
    except OSError as exc:
        raise UsageError(
            f"cannot write {target} ({exc.strerror or exc}); give a path in an existing, writable directory"
        ) from None
    return path
