"""The rollback hook: a short pipeline of stages over one state object.

    evidence -> facts -> signals -> ledger -> draft -> ticket (-> pull request) -> repeats

`--phase collect` runs before the rollback replaces the failed containers, and the
rollback waits for it: the freeze stage copies the containers' log bytes and inspect
documents into the state dir's private spool, parsing nothing. Where the log files cannot
be read from here (a remote engine, another log driver, no permission), the evidence stage
collects the bundle in one pass instead and it is parked in the ledger. `--phase finalize`
runs after it: the process stage turns the spool into the bundle and parks it, the facts
stage adopts what was parked, and the later stages follow. The default runs both (one
pass, no freeze). Every stage is idempotent for one rollback.

The signals stage reads the bundle logs this run brings (its own collection, or the
parked one) for what the failing software said; never Docker. Only its yardstick, the
replacing version's recent logs (``replacing``), is read from the engine, after the
rollback and within what is left of ``--timeout``. A report it cannot make costs the
draft its "What the logs say", never the draft or the ticket.

All input the finalize stages take is checked before the ledger stage (settings at load,
the template and tracker before the ledger is opened, smoke reports in the facts stage),
so a run refused as bad input (exit 2) leaves no trace in the ledger. Evidence comes first
all the same: it is what disappears.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path

from filelock import FileLock

from rollback_pm import drafts, inputs, repeats
from rollback_pm.config import Settings
from rollback_pm.deadline import hours_for
from rollback_pm.errors import DraftEditedError, DraftError, LedgerError, SignalsError, TrackerError, UsageError
from rollback_pm.evidence import BundleResult, CollectOptions, Frozen, Selection, collect, finalize, freeze
from rollback_pm.facts.impact import GIVEN, WOODPECKER
from rollback_pm.facts.incident import Parked, container_states, gather
from rollback_pm.ledger import Ledger, lock_file, open_state_dir
from rollback_pm.log import get_logger
from rollback_pm.memory import give_back
from rollback_pm.models import EvidenceFile, Incident, Repeat, Signature
from rollback_pm.placement import DraftPolicy, draft_policy, write_incident_draft
from rollback_pm.pull_request import open_draft_pull_request
from rollback_pm.replacing import BaselineRead, read_baseline
from rollback_pm.safe_dirs import ensure_dir
from rollback_pm.signals import Baseline, SignalReport, extract_bundle, stored
from rollback_pm.tickets import TicketOutcome, open_ticket
from rollback_pm.timeutil import utcnow
from rollback_pm.trackers import Tracker, make_tracker

log = get_logger(__name__)
PHASES = ("both", "collect", "finalize")


@dataclass
class HookState:
    """What one hook run has done so far; each stage's output lands here."""

    phase: str
    bundle: BundleResult | None = None  # collected in one pass by this run
    frozen: Frozen | None = None  # the collect phase's freeze, for the finalize phase to process
    processed: list[BundleResult] = field(default_factory=list)  # bundles this run made from this rollback's freezes
    signals: SignalReport | None = None  # the report the draft and ticket use
    baseline_note: str | None = None  # what "new in the bad version" was compared with, or why not
    incident: Incident | None = None
    new_incident: bool = False
    draft: drafts.DraftResult | None = None
    draft_note: str | None = None
    draft_problem: str | None = None  # why the draft could not be written (the ticket says it)
    ticket: TicketOutcome | None = None
    pull_request: str | None = None
    repeats: list[Repeat] = field(default_factory=list)  # earlier incidents that failed the same way
    degraded: list[str] = field(default_factory=list)


