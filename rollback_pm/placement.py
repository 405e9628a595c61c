"""Where an incident's postmortem draft lives, and (re)writing it there.

A new draft goes to ``drafts_dir`` when given, else into the repository's postmortem
folder (``<repo_dir>/<config.REPO_DRAFTS_DIR>``) when the checkout has one, else under
the state dir. Once written, a draft stays where it is (its path is in the ledger) unless
``drafts_dir`` is given; its template stays too unless another is asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from rollback_pm import drafts, repeats
from rollback_pm.config import REPO_DRAFTS_DIR, Settings
from rollback_pm.errors import DraftError
from rollback_pm.facts import timeline
from rollback_pm.ledger import Ledger
from rollback_pm.models import Incident
from rollback_pm.safe_dirs import ensure_dir
from rollback_pm.signals import stored
from rollback_pm.signals.summary import log_notes


@dataclass(frozen=True)
class DraftPolicy:
    directory: Path  # where a new draft goes
    explicit: bool  # drafts_dir was given: it wins over where an earlier draft lives
    template: str  # for a new draft


def draft_policy(settings: Settings) -> DraftPolicy:
    if settings.drafts_dir:
        return DraftPolicy(settings.drafts_dir, True, settings.template)
    if settings.repo_dir and (settings.repo_dir / REPO_DRAFTS_DIR).is_dir():
        return DraftPolicy(settings.repo_dir / REPO_DRAFTS_DIR, False, settings.template)
    return DraftPolicy(settings.state_dir / "drafts", False, settings.template)


def write_incident_draft(
    ledger: Ledger,
    policy: DraftPolicy,
    incident: Incident,
    *,
    now: datetime,
    deadline_hours: float,
    force: bool = False,
    template: str | None = None,
) -> drafts.DraftResult:
    """(Re)render an incident's draft, refusing to clobber human edits unless forced."""
    report = stored.choose(ledger.signal_report_rows(incident.id), incident.id)
    previous_path, previous_sha, previous_template = ledger.draft_record(incident.id)
    template = template or previous_template or policy.template
    directory = Path(previous_path).parent if previous_path and not policy.explicit else policy.directory
    ensure_dir(directory, "drafts dir", "pass a real, writable --drafts-dir", DraftError)
    draft = drafts.write_draft(
        incident,
        drafts_dir=directory,
        template=template,
        previous_sha256=previous_sha,
        previous_path=Path(previous_path) if previous_path else None,
        force=force,
        now=now,
        timeline=timeline.build_timeline(incident, log_notes(report) if report else ()),
        deadline_hours=deadline_hours,
        seen_before=repeats.seen_before(ledger, incident),
        signals=report,
    )
    ledger.set_draft(incident.id, draft.path, draft.sha256, template)
    return draft
