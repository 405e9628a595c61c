"""Plain data shared by the stages: what the ledger stores and the drafts render.

Times are timezone-aware UTC datetimes everywhere; ``timeutil`` parses and formats them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any


@dataclass
class SmokeStep:
    """One smoke-test step as reported by the pipeline."""

    name: str
    status: str  # passed | failed | skipped | error | running | unknown
    step: int | None = None  # number, e.g. 1-6 of azaion's scripts/smoke.sh
    ts: datetime | None = None  # when the step finished (or was reported)
    started_at: datetime | None = None
    message: str = ""
    source: str = ""  # report file path, or "woodpecker"
    log_excerpt: str = ""  # last lines of the step's log, redacted

    @property
    def failed(self) -> bool:
        return self.status in ("failed", "error")


@dataclass
class TimelineEvent:
    ts: datetime
    text: str
    source: str  # pipeline step / smoke report / evidence collection / container state / ...


@dataclass
class EvidenceFile:
    path: str
    kind: str  # log | inspect | manifest
    sha256: str
    bytes: int
    bundle: str  # the bundle's <ts> id, e.g. 20261123T193000Z


@dataclass
class ContainerState:
    """What a collected container's inspect document says about how it died."""

    name: str
    id: str
    image: str = ""
    status: str = ""  # running | exited | dead | restarting ...
    exit_code: int | None = None
    oom_killed: bool = False
    restart_count: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    health_status: str | None = None  # healthy | unhealthy | starting
    health_log: list[dict[str, Any]] = field(default_factory=list)  # Start, End, ExitCode, Output
    image_revision: str | None = None  # org.opencontainers.image.revision
    created_at: datetime | None = None  # a crash loop's first start; StartedAt moves with each restart
    memory_limit: int | None = None  # bytes (HostConfig.Memory); None: no limit
    health_failing_streak: int = 0  # consecutive failing probes (Docker keeps only the last 5)
    health_interval_s: float | None = None  # the health check's interval, when the container sets one


@dataclass
class LogNote:
    """What a container's own log adds to its timeline entries (from the signals stage).

    ``last_*``: the last line it logged before it exited or was killed; ``crash_*``: the
    words it logged before each exit of a crash loop, first logged at ``crash_first_at``
    and ``crash_count`` times in all. ``*_cite`` is ``rollback-<ts>.log:<lines>``.
    """

    container: str
    last_line: str | None = None
    last_at: datetime | None = None
    last_cite: str | None = None
    crash_line: str | None = None
    crash_first_at: datetime | None = None
    crash_count: int = 0
    crash_cite: str | None = None


@dataclass
class Commit:
    sha: str
    author: str
    subject: str
    date: datetime | None = None


@dataclass
class ChangedFile:
    path: str
    added: int | None = None
    deleted: int | None = None


@dataclass
class TicketRef:
    tracker: str  # file | jira | gitea | forgejo | none
    key: str
    url: str
    status: str = "open"  # as last read from the tracker


FOLLOWUP_OPEN = "open"
FOLLOWUP_CLOSED = "closed"
FOLLOWUP_STATUSES = (FOLLOWUP_OPEN, FOLLOWUP_CLOSED)


@dataclass
class Followup:
    """One row of a postmortem's action table (prevention, action items) and its ticket."""

    incident_id: str
    row_key: str  # identifies the row within its incident's draft, stable across reruns
    action: str
    owner: str | None = None
    target_date: str | None = None  # YYYY-MM-DD: due at the end of that day (UTC)
    tracker: str | None = None
    key: str | None = None
    url: str | None = None
    status: str = FOLLOWUP_OPEN  # open | closed, the tracker's state mapped to these two
    created_at: datetime | None = None
    updated_at: datetime | None = None
    closed_at: datetime | None = None


@dataclass
class Signature:
    """What an incident failed with, to find earlier incidents that failed the same way."""

    incident_id: str
    signature: str
    failed_step: str | None = None
    templates: list[str] = field(default_factory=list)  # the top error templates of the logs
    created_at: datetime | None = None