def run_hook(settings: Settings, phase: str = "both", *, now: datetime | None = None) -> HookState:
    """Run the stages of ``phase``. Raises typed errors for bad input; degradations are listed."""
    if phase not in PHASES:
        raise UsageError(f"--phase must be one of {', '.join(PHASES)}, not {phase!r}")
    settings = settings.for_environment(settings.environment)
    now = now or utcnow()
    started = time.monotonic()
    who = inputs.identity(settings)
    state = HookState(phase=phase)

    if phase in ("both", "collect"):
        selection, options = inputs.selection(settings), inputs.collect_options(settings, now)
        if phase == "collect":
            state.frozen = freeze_stage(selection, options, settings.state_dir, who.pending_key, now)
            if state.frozen is not None:
                state.degraded += freeze_problems(state.frozen)
                return state
            # No freeze here: one pass, in what is left of --timeout.
            options = replace(options, timeout=max(1.0, options.timeout - (time.monotonic() - started)))
        state.bundle = evidence_stage(selection, options, now)
        give_back()  # what the log readers' threads freed, before the stages that follow
        state.degraded += evidence_problems(state.bundle)
        if phase == "collect":
            park_stage(settings.state_dir, who, state.bundle)
            return state

    request = inputs.facts_request(settings, who)
    policy = draft_policy(settings)
    drafts.resolve_template(policy.template)
    tracker = make_tracker(settings)
    hours = hours_for(settings, who.environment)
    with run_lock(settings.state_dir, who.pending_key), Ledger(settings.state_dir) as ledger:
        state.processed = process_stage(settings.state_dir, ledger, who.pending_key)
        state.degraded += [problem for bundle in state.processed for problem in evidence_problems(bundle)]
        parked = Parked(*ledger.take_pending_evidence(who.pending_key))
        last_good = ledger.last_good(who.service, who.environment)
        gathered = gather(request, bundle=state.bundle, parked=parked, last_good=last_good, now=now)
        state.degraded += gathered.degraded
        logs = new_logs(state.bundle, parked)
        reports: list[SignalReport] = []
        if logs:
            seconds_left = settings.timeout - (time.monotonic() - started)
            read = baseline_stage(settings, gathered.incident, seconds_left, now)
            state.baseline_note = read.note
            give_back()  # the replacing containers' lines, read and dropped
            reports, problems = signals_stage(logs, baseline=read.baseline, bad_since=bad_since(gathered.incident))
            state.degraded += problems
            give_back()
        state.incident, state.new_incident = ledger_stage(ledger, gathered.incident, who.pending_key)
        state.signals = store_signals_stage(ledger, state.incident, reports)
        state.draft, state.draft_note, state.draft_problem = draft_stage(ledger, policy, state.incident, hours, now)
        if state.draft_problem:
            state.degraded.append(f"draft not written: {state.draft_problem}")
        state.ticket = ticket_stage(ledger, tracker, state.incident, hours, draft_problem=state.draft_problem)
        if state.ticket.queued:
            state.degraded.append(state.ticket.message)
        if settings.open_pr and state.draft is not None:
            state.pull_request, problem = pull_request_stage(ledger, tracker, state.incident, state.draft)
            state.degraded += problem
        state.repeats, problems = repeats_stage(ledger, tracker, ledger.get(state.incident.id))
        state.degraded += problems
        state.incident = ledger.get(state.incident.id)
    return state


def evidence_stage(selection: Selection, options: CollectOptions, now: datetime) -> BundleResult:
    """Snapshot the selected containers into a bundle in one pass (also `rollback-pm collect` on its own)."""
    return collect(selection, options, now=now)


def evidence_problems(bundle: BundleResult) -> list[str]:
    if not bundle.degraded:
        return []
    return ["evidence incomplete: " + "; ".join(bundle.errors or ["see manifest"])]


def new_logs(bundle: BundleResult | None, parked: Parked) -> list[EvidenceFile]:
    """The bundle logs this run brings: its own collection's, or what `--phase collect` parked."""
    files = (bundle.files if bundle else []) + parked.files
    return [f for f in files if f.kind == "log"]


def bad_since(incident: Incident) -> datetime | None:
    """When the bad version went live, if a deploy time is known; else the signals take each
    container's own creation (the same moment, per container)."""
    return incident.started_at if incident.started_at_source in (GIVEN, WOODPECKER) else None


def baseline_stage(settings: Settings, incident: Incident, seconds: float, now: datetime) -> BaselineRead:
    """After the rollback: the replacing version's recent logs (the same selection, minus the
    containers in the evidence), within what is left of the run's --timeout."""
    try:
        selection = inputs.selection(settings)
    except UsageError:
        return BaselineRead(None, "no container selection given, so the replacing version was not read")
    return read_baseline(
        selection, settings.docker_host, exclude={c.id for c in incident.containers}, seconds=seconds, now=now
    )


def signals_stage(
    logs: list[EvidenceFile], *, baseline: Baseline | None, bad_since: datetime | None
) -> tuple[list[SignalReport], list[str]]:
    """What the failing software said: each bundle log read for its signals (the redacted
    files only, never Docker). Returns the reports and what could not be read."""
    reports: list[SignalReport] = []
    problems: list[str] = []
    for evidence in logs:
        name = os.path.basename(evidence.path)
        try:
            reports.append(extract_bundle(evidence.path, baseline=baseline, bad_since=bad_since))
        except SignalsError as exc:
            problems.append(f"signals not read from {name}: {exc}")
        except Exception as exc:  # a bug here must not cost the draft and the ticket
            log.error("signals.failed", log=name, error=repr(exc))
            problems.append(f"signals not read from {name}: internal error ({type(exc).__name__}); please report it")
    return reports, problems


def store_signals_stage(ledger: Ledger, incident: Incident, reports: list[SignalReport]) -> SignalReport | None:
    """Keep each report with its bundle; the one the draft uses gives the failure signature."""
    for report in reports:
        bundle = next((e.bundle for e in incident.evidence if e.path == report.log), None)
        ledger.set_signal_report(incident.id, bundle or os.path.basename(report.log), report.to_dict())
    chosen = stored.choose(ledger.signal_report_rows(incident.id), incident.id)
    if chosen is not None:
        failed = incident.failed_step
        signature = chosen.signature(failed.name if failed else None)
        ledger.set_signature(
            Signature(incident.id, signature.key, failed_step=signature.step, templates=list(signature.templates))
        )
    return chosen


