"""The postmortem deadline, computed in this one place.

The ticket (``tickets``), the draft (``drafts``), the cron (``deadlines``) and every later
reader ask here, so they always agree: the deadline is the mitigation time plus the
environment's ``deadline_hours`` (counted from when the incident was recorded when no
mitigation time is known), and ``deadline_hours = 0`` means the environment has none.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from rollback_pm.config import Settings
from rollback_pm.models import Incident
from rollback_pm.timeutil import iso


def hours_for(settings: Settings, environment: str) -> float:
    """The environment's deadline_hours (its [environments.<env>] table applied); 0: no deadline."""
    return settings.for_environment(environment).deadline_hours


def due_at(incident: Incident, hours: float) -> datetime | None:
    """When the postmortem is due; None when there is no deadline (0 hours) or no start time."""
    if hours <= 0:
        return None
    start = incident.mitigated_at or incident.created_at
    return start + timedelta(hours=hours) if start else None


def describe(incident: Incident, hours: float) -> str:
    """The deadline in words, for the ticket and the draft."""
    if hours <= 0:
        return "There is no postmortem deadline in this environment."
    return f"The postmortem is due by {iso(due_at(incident, hours)) or 'unknown'} (mitigation + {hours:g}h)."
