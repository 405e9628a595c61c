"""Commit SHAs: validation, and where the rollback SHA comes from.

Only full 40-hex SHAs are accepted: a short SHA can become ambiguous as the repository
grows, and a postmortem must name exactly what ran.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from rollback_pm.errors import InvalidShaError, UsageError
from rollback_pm.log import get_logger
from rollback_pm.timeutil import parse_ts

SHA_RE = re.compile(r"^[0-9a-f]{40}$")
REVISION_LABEL = "org.opencontainers.image.revision"
COMPOSE_SERVICE = "com.docker.compose.service"
SWARM_SERVICE = "com.docker.swarm.service.name"

log = get_logger(__name__)


def validate_sha(value: str, what: str) -> str:
    """The SHA stripped and lowercased; InvalidShaError (exit 2) unless it is 40 hex digits."""
    sha = value.strip().lower() if isinstance(value, str) else ""
    if not SHA_RE.match(sha):
        raise InvalidShaError(
            f"{what} {value!r} is not a full 40-hex commit SHA; pass the full SHA (git rev-parse HEAD)"
        )
    return sha


@dataclass
class ShaResolution:
    sha: str | None
    source: str | None  # flag | env | image-label | last-good | ci-prev
    warnings: list[str] = field(default_factory=list)


def resolve_rollback_sha(
    *,
    explicit: str | None,
    explicit_source: str = "flag",
    image_revision: str | None = None,
    last_good: str | None = None,
    ci_prev: str | None = None,
    deploy_sha: str | None = None,
) -> ShaResolution:
    """The rollback SHA from the first source that answers.

    explicit (flag/env) > image label > ledger's last good deploy > CI_PREV_COMMIT_SHA.
    A malformed explicit SHA is the user's mistake (InvalidShaError); a malformed
    implicit one is skipped with a warning. With ``deploy_sha``, an implicit source
    that names the deploy itself is skipped: the container still runs the bad version
    (labels read before the rollback), or the good mark came from this very deploy.
    """
    warnings: list[str] = []
    if explicit is not None and explicit.strip():
        sha = validate_sha(explicit, "rollback SHA")
        if deploy_sha and sha == deploy_sha:
            warnings.append(
                f"rollback SHA {sha[:7]} given by {explicit_source} equals the deploy SHA; check --rollback-sha"
            )
        return ShaResolution(sha, explicit_source, warnings)
    candidates = [
        ("image-label", image_revision, f"image label {REVISION_LABEL}"),
        ("last-good", last_good, "last good deploy in the ledger"),
        ("ci-prev", ci_prev, "CI_PREV_COMMIT_SHA"),
    ]
    for source, value, what in candidates:
        if value is None or not value.strip():
            continue
        try:
            sha = validate_sha(value, what)
        except InvalidShaError as exc:
            warnings.append(f"{exc}; ignored")
            continue
        if deploy_sha and sha == deploy_sha:
            warnings.append(f"{what} {sha[:7]} is the deploy SHA itself, not what the rollback restored; ignored")
            continue
        if source == "ci-prev":
            warnings.append(
                f"rollback SHA {sha[:7]} is CI_PREV_COMMIT_SHA: only the previous pipeline's commit on the "
                "branch, not necessarily the version that was deployed before; confirm it, or pass "
                "--rollback-sha, label images with org.opencontainers.image.revision, or run "
                "`rollback-pm mark-good` after good deploys"
            )
        return ShaResolution(sha, source, warnings)
    warnings.append(
        "rollback SHA unknown: pass --rollback-sha (or ROLLBACK_PM_ROLLBACK_SHA), label images with "
        "org.opencontainers.image.revision, or run `rollback-pm mark-good` after good deploys"
    )
    return ShaResolution(None, None, warnings)


def image_revision(
    inspect_docs: list[dict[str, Any]], image_docs: dict[str, dict[str, Any]], service: str | None = None
) -> str | None:
    """The org.opencontainers.image.revision label of what the service's container runs.

    The image's own label wins over the container's (Config.Labels merges both).
    Containers are the service's when their compose/swarm service label or their name
    says so; running ones first, most recently started first. When none matches the
    service (or no service is given), the label is used only if every container agrees:
    a wrong SHA in a postmortem is worse than none.
    """
    matched = [d for d in inspect_docs if service and _is_service(d, service)]
    pool = matched or list(inspect_docs)
    pool.sort(key=_recency, reverse=True)
    revisions = [r for r in (_revision(d, image_docs) for d in pool) if r]
    if not revisions:
        return None
    if matched:
        return revisions[0]
    distinct = set(revisions)
    if len(distinct) == 1:
        return revisions[0]
    log.info("image revision ambiguous", service=service, revisions=sorted(distinct))
    return None


def _labels(doc: dict[str, Any] | None) -> dict[str, str]:
    return ((doc or {}).get("Config") or {}).get("Labels") or {}


def _revision(doc: dict[str, Any], image_docs: dict[str, dict[str, Any]]) -> str | None:
    for labels in (_labels(image_docs.get(doc.get("Image", ""))), _labels(doc)):
        value = labels.get(REVISION_LABEL)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _is_service(doc: dict[str, Any], service: str) -> bool:
    labels = _labels(doc)
    if labels.get(COMPOSE_SERVICE) == service:
        return True
    swarm = labels.get(SWARM_SERVICE, "")
    if swarm == service or swarm.endswith(f"_{service}"):  # stack_service
        return True
    name = str(doc.get("Name", "")).lstrip("/")
    # compose v2 "project-api-1", v1 "project_api_1", plain "api"
    return name == service or re.fullmatch(rf"(?:.+[-_])?{re.escape(service)}[-_]\d+", name) is not None


def _recency(doc: dict[str, Any]) -> tuple[bool, datetime]:
    state = doc.get("State") or {}
    try:
        started = parse_ts(state.get("StartedAt"))
    except UsageError:  # a garbled time only affects ordering
        started = None
    return bool(state.get("Running")), started or datetime.min.replace(tzinfo=timezone.utc)
