"""The one Protocol every tracker backend implements, and what flows through it.

Backends are pure transport: they find, create, comment, label, attach and read status.
The find-or-create policy, the outbox and the ledger live in ``rollback_pm.tickets``.
What a backend can do is in its ``capabilities``; callers ask those, never its name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Protocol, runtime_checkable

from rollback_pm.errors import TrackerError
from rollback_pm.models import TicketRef
from rollback_pm.trackers.markup import Doc


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do; callers check these instead of asking which backend it is."""

    tickets: bool = True  # keeps tickets: creating, commenting and labelling mean something
    status: bool = True  # reads a ticket's state (open or resolved) back
    pull_requests: bool = False  # commits a draft to a branch and opens a pull request (open_pr)


@dataclass
class TicketSpec:
    """What to open for one incident."""

    incident_id: str
    unique_label: str  # rollback-pm-<id>: the search key that makes create idempotent
    title: str
    body: Doc  # data, never markup; backends render it (Markdown, ADF, wiki markup: trackers/markup.py)
    labels: list[str] = field(default_factory=list)  # postmortem, rollback, env, service
    due_date: date | None = None
    severity: str | None = None  # azaion scale; backends map it to a priority
    pipeline_url: str | None = None
    attachments: list[Path] = field(default_factory=list)


@runtime_checkable
class Tracker(Protocol):
    """A ticket backend. Raise TrackerAuthError / TrackerNotFoundError / TrackerUnavailable /
    TrackerError; never put a token in a message."""

    name: str
    capabilities: Capabilities

    def find(self, unique_label: str) -> TicketRef | None:
        """The ticket carrying this label, if one exists."""

    def create(self, spec: TicketSpec) -> TicketRef:
        """Create a ticket (with labels, due date, attachments, pipeline link)."""

    def comment(self, ticket: TicketRef, text: Doc | str) -> None:
        """Add a comment: a document, or a plain string shown as text (never parsed as markup)."""

    def add_label(self, ticket: TicketRef, label: str) -> None:
        """Add a label, creating it on the tracker if it must exist first."""

    def attach(self, ticket: TicketRef, path: Path) -> None:
        """Upload a file to the ticket, where the tracker supports attachments."""

    def status(self, ticket: TicketRef) -> str:
        """'open' or 'resolved' (closed/done), read from the tracker."""

    def open_pr(self, branch: str, path: str, content: str, title: str, body: str) -> str:
        """Commit ``content`` to ``path`` on ``branch`` and open a pull request; its URL.
        Only backends with ``capabilities.pull_requests``; the others raise TrackerError."""


class NoPullRequests:
    """The Protocol's ``open_pr`` for backends that have no pull requests."""

    name: str

    def open_pr(self, branch: str, path: str, content: str, title: str, body: str) -> str:
        raise TrackerError(f"the {self.name} tracker cannot open pull requests; --open-pr needs gitea or forgejo")
