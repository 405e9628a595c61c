"""Exactly one ticket per rollback, when the tracker's search lags and answers get lost.

The two hazards (issue 15):

- A create whose answer is lost (the connection drops after the tracker made the issue)
  while the search lags behind writes. Jira Cloud documents /search/jql as eventually
  consistent; a Data Center cluster's index replicates; a forge's issue indexer or read
  replica can be behind. "Search, find nothing, create again" then makes a second ticket.
- Two runners with separate state dirs hook the same rollback at the same moment: each
  searches, finds nothing, and creates.

What the APIs offer, and why this design (the specs are in tests/specs/):

- No tracker takes a client idempotency key on create, and none has a compare-and-set
  we could use as a lock: Jira entity properties are last-writer-wins PUTs, and a
  Gitea/Forgejo label is no mutex either, since the forges accept a second label of the
  same name (POST /repos/{owner}/{repo}/labels answers 201, 404 or 422, never a conflict).
- Jira's ``reconcileIssues`` gives read-after-write for issue *ids the client names*, and
  a lost answer is exactly the case where the client does not have the id.
- What every tracker does offer is a strongly consistent read of one issue by its number
  (Jira GET /issue/{PROJECT}-{n}, forge GET /repos/{o}/{r}/issues/{n}), and numbers that are
  handed out in sequence per project or repository. Only the search lags.

So a create is made safe with direct reads by number:

1. Before creating, the newest number the search shows is the *mark* (if the search lags,
   the mark is lower than the truth, which only makes the next step read more). The
   numbers after it are read one by one until ``misses`` in a row do not exist: any issue
   there carrying the incident's unique label is the ticket (a lost create of an earlier
   run, another runner's), and nothing is created.
2. The create carries a marker of this attempt (a Jira issue property, a hidden comment in
   a forge issue's body). If its answer is lost, step 1's read is repeated: our issue (by
   its marker) is taken; another one with the label means ours never landed and that one
   is the ticket; nothing means the create did not happen, and only then is it sent again.
   The reads are consistent, so a lagging search can never cause a second create.
3. After creating, the numbers between the mark and our own are read: when another runner
   created one with the label first, the lowest number wins. The loser labels its own
   issue ``rollback-pm-duplicate``, takes the unique label off it, links it to the winner
   (a Jira "Duplicate" link, a forge "#n" reference in a comment), closes it, and
   returns the winner; the winner's runner never needs to know. Both runners end up
   recording the same ticket.

What is left: an issue numbered outside the scanned window (a search more than
``MAX_SCAN`` issues behind: then nothing is created and the ticket waits in the outbox
until the search has caught up), and a lost create that the tracker finishes only after
we looked (a request still running on the server after our timeout; we wait
``confirm_delay_s`` before looking). Every later search returns the lowest-numbered ticket
with the label, so both runners and every later run still agree on one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rollback_pm.errors import TrackerUnavailable
from rollback_pm.log import get_logger
from rollback_pm.models import TicketRef
from rollback_pm.trackers.base import answers

log = get_logger(__name__)

MISSES = 3  # numbers in a row that do not exist before the tail is taken to end (deleted issues leave gaps)
MAX_SCAN = 100  # direct reads per scan; a search further behind than this is waited out
DUPLICATE_LABEL = "rollback-pm-duplicate"


@dataclass(frozen=True)
class Seen:
    """One issue as a direct (consistent) read by its number shows it."""

    number: int
    ref: TicketRef
    labels: frozenset[str]
    attempt: str | None = None  # the create attempt's marker it carries, if any
    is_ticket: bool = True  # False: the number belongs to something else (a pull request)

    def answers(self, label: str) -> bool:
        """Is this the ticket a search for ``label`` means (never a pull request, nor a
        follow-up, which carries its incident's label too)?"""
        return self.is_ticket and answers(label, tuple(self.labels))


Read = Callable[[int], "Seen | None"]  # None: no issue has that number


def tail(read: Read, label: str, after: int, *, service: str) -> list[Seen]:
    """The issues numbered after ``after`` that carry ``label``, lowest first, read one by one
    until ``MISSES`` numbers in a row do not exist. TrackerUnavailable when more than
    ``MAX_SCAN`` exist (the search is too far behind to rule anything out)."""
    found: list[Seen] = []
    gap = 0
    number = after
    for _ in range(MAX_SCAN):
        number += 1
        seen = read(number)
        if seen is None:
            gap += 1
            if gap >= MISSES:
                return found
            continue
        gap = 0
        if seen.answers(label):
            found.append(seen)
    raise TrackerUnavailable(
        f"{service}'s search shows nothing newer than #{after}, yet more than {MAX_SCAN} issues follow it: "
        f"whether the ticket exists cannot be ruled out until the search catches up, so none is created now; "
        "`rollback-pm ticket flush` (cron runs it) tries again"
    )


def lower(read: Read, label: str, mine: int, after: int) -> Seen | None:
    """The lowest-numbered issue between ``after`` and ``mine`` (exclusive) with ``label``:
    another runner's create that came first. At most ``MAX_SCAN`` numbers below ``mine``
    are read (a race is between creates moments apart)."""
    start = max(after + 1, mine - MAX_SCAN)
    if start > after + 1:
        log.warning("duplicate check reads only the nearest issues", below=mine, skipped_from=after + 1, to=start)
    for number in range(start, mine):
        seen = read(number)
        if seen is not None and seen.answers(label):
            return seen
    return None


def settle(
    read: Read,
    label: str,
    mine: Seen,
    *,
    ours: bool,
    after: int,
    retire: Callable[[Seen, Seen], None],
) -> tuple[TicketRef, bool]:
    """(the ticket, whether it is the one this call created): the lowest number wins. Our own
    issue, when it lost, is retired as a duplicate of the winner."""
    winner = lower(read, label, mine.number, after)
    if winner is None:
        return mine.ref, ours
    if ours:
        log.warning(
            "another runner opened this rollback's ticket first; retiring ours as its duplicate",
            ours=mine.ref.key,
            winner=winner.ref.key,
        )
        retire(mine, winner)
    return winner.ref, False


def after_lost_answer(read: Read, label: str, after: int, attempt: str, *, service: str) -> tuple[Seen, bool] | None:
    """Whether a create whose answer was lost took effect: (our issue, True) by its attempt
    marker; (another one with the label, False) when ours never landed but a ticket exists;
    None when nothing with the label exists, so sending the create again is safe."""
    found = tail(read, label, after, service=service)
    ours = [s for s in found if s.attempt == attempt]
    if ours:
        return ours[0], True
    return (found[0], False) if found else None
