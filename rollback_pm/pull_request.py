"""`--open-pr`: the draft committed to postmortem/<id> on the forge, with a pull request, once."""

from __future__ import annotations

from rollback_pm.config import REPO_DRAFTS_DIR
from rollback_pm.drafts import DraftResult
from rollback_pm.ledger import Ledger
from rollback_pm.models import Incident
from rollback_pm.trackers.base import Tracker

NOTICE = ("pull-request", "forge")  # the ledger's record that the pull request exists


def open_draft_pull_request(tracker: Tracker, ledger: Ledger, incident: Incident, draft: DraftResult) -> str | None:
    """The pull request's URL; None when an earlier run opened it. Raises TrackerError."""
    if ledger.notified(incident.id, *NOTICE):
        return None
    url = tracker.open_pr(
        branch=f"postmortem/{incident.id}",
        path=f"{REPO_DRAFTS_DIR}/{draft.path.name}",
        content=draft.path.read_text(encoding="utf-8"),
        title=f"Postmortem: {incident.service} {incident.environment} rollback",
        body=f"The postmortem draft for incident `{incident.id}`"
        + (f" ({incident.ticket.key})" if incident.ticket else "")
        + ".",
    )
    ledger.record_notification(incident.id, *NOTICE)
    return url
