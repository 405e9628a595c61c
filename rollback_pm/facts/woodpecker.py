"""Woodpecker CI API reads: which smoke steps failed, and when the deploy step finished.

Uses the server API with a personal access token (``Authorization: Bearer …``):
``GET /api/repos/lookup/{owner}/{name}``, ``GET /api/repos/{id}/pipelines/{number}``
(workflows -> children steps, states, unix times) and
``GET /api/repos/{id}/logs/{number}/{step_id}`` (entries whose ``data`` is base64).
Every failure is a WoodpeckerError that names the setting to fix and never the token.
"""

from __future__ import annotations

import base64
import binascii
import re
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from rollback_pm.errors import ConfigError, WoodpeckerError
from rollback_pm.log import get_logger, mask
from rollback_pm.models import SmokeStep
from rollback_pm.timeutil import parse_ts
from rollback_pm.trackers.http import ErrorKinds, HttpClient, segment, strip_userinfo

log = get_logger(__name__)

STATUS = {
    "success": "passed",
    "failure": "failed",
    "killed": "failed",
    "error": "error",
    "skipped": "skipped",
    "canceled": "skipped",
    "declined": "skipped",
    "pending": "running",
    "running": "running",
    "created": "running",
    "blocked": "running",
}
_LOG_LINE_TYPES = (0, 1)  # stdout, stderr (2 exit code, 3 metadata, 4 progress)
TOKEN_HINT = "ROLLBACK_PM_WOODPECKER_TOKEN / --woodpecker-token"
URL_HINT = "ROLLBACK_PM_WOODPECKER_URL / --woodpecker-url (default CI_SYSTEM_URL)"


def _time(value: Any) -> datetime | None:
    return parse_ts(int(value)) if isinstance(value, (int, float)) and value > 0 else None


class WoodpeckerClient:
    def __init__(
        self,
        url: str,
        token: str,
        timeout: float = 10.0,
        *,
        retry_budget_s: float = 20.0,
        max_attempts: int = 3,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not url:
            raise ConfigError(f"reading Woodpecker needs its URL: set {URL_HINT}")
        if not token:
            raise ConfigError(f"reading Woodpecker needs an API token: set {TOKEN_HINT}")
        base = strip_userinfo(url).rstrip("/")
        if base.endswith("/api"):
            base = base[: -len("/api")]
        self.base_url = base
        self.http = HttpClient(
            base + "/api",
            service="woodpecker",
            authorization=f"Bearer {token}",
            secrets=(token,),
            timeout=timeout,
            retry_budget_s=retry_budget_s,
            max_attempts=max_attempts,
            auth_hint=TOKEN_HINT,
            not_found_hint=f"{URL_HINT} and the repository / pipeline number (CI_REPO, CI_PIPELINE_NUMBER)",
            errors=ErrorKinds(WoodpeckerError, WoodpeckerError, WoodpeckerError, WoodpeckerError),
            sleep=sleep,
            clock=clock,
        )

    def __repr__(self) -> str:
        return f"WoodpeckerClient({self.base_url})"

    def lookup_repo(self, full_name: str) -> dict[str, Any]:
        """The repository record (``id`` is what the other calls need)."""
        owner, _, name = full_name.strip("/").partition("/")
        if not owner or not name:
            raise WoodpeckerError(f"repository {full_name!r} is not owner/name: check CI_REPO")
        return (
            self.http.get_json(
                f"/repos/lookup/{segment(owner)}/{segment(name)}",
                not_found_hint=f"that {full_name} is activated in Woodpecker at {self.base_url} "
                f"and the token can read it ({URL_HINT})",
            )
            or {}
        )

    def pipeline(self, repo_id: int, number: int) -> dict[str, Any]:
        """The pipeline with its workflows and their steps (``children``)."""
        return (
            self.http.get_json(
                f"/repos/{int(repo_id)}/pipelines/{int(number)}",
                not_found_hint=f"pipeline {number} of repository id {repo_id} (CI_PIPELINE_NUMBER)",
            )
            or {}
        )

    def step_log(self, repo_id: int, number: int, step_id: int, last_lines: int = 50) -> list[str]:
        """The step's last output lines, decoded (secrets masked)."""
        entries = (
            self.http.get_json(
                f"/repos/{int(repo_id)}/logs/{int(number)}/{int(step_id)}",
                not_found_hint=f"the log of step {step_id} of pipeline {number} (logs may have been purged)",
            )
            or []
        )
        lines: list[str] = []
        for entry in sorted(entries, key=lambda e: (e.get("line", 0), e.get("id", 0))):
            if entry.get("type", 0) not in _LOG_LINE_TYPES:
                continue
            data = entry.get("data") or ""
            try:
                raw = base64.b64decode(data) if isinstance(data, str) else bytes(data)
            except (binascii.Error, ValueError, TypeError):
                raw = str(data).encode()
            lines.extend(mask(raw.decode("utf-8", "replace")).splitlines())
        return lines[-last_lines:] if last_lines > 0 else []

    def smoke_steps(
        self, full_name: str, number: int, pattern: str = "smoke"
    ) -> tuple[list[SmokeStep], datetime | None]:
        """Steps whose name matches ``pattern`` (case-insensitive regex), as SmokeSteps with
        the log excerpt of the failed ones, and when the deploy step finished."""
        try:
            matcher = re.compile(pattern, re.IGNORECASE)
        except re.error as exc:
            raise ConfigError(f"smoke step pattern {pattern!r} is not a regular expression: {exc}") from None
        repo = self.lookup_repo(full_name)
        repo_id = repo.get("id")
        if not isinstance(repo_id, int):
            raise WoodpeckerError(f"woodpecker's record of {full_name} has no id")
        steps = [s for w in self.pipeline(repo_id, number).get("workflows") or [] for s in w.get("children") or []]
        smoke: list[SmokeStep] = []
        for step in steps:
            name = str(step.get("name", ""))
            if not matcher.search(name):
                continue
            status = STATUS.get(str(step.get("state", "")), "unknown")
            item = SmokeStep(
                name=name,
                status=status,
                ts=_time(step.get("finished")),
                started_at=_time(step.get("started")),
                source="woodpecker",
            )
            if item.failed:
                item.message = mask(step.get("error") or f"exit code {step.get('exit_code', '?')}")
                try:
                    item.log_excerpt = "\n".join(self.step_log(repo_id, number, step["id"]))
                except WoodpeckerError as exc:  # the log is a nice-to-have; the step's state is the fact
                    log.warning("woodpecker step log unavailable", step=name, error=str(exc))
            smoke.append(item)
        return smoke, _deploy_finished(steps)


def _deploy_finished(steps: list[dict[str, Any]]) -> datetime | None:
    """When the (last) deploy step finished; rollback steps named *deploy* do not count."""
    finished = [
        s.get("finished") or 0
        for s in steps
        if "deploy" in str(s.get("name", "")).lower() and "rollback" not in str(s.get("name", "")).lower()
    ]
    done = [f for f in finished if f > 0]
    return _time(max(done)) if done else None
