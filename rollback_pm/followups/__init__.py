"""Follow-ups: the action rows of a postmortem as tickets, their state read back, and
reminders around their target dates (issue 19).

- ``rows``: the action rows of a draft (as lint reads them) and their stable row keys;
- ``sync``: one ticket per row, linked to the incident's ticket, its key written back
  into the draft without ever losing a human's edit;
- ``reminders``: status read back, warn once before and escalate once after a target date;
- ``run``: the pass `followups sync` and `check-deadlines` make.
"""

from rollback_pm.followups.reminders import FollowupCheck
from rollback_pm.followups.run import FollowupsRun, run_followups
from rollback_pm.followups.sync import RowOutcome, SyncResult

__all__ = ["FollowupCheck", "FollowupsRun", "RowOutcome", "SyncResult", "run_followups"]
