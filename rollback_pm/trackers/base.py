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

FOLLOWUP_LABEL = "followup"


def answers(label: str, labels: list[str] | tuple[str, ...]) -> bool:
    """Does a ticket with ``labels`` answer a search for ``label``? It must carry it; and a
    follow-up (labelled ``followup`` and its incident's ``rollback-pm-<id>``) answers only a
    search for its own label (``rollback-pm-<id>-<row>``), never one for its incident's ticket."""
    if label not in labels:
        return False
    return FOLLOWUP_LABEL not in labels or not any(other.startswith(label + "-") for other in labels)


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do; callers check these instead of asking which backend it is."""

    tickets: bool = True  # keeps tickets: creating, commenting and labelling mean something
    status: bool = True  # reads a ticket's state (open or resolved) back
    pull_requests: bool = False  # commits a draft to a branch and opens a pull request (open_pr)
    links: bool = False  # links two tickets natively (Jira issue links); else relate() comments a reference


@dataclass
class ExistingTicket(TicketRef):
    """What ``create`` returns when the incident's ticket turned out to exist already (a
    create whose answer was lost, another runner's ticket for the same rollback, a ticket
    file already there): nothing was created, and the caller treats it as found."""


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


@dataclass
class FollowupSpec:
    """One follow-up ticket: an action row of a postmortem, tied to the incident's ticket."""

    incident_id: str
    unique_label: str  # rollback-pm-<id>-<row key>: the search key that makes create idempotent
    title: str  # the row's action, one line
    body: Doc
    parent: TicketRef  # the incident's ticket: the follow-up is linked to it
    labels: list[str] = field(default_factory=list)  # rollback-pm-<id>, followup
    due_date: date | None = None  # the row's target date
    assignee: str | None = None  # a tracker user as find_user returned it (or the owner setting gave it)


@runtime_checkable
class Tracker(Protocol):
    """A ticket backend. Raise TrackerAuthError / TrackerNotFoundError / TrackerUnavailable /
    TrackerError; never put a token in a message."""

    name: str
    capabilities: Capabilities

    def find(self, unique_label: str) -> TicketRef | None:
        """The ticket carrying this label, if one exists."""

    def create(self, spec: TicketSpec) -> TicketRef:
        """Create a ticket (with labels, due date, attachments, pipeline link), never a second
        one for the same unique label: a ticket that turns out to exist already is returned
        as an ``ExistingTicket``."""

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

    def create_followup(self, spec: FollowupSpec) -> TicketRef:
        """Create a follow-up ticket with its labels, due date and assignee, linked to
        ``spec.parent``. Callers ``find(spec.unique_label)`` first; a create whose answer is
        lost is confirmed by that search before it is ever sent twice."""

    def update_followup(self, ticket: TicketRef, *, title: str, due_date: date | None, assignee: str | None) -> None:
        """Set a follow-up's summary, due date and (when not None) assignee to the row's current text."""

    def relate(self, ticket: TicketRef, other: TicketRef, note: Doc) -> None:
        """Mark two tickets as related: a native link where the tracker has them (Jira
        "Relates"), else ``note`` (which references ``other``) as a comment on ``ticket``.
        Safe to repeat for a native link; callers remember comments."""

    def find_user(self, owner: str) -> str | None:
        """The tracker user an action row's owner names (``@ana``, ``Ana Kovač``, an email),
        as create_followup takes it; None when there is no single match."""


class NoPullRequests:
    """The Protocol's ``open_pr`` for backends that have no pull requests."""

    name: str

    def open_pr(self, branch: str, path: str, content: str, title: str, body: str) -> str:
        raise TrackerError(f"the {self.name} tracker cannot open pull requests; --open-pr needs gitea or forgejo")
