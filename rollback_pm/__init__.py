"""rollback-pm: every production rollback becomes a complete, on-time postmortem."""

__version__ = "0.1.0"
