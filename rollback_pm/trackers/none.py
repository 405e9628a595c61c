"""`--tracker none`: record the incident and draft, open no ticket anywhere."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from rollback_pm.models import TicketRef
from rollback_pm.trackers.base import Capabilities, FollowupSpec, NoPullRequests, TicketSpec
from rollback_pm.trackers.markup import Doc


class NoneTracker(NoPullRequests):
    name = "none"
    capabilities = Capabilities(tickets=False, status=False)

    def find(self, unique_label: str) -> TicketRef | None:
        return None

    def create(self, spec: TicketSpec) -> TicketRef:
        return TicketRef(tracker=self.name, key="-", url="", status="open")

    def comment(self, ticket: TicketRef, text: Doc | str) -> None:
        return None

    def add_label(self, ticket: TicketRef, label: str) -> None:
        return None

    def attach(self, ticket: TicketRef, path: Path) -> None:
        return None

    def status(self, ticket: TicketRef) -> str:
        return ticket.status

    def create_followup(self, spec: FollowupSpec) -> TicketRef:
        return TicketRef(tracker=self.name, key="-", url="", status="open")

    def update_followup(self, ticket: TicketRef, *, title: str, due_date: date | None, assignee: str | None) -> None:
        return None

    def relate(self, ticket: TicketRef, other: TicketRef, note: Doc) -> None:
        return None

    def find_user(self, owner: str) -> str | None:
        return None