@dataclass
class Repeat:
    """An earlier incident that failed the same way as this one ("Seen before")."""

    incident_id: str
    service: str
    environment: str
    day: str  # YYYY-MM-DD: when the earlier bad version went live (else was detected, mitigated, recorded)
    rolled_back_at: datetime | None
    failed_step: str | None
    shared_templates: list[str] = field(default_factory=list)  # the error templates both logs share
    draft_path: str | None = None  # its postmortem
    ticket: TicketRef | None = None
    open_followups: list[Followup] = field(default_factory=list)


@dataclass
class SwarmImage:
    """One version of a Swarm service: what its spec runs."""

    image: str  # the reference in the spec, e.g. registry/shop/api:1.4@sha256:...
    digest: str | None = None  # sha256:... from the reference, else the image id on the manager
    revision: str | None = None  # org.opencontainers.image.revision of that image

    @property
    def short(self) -> str:
        return (self.revision or "")[:7] or self.image


@dataclass
class SwarmUpdate:
    """A service's UpdateStatus: Swarm's account of its last update or rollback."""

    state: str  # updating | paused | completed | rollback_started | rollback_paused | rollback_completed
    started_at: datetime | None = None
    completed_at: datetime | None = None
    message: str = ""
    rollback_started_at: datetime | None = None  # from the rollback_started event, when it was seen


@dataclass
class SwarmFailures:
    """The failed tasks of the bad version, summed up for the draft."""

    count: int = 0
    first_at: datetime | None = None
    last_at: datetime | None = None
    nodes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # distinct task errors, most frequent first
    exit_codes: list[int] = field(default_factory=list)
    first_task: str = ""  # "<service>.<slot>" of the first failure


@dataclass
class SwarmFacts:
    """What a Swarm service says about one rollback (or about the update a pipeline rolled back)."""

    service: str
    service_id: str
    stack: str | None = None
    trigger: str = "pipeline"  # automatic (update_config failure_action) | manual (docker service rollback) | pipeline
    deploy: SwarmImage | None = None  # the bad version
    rollback: SwarmImage | None = None  # what runs after the rollback
    update: SwarmUpdate | None = None
    failures: SwarmFailures = field(default_factory=SwarmFailures)
    tasks_seen: int = 0


@dataclass
class Incident:
    """Everything the ledger knows about one rollback."""

    id: str
    service: str
    environment: str
    deploy_sha: str
    rollback_sha: str | None = None
    rollback_sha_source: str | None = None  # flag | env | image-label | last-good | ci-prev
    pipeline_number: str | None = None
    pipeline_url: str | None = None
    repo: str | None = None  # owner/name
    started_at: datetime | None = None  # bad version went live
    started_at_source: str | None = None  # flag | woodpecker | containers (see facts.impact)
    detected_at: datetime | None = None  # first failed smoke step
    mitigated_at: datetime | None = None  # rollback finished
    severity: str = "High"  # Critical | High | Medium | Low (azaion scale; templates map it)
    detected_by: str = "operator"  # alert | smoke test | user report | operator
    status: str = "open"  # open | done
    created_at: datetime | None = None
    updated_at: datetime | None = None
    deploy_ticket: str | None = None
    owner: str | None = None
    done_at: datetime | None = None  # when check-deadlines found the postmortem done
    smoke_steps: list[SmokeStep] = field(default_factory=list)
    evidence: list[EvidenceFile] = field(default_factory=list)
    events: list[TimelineEvent] = field(default_factory=list)  # extra recorded events
    containers: list[ContainerState] = field(default_factory=list)
    commits: list[Commit] = field(default_factory=list)
    changed_files: list[ChangedFile] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    draft_path: str | None = None
    ticket: TicketRef | None = None
    swarm: SwarmFacts | None = None  # set when the rolled-back service runs on Docker Swarm

    @property
    def failed_step(self) -> SmokeStep | None:
        """The first failed smoke step, by time then step number."""
        failed = [s for s in self.smoke_steps if s.failed]
        if not failed:
            return None
        return sorted(failed, key=lambda s: (s.ts is None, s.ts or datetime.min, s.step or 0))[0]

    @property
    def unique_label(self) -> str:
        """The tracker label that identifies this incident's ticket."""
        return f"rollback-pm-{self.id}"

    def to_dict(self) -> dict[str, Any]:
        from rollback_pm.timeutil import to_jsonable

        return to_jsonable(asdict(self))
