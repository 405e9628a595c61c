"""Woodpecker CI API reads: which smoke steps failed, and when the deploy step finished.

Uses the server API with a personal access token (``Authorization: Bearer …``):
``GET /api/repos/lookup/{owner}/{name}``, ``GET /api/repos/{id}/pipelines/{number}``
(workflows -> children steps, states, unix times) and
``GET /api/repos/{id}/logs/{number}/{step_id}`` (entries whose ``data`` is base64).
Every failure is a WoodpeckerError that names the setting to fix and never the token.

The answers are read like any outside input: at most ``MAX_ANSWER_BYTES`` of body, and
the parse functions below (pure, so they can be fuzzed on their own) check every field
they use. An answer of the wrong shape is a WoodpeckerError naming what was wrong; a
step with a time outside 2000-01-01 .. now + 1 day or a wrong field is refused the same
way, never an internal error.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import urllib3

from rollback_pm.errors import ConfigError, WoodpeckerError
from rollback_pm.facts.redaction import redact_steps
from rollback_pm.log import get_logger, mask
from rollback_pm.models import SmokeStep
from rollback_pm.timeutil import EARLIEST, iso, utcnow
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
MAX_ANSWER_BYTES = 8 * 1024 * 1024  # a pipeline is a few KB; a step log of a smoke test rarely 1 MB
MAX_STEPS = 1000  # steps of one pipeline, all workflows together
MAX_LOG_ENTRIES = 200_000  # lines of one step's log
MAX_NAME = 200
MAX_MESSAGE = 1000
MAX_ID = 2**53  # ids and numbers are JSON integers Go writes as int64; JavaScript-safe is plenty
AHEAD = timedelta(days=1)


def _bad(what: str, problem: str) -> WoodpeckerError:
    return WoodpeckerError(f"woodpecker's {what} {problem}; check that {URL_HINT} is the Woodpecker server")


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _bad(what, f"is a JSON {_kind(value)}, not an object")
    return value


def _list(value: Any, what: str, limit: int) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _bad(what, f"is a JSON {_kind(value)}, not an array")
    if len(value) > limit:
        raise _bad(what, f"holds {len(value)} entries, more than the {limit} rollback-pm reads")
    return value


def _kind(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number"
    )


def _int(value: Any, what: str, default: int | None = None) -> int | None:
    """A whole number from 0 to 2**53; absent gives ``default``."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_ID:
        raise _bad(what, f"is {_clip(json.dumps(value), 40)}, not a whole number from 0 to {MAX_ID}")
    return value