def freeze_stage(
    selection: Selection, options: CollectOptions, state_dir: Path, pending_key: str, now: datetime
) -> Frozen | None:
    """`--phase collect`: freeze what the rollback would destroy into the spool; None where it cannot be."""
    return freeze(selection, options, state_dir, key=pending_key, now=now)


def freeze_problems(frozen: Frozen) -> list[str]:
    if not frozen.degraded:
        return []
    problems = frozen.errors + [f"{c.name}: {c.error}" for c in frozen.containers if c.error]
    return ["evidence incomplete: " + "; ".join(problems)]


def park_stage(state_dir: Path, who: inputs.Identity, bundle: BundleResult) -> None:
    """`--phase collect` without a freeze: keep the bundle (and its containers' state) for the finalize phase."""
    with Ledger(state_dir) as ledger:
        park(ledger, who.pending_key, bundle)


def park(ledger: Ledger, pending_key: str, bundle: BundleResult) -> None:
    ledger.add_pending_evidence(
        pending_key, bundle.files, {"containers": [asdict(s) for s in container_states(bundle)]}
    )


def process_stage(state_dir: Path, ledger: Ledger, pending_key: str) -> list[BundleResult]:
    """The finalize phase's evidence: bundles made from the spool, parked for their incidents; this rollback's.

    This rollback's freezes, and any a killed or missing finalize left behind: each is
    parked under its own rollback's key (adopted when that rollback is finalized) before
    its spool is deleted.
    """
    return finalize(state_dir, key=pending_key, park=lambda key, bundle: park(ledger, key, bundle))


def run_lock(state_dir: Path, key: str, timeout: float = 300.0) -> FileLock:
    """One finalize at a time per rollback: two hooks racing make one incident and one ticket."""
    locks = ensure_dir(
        open_state_dir(state_dir) / "locks", "lock dir", "make it a real, writable directory", LedgerError
    )
    return FileLock(
        lock_file(locks, f"{hashlib.sha256(key.encode()).hexdigest()[:16]}.lock", "hook lock"), timeout=timeout
    )


def ledger_stage(ledger: Ledger, incident: Incident, pending_key: str) -> tuple[Incident, bool]:
    """Store the incident (the same row for a retried rollback); the parked evidence is now its own."""
    stored, new = ledger.upsert_incident(incident)
    ledger.drop_pending_evidence(pending_key)
    return stored, new


def draft_stage(
    ledger: Ledger, policy: DraftPolicy, incident: Incident, deadline_hours: float, now: datetime
) -> tuple[drafts.DraftResult | None, str | None, str | None]:
    """(the draft written, or None and why it was left alone, why it could not be written).

    A draft that cannot be written (a read-only or full drafts dir, a planted symlink) does
    not stop the run: the ticket still opens and says the draft is missing and why."""
    try:
        return write_incident_draft(ledger, policy, incident, now=now, deadline_hours=deadline_hours), None, None
    except DraftEditedError as exc:
        # A human is already writing it: their words win; the facts are in the ledger and ticket.
        return None, f"draft kept as edited ({exc})", None
    except DraftError as exc:
        log.warning("draft not written; the ticket says so", incident=incident.id, error=str(exc))
        return None, None, str(exc)


def ticket_stage(
    ledger: Ledger, tracker: Tracker, incident: Incident, deadline_hours: float, *, draft_problem: str | None = None
) -> TicketOutcome:
    return open_ticket(
        ledger, tracker, ledger.get(incident.id), deadline_hours=deadline_hours, draft_problem=draft_problem
    )


def repeats_stage(ledger: Ledger, tracker: Tracker, incident: Incident) -> tuple[list[Repeat], list[str]]:
    """Earlier incidents that failed the same way (by the signature the ledger holds), and
    the incident's ticket linked to theirs; a link not made now is made by check-deadlines."""
    found = repeats.seen_before(ledger, incident)
    _, problems = repeats.link_repeats(ledger, tracker, incident, found)
    return found or [], problems


def pull_request_stage(
    ledger: Ledger, tracker: Tracker, incident: Incident, draft: drafts.DraftResult
) -> tuple[str | None, list[str]]:
    """(the pull request's URL if opened now, what could not be done)."""
    if not tracker.capabilities.pull_requests:
        return None, [f"--open-pr needs a tracker that opens pull requests (gitea or forgejo), not {tracker.name}"]
    try:
        return open_draft_pull_request(tracker, ledger, ledger.get(incident.id), draft), []
    except TrackerError as exc:
        return None, [f"pull request not opened: {exc}"]
