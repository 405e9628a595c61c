"""Repeat detection: earlier rollbacks of the same service that failed the same way.

An incident's failure signature (the ledger's ``signatures`` table; the signals stage
stores ``SignalReport.signature()`` for each incident) is its failed smoke step and the top
error templates of its logs. An earlier incident is a repeat of this one ("Seen before")
when all of these hold:

1. the same service and the same environment;
2. it rolled back earlier (its mitigation time, else when it was recorded);
3. the same failed smoke step, compared as the signature does: case aside, numbers as
   ``<num>``, whitespace collapsed (``3 API health`` = ``4 api  health``); no failed step
   on both sides counts as the same;
4. the same errors: the identical signature key, or top templates that overlap by at
   least half of the shorter list (``2 × shared ≥ min(len(a), len(b))``, both non-empty:
   with three templates each, two must be shared; a single template must be the other's).

So a different step, or different errors (no shared template, or too few), is never a
repeat. Two incidents whose logs held no error at all share a key only when their step
is the same, which the report counts as a repeat too.

A repeat is listed in the new draft's "Seen before" section with its date, postmortem,
ticket and open follow-ups, and the two tickets are linked once: a Jira "Relates" issue
link, or on a forge a comment on the new issue referencing the earlier one (the forge
shows the cross-reference on both).
"""

from __future__ import annotations

import re

from rollback_pm.errors import RollbackPmError, TrackerError
from rollback_pm.ledger import Ledger
from rollback_pm.log import get_logger, mask
from rollback_pm.models import FOLLOWUP_OPEN, Incident, Repeat, Signature, TicketRef
from rollback_pm.timeutil import iso
from rollback_pm.trackers.base import Tracker
from rollback_pm.trackers.markup import Doc, Span, code, issue_ref, link, strong, text

log = get_logger(__name__)

LINKED = "repeat"  # notification memory: "repeat:<earlier id>" on channel "ticket-link"


def normal_step(step: str | None) -> str | None:
    """A failed step as the signature compares it: case aside, numbers as <num>, whitespace collapsed."""
    if step is None or not step.strip():
        return None
    return " ".join(re.sub(r"\d+", "<num>", step.casefold()).split())


def same_failure(a: Signature, b: Signature) -> tuple[bool, list[str]]:
    """(whether ``a`` and ``b`` are the same failure by the rules above, the templates they share)."""
    shared = [t for t in dict.fromkeys(a.templates) if t in set(b.templates)]
    if normal_step(a.failed_step) != normal_step(b.failed_step):
        return False, shared
    if a.signature == b.signature:
        return True, shared
    left, right = set(a.templates), set(b.templates)
    if not left or not right:
        return False, shared
    return 2 * len(shared) >= min(len(left), len(right)), shared


def find_repeats(ledger: Ledger, incident: Incident, signature: Signature) -> list[Repeat]:
    """The earlier incidents of ``incident``'s service and environment that failed as
    ``signature`` says it did, newest first. Each record is read on its own: a damaged one
    is logged and left out."""
    candidates, damaged = ledger.read_signatures(service=incident.service, environment=incident.environment)
    for problem in damaged:
        log.warning("a failure signature could not be read; it is not compared", problem=problem)
    this_time = incident.mitigated_at or incident.created_at
    found: list[Repeat] = []
    for other in candidates:
        if other.incident_id == incident.id:
            continue
        same, shared = same_failure(signature, other)
        if not same:
            continue
        try:
            earlier = ledger.get(other.incident_id)
        except RollbackPmError as exc:
            log.warning(
                "an earlier incident could not be read; it is not listed", incident=other.incident_id, error=str(exc)
            )
            continue
        when = earlier.mitigated_at or earlier.created_at
        if this_time is not None and (when is None or when > this_time):
            continue
        if when == this_time and not ledger.recorded_before(earlier.id, incident.id):
            continue  # the same second: the one recorded first is the earlier
        followups, _ = ledger.read_followups(earlier.id)
        found.append(
            Repeat(
                incident_id=earlier.id,
                service=earlier.service,
                environment=earlier.environment,
                day=(iso(earlier.started_at or earlier.detected_at or when) or "")[:10],
                rolled_back_at=when,
                failed_step=other.failed_step,
                shared_templates=shared,
                draft_path=earlier.draft_path,
                ticket=earlier.ticket,
                open_followups=[f for f in followups if f.status == FOLLOWUP_OPEN],
            )
        )
    found.sort(key=lambda r: (iso(r.rolled_back_at) or "", r.incident_id), reverse=True)
    return found


def seen_before(ledger: Ledger, incident: Incident) -> list[Repeat] | None:
    """The repeats of an incident by its recorded signature; None when it has none to compare."""
    try:
        signature = ledger.get_signature(incident.id)
    except RollbackPmError as exc:
        log.warning("the incident's failure signature could not be read", incident=incident.id, error=str(exc))
        return None
    return find_repeats(ledger, incident, signature) if signature is not None else None


def _reference(ticket: TicketRef) -> list[Span | str]:
    spans: list[Span | str] = [issue_ref(ticket.key)]
    if ticket.url.startswith(("http://", "https://")):
        spans += [" (", link(ticket.url, ticket.url), ")"]
    return spans


def repeat_note(incident: Incident, repeat: Repeat) -> Doc:
    """The comment that ties the new incident's ticket to the earlier one's."""
    assert repeat.ticket is not None
    step: list[Span | str] = [" ", code(repeat.failed_step)] if repeat.failed_step else []
    doc = Doc().paragraph(
        strong("Seen before:"),
        " this rollback of ",
        text(incident.service),
        " on ",
        text(incident.environment),
        " failed the same way as incident ",
        code(repeat.incident_id),
        f" of {repeat.day}, ticket ",
        *_reference(repeat.ticket),
        ": the same failed smoke step",
        *step,
        " and the same errors in the logs.",
    )
    if repeat.shared_templates:
        doc.bullets([[code(t)] for t in repeat.shared_templates])
    if repeat.open_followups:
        doc.paragraph("Its follow-ups still open:")
        doc.bullets(
            [
                [text(f.action), " (", link(f.key, f.url) if f.key and f.url else code(f.key or "no ticket"), ")"]
                for f in repeat.open_followups
            ]
        )
    return doc


def link_repeats(
    ledger: Ledger, tracker: Tracker, incident: Incident, repeats: list[Repeat] | None, *, dry_run: bool = False
) -> tuple[list[str], list[str]]:
    """Link the incident's ticket to each repeat's, once each: (what was linked, what could not be)."""
    ticket = incident.ticket
    if not repeats or not tracker.capabilities.tickets or ticket is None or ticket.tracker != tracker.name:
        return [], []
    linked, problems = [], []
    for repeat in repeats:
        other = repeat.ticket
        if other is None or other.tracker != tracker.name or other.key == ticket.key:
            continue
        memory = f"{LINKED}:{repeat.incident_id}"
        if ledger.notified(incident.id, memory, "ticket-link"):
            continue
        if dry_run:
            linked.append(f"would link {ticket.key} to {other.key} (incident {repeat.incident_id})")
            continue
        try:
            tracker.relate(ticket, other, repeat_note(incident, repeat))
        except TrackerError as exc:
            problems.append(
                f"{incident.id}: {ticket.key} not linked to {other.key}: {mask(str(exc))}; the next run retries"
            )
            continue
        ledger.record_notification(incident.id, memory, "ticket-link")
        linked.append(f"linked {ticket.key} to {other.key} (incident {repeat.incident_id}, seen before)")
    return linked, problems