def _text(value: Any, what: str, limit: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _bad(what, f"is a JSON {_kind(value)}, not a string")
    return _clip(value, limit)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _time(value: Any, what: str) -> datetime | None:
    """A unix time in seconds (0 means "not yet"), inside 2000-01-01 .. now + 1 day."""
    seconds = _int(value, what, 0)
    if not seconds:
        return None
    latest = utcnow() + AHEAD
    if not EARLIEST.timestamp() <= seconds <= latest.timestamp():
        raise _bad(what, f"is {seconds}, not a unix time between {EARLIEST.date()} and now + 1 day ({iso(latest)})")
    return datetime.fromtimestamp(seconds, timezone.utc)


def repo_id(repo: Any, full_name: str) -> int:
    """The id in a ``/repos/lookup`` answer."""
    found = _int(_object(repo, f"record of {full_name}").get("id"), f"record of {full_name}: id")
    if found is None:
        raise WoodpeckerError(f"woodpecker's record of {full_name} has no id")
    return found


def pipeline_steps(pipeline: Any, number: int) -> list[dict[str, Any]]:
    """Every step of every workflow of a ``/pipelines/{number}`` answer, as given."""
    what = f"pipeline {number}"
    steps: list[dict[str, Any]] = []
    workflows = _list(_object(pipeline, what).get("workflows"), f"{what}: workflows", MAX_STEPS)
    for w_index, workflow in enumerate(workflows):
        where = f"{what}: workflow {w_index + 1}"
        for c_index, child in enumerate(_list(_object(workflow, where).get("children"), f"{where}: steps", MAX_STEPS)):
            steps.append(_object(child, f"{where}: step {c_index + 1}"))
            if len(steps) > MAX_STEPS:
                raise _bad(what, f"has more than {MAX_STEPS} steps")
    return steps


def step_name(step: dict[str, Any]) -> str:
    return _text(step.get("name"), "step name", MAX_NAME)


def smoke_step(step: dict[str, Any]) -> SmokeStep:
    """A pipeline step as a SmokeStep (no log excerpt yet)."""
    name = step_name(step)
    what = f"step {name!r}"
    status = STATUS.get(_text(step.get("state"), f"{what}: state", 40), "unknown")
    item = SmokeStep(
        name=name,
        status=status,
        ts=_time(step.get("finished"), f"{what}: finished"),
        started_at=_time(step.get("started"), f"{what}: started"),
        source="woodpecker",
    )
    if item.failed:
        exit_code = step.get("exit_code")
        shown = exit_code if isinstance(exit_code, int) and not isinstance(exit_code, bool) else "?"
        item.message = mask(_text(step.get("error"), f"{what}: error", MAX_MESSAGE) or f"exit code {shown}")
    return item


def log_lines(entries: Any, last_lines: int = 50) -> list[str]:
    """The last output lines of a ``/logs/...`` answer, decoded and masked."""
    if last_lines <= 0:
        return []
    ordered: list[tuple[int, int, Any]] = []
    for index, raw in enumerate(_list(entries, "step log", MAX_LOG_ENTRIES)):
        what = f"step log entry {index + 1}"
        entry = _object(raw, what)
        if _int(entry.get("type"), f"{what}: type", 0) not in _LOG_LINE_TYPES:
            continue
        line = _int(entry.get("line"), f"{what}: line", 0) or 0
        ordered.append((line, _int(entry.get("id"), f"{what}: id", 0) or 0, entry.get("data")))
    ordered.sort(key=lambda e: (e[0], e[1]))
    lines: list[str] = []
    # Newest first, and only as many entries as the excerpt needs (an entry may hold several lines).
    for _, _, data in reversed(ordered):
        lines[:0] = mask(_decode(data).decode("utf-8", "replace")).splitlines()
        if len(lines) >= last_lines:
            break
    return [_clip(line, MAX_MESSAGE) for line in lines[-last_lines:]]


def _decode(data: Any) -> bytes:
    """An entry's ``data``: base64 as the server writes it, or an integer array as its spec says."""
    if data is None:
        return b""
    if isinstance(data, str):
        try:
            return base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            return data.encode("utf-8", "replace")
    if isinstance(data, list) and all(isinstance(b, int) and not isinstance(b, bool) and 0 <= b < 256 for b in data):
        return bytes(data)
    raise _bad("step log", f"has an entry whose data is a JSON {_kind(data)}, neither base64 text nor bytes")


def deploy_finished(steps: list[dict[str, Any]]) -> datetime | None:
    """When the (last) deploy step finished; rollback steps named *deploy* do not count."""
    finished: list[datetime] = []
    for step in steps:
        name = step_name(step).lower()
        if "deploy" in name and "rollback" not in name:
            done = _time(step.get("finished"), f"step {name!r}: finished")
            if done is not None:
                finished.append(done)
    return max(finished) if finished else None


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

    def _get(self, path: str, what: str, not_found_hint: str) -> Any:
        """The JSON of an answer, read up to MAX_ANSWER_BYTES; None for an empty body."""
        resp = self.http.request("GET", path, not_found_hint=not_found_hint, stream=True)
        try:
            declared = resp.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > MAX_ANSWER_BYTES:
                raise _too_big(what)
            body = resp.raw.read(MAX_ANSWER_BYTES + 1, decode_content=True)
        except (OSError, urllib3.exceptions.HTTPError) as exc:  # a connection lost mid-body
            raise WoodpeckerError(f"woodpecker's answer for {what} could not be read: {exc}") from None
        finally:
            resp.close()
        if len(body) > MAX_ANSWER_BYTES:
            raise _too_big(what)
        if not body.strip():
            return None
        try:
            return json.loads(body)
        except (ValueError, RecursionError):
            kind = resp.headers.get("Content-Type", "no content type").split(";")[0]
            raise _bad(f"answer for {what}", f"is {kind}, not JSON") from None

    def lookup_repo(self, full_name: str) -> dict[str, Any]:
        """The repository record (``id`` is what the other calls need)."""
        owner, _, name = full_name.strip("/").partition("/")
        if not owner or not name:
            raise WoodpeckerError(f"repository {full_name!r} is not owner/name: check CI_REPO")
        found = self._get(
            f"/repos/lookup/{segment(owner)}/{segment(name)}",
            f"record of {full_name}",
            f"that {full_name} is activated in Woodpecker at {self.base_url} and the token can read it ({URL_HINT})",
        )
        return _object(found or {}, f"record of {full_name}")

    def pipeline(self, repo_id: int, number: int) -> dict[str, Any]:
        """The pipeline with its workflows and their steps (``children``)."""
        found = self._get(
            f"/repos/{int(repo_id)}/pipelines/{int(number)}",
            f"pipeline {number}",
            f"pipeline {number} of repository id {repo_id} (CI_PIPELINE_NUMBER)",
        )
        return _object(found or {}, f"pipeline {number}")

    def step_log(self, repo_id: int, number: int, step_id: int, last_lines: int = 50) -> list[str]:
        """The step's last output lines, decoded (secrets masked)."""
        entries = self._get(
            f"/repos/{int(repo_id)}/logs/{int(number)}/{int(step_id)}",
            f"log of step {step_id}",
            f"the log of step {step_id} of pipeline {number} (logs may have been purged)",
        )
        return log_lines(entries, last_lines)

    def smoke_steps(
        self, full_name: str, number: int, pattern: str = "smoke"
    ) -> tuple[list[SmokeStep], datetime | None]:
        """Steps whose name matches ``pattern`` (case-insensitive regex), as SmokeSteps with
        the log excerpt of the failed ones, and when the deploy step finished."""
        try:
            matcher = re.compile(pattern, re.IGNORECASE)
        except re.error as exc:
            raise ConfigError(f"smoke step pattern {pattern!r} is not a regular expression: {exc}") from None
        rid = repo_id(self.lookup_repo(full_name), full_name)
        steps = pipeline_steps(self.pipeline(rid, number), number)
        smoke: list[SmokeStep] = []
        for step in steps:
            if not matcher.search(step_name(step)):
                continue
            item = smoke_step(step)
            if item.failed:
                try:
                    step_id = _int(step.get("id"), f"step {item.name!r}: id")
                    if step_id is None:
                        raise _bad(f"step {item.name!r}", "has no id")
                    item.log_excerpt = "\n".join(self.step_log(rid, number, step_id))
                except WoodpeckerError as exc:  # the log is a nice-to-have; the step's state is the fact
                    log.warning("woodpecker step log unavailable", step=item.name, error=str(exc))
            smoke.append(item)
        return redact_steps(smoke), deploy_finished(steps)  # step logs are container output too


def _too_big(what: str) -> WoodpeckerError:
    return WoodpeckerError(
        f"woodpecker's answer for {what} is larger than {MAX_ANSWER_BYTES // (1024 * 1024)} MiB; "
        "rollback-pm reads no more of it"
    )
