"""What the hook's stages take, translated once from Settings.

Each function checks what its stage needs and raises a UsageError (exit 2) naming the
setting to fix, so bad input stops a run before the stage that would need it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from rollback_pm.config import Settings
from rollback_pm.errors import UsageError
from rollback_pm.evidence import CollectOptions, Selection
from rollback_pm.facts import shas, timeline
from rollback_pm.facts.incident import FactsRequest, RunningContainers, WoodpeckerSource
from rollback_pm.ledger import pending_key


@dataclass(frozen=True)
class Identity:
    """What names one rollback before its rollback SHA is known."""

    service: str
    environment: str
    deploy_sha: str
    pipeline_number: str | None

    @property
    def pending_key(self) -> str:
        """Evidence parked by `--phase collect` waits under this key; the run's lock is keyed by it too."""
        return pending_key(self.service, self.environment, self.deploy_sha, self.pipeline_number)


def identity(settings: Settings) -> Identity:
    service = settings.service or settings.compose_project
    if not service:
        raise UsageError("service unknown: give --service (or ROLLBACK_PM_SERVICE; Woodpecker sets CI_REPO_NAME)")
    if not settings.deploy_sha:
        raise UsageError(
            "deploy SHA unknown: give --deploy-sha or ROLLBACK_PM_DEPLOY_SHA (Woodpecker sets CI_COMMIT_SHA)"
        )
    deploy_sha = shas.validate_sha(settings.deploy_sha, "deploy SHA")
    return Identity(service, settings.environment, deploy_sha, settings.pipeline_number)


def selection(settings: Settings) -> Selection:
    chosen = Selection(
        labels=list(settings.label),
        name_regex=settings.name,
        compose_project=settings.compose_project,
        containers=list(settings.container),
        all_states=settings.all_states,
    )
    if not (chosen.labels or chosen.name_regex or chosen.compose_project or chosen.containers):
        raise UsageError(
            "no containers selected: give --label K=V, --name REGEX, --compose-project P "
            "or --container ID (or the matching ROLLBACK_PM_* / PLUGIN_* settings)"
        )
    return chosen


def collect_options(settings: Settings, now: datetime) -> CollectOptions:
    return CollectOptions(
        evidence_dir=settings.evidence_dir,
        since=settings.since.start(now) if settings.since else None,
        max_bytes_per_container=settings.max_bytes_per_container,
        max_total_bytes=settings.max_total_bytes,
        timeout=settings.timeout,
        min_free_mb=settings.min_free_mb,
        docker_host=settings.docker_host,
    )


def facts_request(settings: Settings, who: Identity) -> FactsRequest:
    """What the facts stage reads, from the settings of this run."""
    woodpecker = None
    if settings.woodpecker_token and settings.woodpecker_url and settings.repo and settings.pipeline_number:
        if not settings.pipeline_number.isdigit():
            raise UsageError(
                f"pipeline_number {settings.pipeline_number!r} is not a number; Woodpecker's pipelines are "
                "numbered (CI_PIPELINE_NUMBER)"
            )
        woodpecker = WoodpeckerSource(
            settings.woodpecker_url,
            settings.woodpecker_token,
            settings.repo,
            int(settings.pipeline_number),
            settings.smoke_step_pattern,
        )
    try:
        running = RunningContainers(
            selection(settings), settings.docker_host, settings.service, timeout=min(30.0, settings.timeout)
        )
    except UsageError:  # nothing selected: the revision label is one source among several
        running = None
    return FactsRequest(
        service=who.service,
        environment=who.environment,
        deploy_sha=who.deploy_sha,
        pipeline_number=who.pipeline_number,
        rollback_sha=settings.rollback_sha,
        rollback_sha_source="flag" if settings.source("rollback_sha") == "flag" else "env",
        prev_sha=settings.prev_sha,
        pipeline_url=settings.pipeline_url,
        repo=settings.repo,
        deployed_at=settings.deployed_at,
        mitigated_at=settings.mitigated_at,
        severity=settings.severity or timeline.default_severity(who.environment),
        detected_by=settings.detected_by,
        deploy_ticket=settings.deploy_ticket,
        owner=settings.owner,
        smoke_reports=tuple(Path(p) for p in settings.smoke_report),
        smoke_format=settings.smoke_format,
        woodpecker=woodpecker,
        running=running,
        repo_dir=settings.repo_dir,
    )
