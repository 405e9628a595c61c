"""Domain errors. Library code raises these; only cli.py turns them into exit codes.

"Done but degraded" (exit 3) is not an error: the work was done, and the commands in
``rollback_pm.commands`` return EXIT_DEGRADED when their result lists what is missing.

Every message says what is wrong *and* what to do next, because the reader is an
on-call engineer in the middle of an incident.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_DEGRADED = 3


class RollbackPmError(Exception):
    """Base class: a failure we expected and can explain."""

    exit_code = EXIT_FAILED


class UsageError(RollbackPmError):
    """Bad flags, bad input files, malformed values (exit 2)."""

    exit_code = EXIT_USAGE


class ConfigError(UsageError):
    """The configuration file or a setting is invalid."""


class InvalidShaError(UsageError):
    """A SHA is not a full 40-hex commit id."""


class SmokeReportError(UsageError):
    """A smoke report cannot be read or parsed; names the file and line."""

    def __init__(self, path: str, message: str, line: int | None = None) -> None:
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"smoke report {where}: {message}")
        self.path = path
        self.line = line


class NoContainersMatched(UsageError):
    """The selection matched no container."""


class DockerUnavailable(RollbackPmError):
    """The Docker engine cannot be reached."""


class EvidenceDirError(RollbackPmError):
    """The evidence directory is missing, not writable, unsafe or full."""


class LedgerError(RollbackPmError):
    """The SQLite ledger cannot be opened or written."""


class IncidentNotFound(UsageError):
    """No incident with that id (or id prefix) is in the ledger."""


class DraftError(RollbackPmError):
    """A draft cannot be rendered or written."""


class DraftEditedError(UsageError):
    """The draft on disk was edited by a human; refuse to overwrite without --force."""


class TemplateError(UsageError):
    """A template name or file is unknown or invalid."""


class TrackerError(RollbackPmError):
    """The tracker failed. Messages never contain the token."""


class TrackerAuthError(TrackerError):
    """401/403 from the tracker: the credentials setting needs fixing."""


class TrackerNotFoundError(TrackerError):
    """404 from the tracker: the project/repository setting needs fixing."""


class TrackerUnavailable(TrackerError):
    """The tracker is down or rate-limiting past our retry budget; safe to queue."""


class TicketFileError(TrackerError):
    """A file tracker's ticket file is not a ticket (garbage, wrong fields, a symlink)."""


class WebhookError(RollbackPmError):
    """The chat webhook did not accept a notification. Messages never contain its URL."""


class SignalsError(RollbackPmError):
    """The bundle log cannot be read for its signals."""


class WoodpeckerError(RollbackPmError):
    """The Woodpecker API failed."""
