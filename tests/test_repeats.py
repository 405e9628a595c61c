"""Repeat detection: earlier rollbacks of the same service and environment with the same
failed step and the same errors are "Seen before" in the draft, and their tickets linked;
a different step, error, service or environment, or a later rollback, is never a repeat.
Signatures are seeded through the Ledger API, as the signals stage stores them."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from rollback_pm import repeats
from rollback_pm.followups.sync import Syncer
from rollback_pm.hook import repeats_stage
from rollback_pm.ledger import Ledger
from rollback_pm.lint import lint_text
from rollback_pm.models import Incident, Signature
from rollback_pm.placement import DraftPolicy, write_incident_draft
from rollback_pm.repeats import normal_step, same_failure
from rollback_pm.tickets import open_ticket
from rollback_pm.trackers.file import FileTracker
from tests.followups.conftest import ForgeSide, JiraSide
from tests.followups.drafting import T0, Item, fill, record, write
from tests.support.fake_gitea import FakeGitea
from tests.support.fake_jira import FakeJira

MIGRATION = "line::FATAL: column <*> of relation <*> does not exist"
POOL = "line::ERROR: connection pool exhausted after <NUM>ms"
OOM = "trace:python:MemoryError"
TIMEOUT = "line::upstream timed out after <NUM>s"


def sig(step: str | None, *templates: str, key: str | None = None) -> Signature:
    return Signature(
        incident_id="",
        signature=key or f"{step}|{'|'.join(sorted(templates))}",
        failed_step=step,
        templates=list(templates),
    )


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        (sig("3 api health", MIGRATION), sig("3 api health", MIGRATION), True),  # the same key
        (sig("3 api health", MIGRATION, POOL, OOM), sig("3 API  Health", MIGRATION, POOL, TIMEOUT), True),  # 2 of 3
        (sig("<NUM> api health", MIGRATION), sig("4 api health", MIGRATION, TIMEOUT), True),  # numbers aside
        (sig(None, MIGRATION), sig(None, MIGRATION, POOL), True),  # no failed step on both sides
        (sig("3 api health", MIGRATION), sig("5 login", MIGRATION), False),  # a different step
        (sig("3 api health", MIGRATION), sig("3 api health", OOM), False),  # a different error
        (sig("3 api health", MIGRATION, POOL, OOM), sig("3 api health", MIGRATION, TIMEOUT, "x"), False),  # 1 of 3
        (sig("3 api health", MIGRATION), sig("3 api health"), False),  # errors on one side only
        (sig("3 api health", MIGRATION), sig(None, MIGRATION), False),  # a step on one side only
        (sig("3 api health", key="k"), sig("3 api health", key="k"), True),  # no errors either side: the same key
    ],
)
def test_the_match_rules(a, b, same):
    assert same_failure(a, b)[0] is same
    assert same_failure(b, a)[0] is same


def test_a_step_is_compared_as_the_signature_normalises_it():
    assert normal_step("3 API   health") == normal_step("<NUM> api health") == "<num> api health"
    assert normal_step("  ") is None


def stored(
    ledger: Ledger, state: Path, hours: int, *, service="api", environment="production", pipeline_suffix="", **kw
) -> Incident:
    return record(
        ledger,
        state,
        service=service,
        environment=environment,
        pipeline=f"p{hours}-{service}-{environment}{pipeline_suffix}",
        mitigated=T0 + timedelta(hours=hours),
        **kw,
    )


def signed(ledger: Ledger, incident: Incident, step: str | None, *templates: str) -> Incident:
    ledger.set_signature(Signature(incident.id, f"{step}|{'|'.join(sorted(templates))}", step, list(templates)))
    return incident


def test_earlier_incidents_of_the_same_service_and_environment_that_failed_the_same_way(tmp_path):
    state = tmp_path / "state"
    with Ledger(state) as ledger:
        earlier = signed(ledger, stored(ledger, state, 0), "3 api health", MIGRATION, POOL)
        oldest = signed(ledger, stored(ledger, state, -48), "3 api health", MIGRATION)
        signed(ledger, stored(ledger, state, 1, environment="staging"), "3 api health", MIGRATION, POOL)
        signed(ledger, stored(ledger, state, 2, service="web"), "3 api health", MIGRATION, POOL)
        signed(ledger, stored(ledger, state, 3, step="login"), "5 login", MIGRATION, POOL)
        signed(ledger, stored(ledger, state, 4), "3 api health", OOM, TIMEOUT)
        stored(ledger, state, 5)  # no signature: nothing to compare
        new = signed(ledger, stored(ledger, state, 10), "3 api health", MIGRATION, POOL)
        later = signed(ledger, stored(ledger, state, 20), "3 api health", MIGRATION, POOL)

        found = repeats.seen_before(ledger, ledger.get(new.id))
        assert [(r.incident_id, r.day, r.shared_templates) for r in found] == [
            (earlier.id, "2026-05-13", [MIGRATION, POOL]),
            (oldest.id, "2026-05-11", [MIGRATION]),
        ]
        assert later.id not in {r.incident_id for r in found}
        assert [r.incident_id for r in repeats.seen_before(ledger, ledger.get(later.id))] == [
            new.id,
            earlier.id,
            oldest.id,
        ]
        assert repeats.seen_before(ledger, ledger.get(oldest.id)) == []
        unsigned = stored(ledger, state, 30)
        assert repeats.seen_before(ledger, unsigned) is None


def test_two_rollbacks_in_the_same_second_the_one_recorded_first_is_the_earlier(tmp_path):
    # times are kept to the second: a quick second rollback can share its first's mitigation time
    state = tmp_path / "state"
    with Ledger(state) as ledger:
        first = signed(ledger, stored(ledger, state, 0, pipeline_suffix="a"), "3 api health", MIGRATION)
        second = signed(ledger, stored(ledger, state, 0, pipeline_suffix="b"), "3 api health", MIGRATION)
        assert ledger.get(first.id).mitigated_at == ledger.get(second.id).mitigated_at
        assert [r.incident_id for r in repeats.seen_before(ledger, ledger.get(second.id))] == [first.id]
        assert repeats.seen_before(ledger, ledger.get(first.id)) == []


def test_a_damaged_signature_is_left_out_not_fatal(tmp_path):
    state = tmp_path / "state"
    with Ledger(state) as ledger:
        earlier = signed(ledger, stored(ledger, state, 0), "3 api health", MIGRATION)
        broken = signed(ledger, stored(ledger, state, 1), "3 api health", MIGRATION)
        ledger.db.execute("UPDATE signatures SET templates_json = '{no' WHERE incident_id = ?", (broken.id,))
        new = signed(ledger, stored(ledger, state, 10), "3 api health", MIGRATION)
        assert [r.incident_id for r in repeats.seen_before(ledger, new)] == [earlier.id]


@pytest.mark.parametrize("template", ["azaion", "blameless", "sev", "finance"])
def test_the_draft_lists_them_in_seen_before(tmp_path, template):
    state = tmp_path / "state"
    tracker = FileTracker(state)
    with Ledger(state) as ledger:
        earlier = signed(ledger, stored(ledger, state, 0, template=template), "3 api health", MIGRATION)
        open_ticket(ledger, tracker, earlier)
        write(
            earlier,
            fill(Path(earlier.draft_path).read_text(), [Item("@ana", "Check migrations \\| in CI", "2026-06-01")]),
        )
        Syncer(ledger, tracker).sync(ledger.get(earlier.id))
        new = signed(ledger, stored(ledger, state, 10, template=template), "3 api health", MIGRATION)
        draft = write_incident_draft(
            ledger, DraftPolicy(state / "drafts", True, template), ledger.get(new.id), now=T0, deadline_hours=24
        )
        text = draft.path.read_text()
        section = text[text.index("## Seen before") : text.index("\n## ", text.index("## Seen before") + 1)]
        lines = section.splitlines()
        assert "| Date | Incident | Postmortem | Ticket | Open follow-ups |" in lines
        [row] = [line for line in lines if line.startswith("| 2026-")]
        assert row == (
            f"| 2026-05-13 | `{earlier.id}` | `{earlier.draft_path}` | PM-{earlier.id} | "
            "FU-1: Check migrations \\| in CI (due 2026-06-01) |"
        )
        start = text[: text.index("## Seen before")].count("\n") + 1
        findings = [f for f in lint_text(text, now=T0) if start <= f.line < start + len(lines)]
        assert findings == []  # nothing for a human to fill in there


def test_a_draft_says_when_there_is_nothing_to_compare(tmp_path):
    state = tmp_path / "state"
    with Ledger(state) as ledger:
        unsigned = stored(ledger, state, 0)
        assert "Not compared: no failure signature" in Path(unsigned.draft_path).read_text()
        alone = signed(ledger, stored(ledger, state, 1), "3 api health", MIGRATION)
        text = write_incident_draft(
            ledger, DraftPolicy(state / "drafts", True, "azaion"), alone, now=T0, deadline_hours=24
        ).path.read_text()
        assert "No earlier rollback of api on production failed the same way." in text


@pytest.mark.parametrize("kind", ["jira-v3", "jira-v2", "gitea", "forgejo"])
def test_the_tickets_are_linked_once(tmp_path, kind):
    fake = FakeJira(api_version=int(kind[-1])) if kind.startswith("jira") else FakeGitea(kind=kind)
    state = tmp_path / "state"
    with fake, Ledger(state) as ledger:
        side = JiraSide(fake) if isinstance(fake, FakeJira) else ForgeSide(fake)
        earlier = signed(ledger, stored(ledger, state, 0), "3 api health", MIGRATION)
        old_ticket = open_ticket(ledger, side.tracker, earlier).ticket
        other = signed(ledger, stored(ledger, state, 1), "5 login", MIGRATION)
        open_ticket(ledger, side.tracker, other)
        new = signed(ledger, stored(ledger, state, 10), "3 api health", MIGRATION)
        new_ticket = open_ticket(ledger, side.tracker, new).ticket

        found, problems = repeats_stage(ledger, side.tracker, ledger.get(new.id))
        assert ([r.incident_id for r in found], problems) == ([earlier.id], [])
        if isinstance(side, JiraSide):
            assert fake.linked(new_ticket.key) == [("Relates", old_ticket.key)]
        else:
            assert fake.references(side.number(old_ticket.key)) == [side.number(new_ticket.key)]
            [note] = side.comments(new_ticket.key)
            assert note.startswith(
                "**Seen before:** this rollback of api on production failed the same way as incident"
            )
        comments = side.comments(new_ticket.key)
        assert repeats_stage(ledger, side.tracker, ledger.get(new.id)) == (found, [])  # a rerun links nothing again
        assert side.comments(new_ticket.key) == comments
        other_key = ledger.get(other.id).ticket.key
        if isinstance(side, JiraSide):  # a different step: never linked
            assert ("Relates", other_key) not in fake.linked(new_ticket.key)
        else:
            assert fake.references(side.number(other_key)) == []
    assert fake.failures == []


def test_a_link_that_failed_is_made_by_the_next_run(tmp_path):
    state = tmp_path / "state"
    tracker = FileTracker(state)
    with Ledger(state) as ledger:
        earlier = signed(ledger, stored(ledger, state, 0), "3 api health", MIGRATION)
        old_ticket = open_ticket(ledger, tracker, earlier).ticket
        new = signed(ledger, stored(ledger, state, 10), "3 api health", MIGRATION)
        new_ticket = open_ticket(ledger, tracker, new).ticket
        path = state / "tickets" / f"{old_ticket.key}.json"
        saved = path.read_text()
        path.write_text("not a ticket")
        found, problems = repeats_stage(ledger, tracker, ledger.get(new.id))
        assert [r.incident_id for r in found] == [earlier.id]
        assert len(problems) == 1 and problems[0].startswith(
            f"{new.id}: {new_ticket.key} not linked to {old_ticket.key}"
        )
        path.write_text(saved)
        linked, problems = repeats.link_repeats(ledger, tracker, ledger.get(new.id), repeats.seen_before(ledger, new))
        assert (linked, problems) == (
            [f"linked {new_ticket.key} to {old_ticket.key} (incident {earlier.id}, seen before)"],
            [],
        )
