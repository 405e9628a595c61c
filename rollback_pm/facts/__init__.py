"""The rollback's facts: smoke reports, SHAs, container state, timeline, suspect changes.

Each module is pure (no ledger, no CLI): it turns inputs the pipeline already has into
the models in ``rollback_pm.models``. Only ``woodpecker`` talks to a server; ``incident``
is the hook's facts stage, which gathers them all into one Incident.
"""
