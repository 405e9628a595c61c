"""Smoke-step text is published (ledger, draft, ticket, the hook's output): redact it where it comes in.

Step names, messages and log excerpts are written by the pipeline, and a failing step
often echoes what it ran (``curl -u admin:…``, ``Authorization: Bearer …``). Every reader
of smoke steps (reports, the Woodpecker API) returns them through ``redact_steps``, so
nothing downstream sees the raw text.
"""

from __future__ import annotations

from dataclasses import replace

from rollback_pm.log import known_secrets
from rollback_pm.models import SmokeStep
from rollback_pm.redact import redact_lines, redact_text


def redact_steps(steps: list[SmokeStep]) -> list[SmokeStep]:
    """The steps with their text redacted: every rule, and every secret registered so far."""
    known = known_secrets()
    return [
        replace(
            step,
            name=redact_text(step.name, known),
            message=redact_text(step.message, known),
            log_excerpt="\n".join(redact_lines(step.log_excerpt.splitlines(), known)),
        )
        for step in steps
    ]
