"""`rollback-pm lint FILE...`: is the postmortem complete."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from rollback_pm.commands import emit
from rollback_pm.errors import EXIT_FAILED, EXIT_OK
from rollback_pm.lint import Finding, lint_file
from rollback_pm.timeutil import utcnow


def lint(
    files: Sequence[str], *, as_json: bool = False, now: datetime | None = None, deadline: datetime | None = None
) -> int:
    """Exit 0 when every file is complete, 1 when there are findings."""
    when = now or utcnow()
    findings = [f for path in files for f in lint_file(Path(path), now=when, deadline=deadline)]
    emit(as_json, lambda: [f.__dict__ for f in findings], lambda: finding_lines(findings, len(files)))
    return EXIT_FAILED if findings else EXIT_OK


def finding_lines(findings: list[Finding], files: int) -> list[str]:
    if not findings:
        return [f"{files} file(s) complete"]
    return [f"{f.path}:{f.line}: {f.rule}: {f.message}" for f in findings]
