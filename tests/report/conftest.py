"""A small ledger with hand-computed figures, built through the Ledger API on a real SQLite
file (tests/report/README-figures in the docstring of ``seeded`` says what each one is)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from rollback_pm.ledger import Ledger
from rollback_pm.models import EvidenceFile, Followup, Incident, Signature, TicketRef
from rollback_pm.report.data import Scope

NOW = datetime(2026, 5, 20, 12, 0, tzinfo=timezone.utc)  # a Wednesday
SINCE = NOW - timedelta(days=21)  # 2026-04-29T12:00Z, in the week of Monday 2026-04-27
NOW_ARG = "2026-05-20T12:00:00Z"


def at(day: int, hour: int, minute: int = 0, month: int = 5) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=timezone.utc)


def hours(environment: str) -> float:
    """The seeded config: staging has no postmortem deadline, everything else 24h."""
    return 0.0 if environment == "staging" else 24.0


@dataclass
class Seeded:
    state: Path
    ids: dict[str, str]  # letter -> incident id

    def scope(self, **filters: str | None) -> Scope:
        return Scope(since=SINCE, until=NOW, **filters)  # type: ignore[arg-type]

    def ledger(self) -> Ledger:
        return Ledger(self.state)


def _incident(ledger: Ledger, n: int, service: str, env: str, **times) -> str:
    stored, _ = ledger.upsert_incident(
        Incident(
            id="",
            service=service,
            environment=env,
            deploy_sha=f"{n:040x}",
            rollback_sha=f"{n + 100:040x}",
            pipeline_number=str(n),
            detected_by="smoke test",
            **times,
        )
    )
    return stored.id


def seed(state: Path) -> Seeded:
    """Six incidents in the period (A-F), one before it (G), one with a broken record (H).

    | | service/env | live | detected | mitigated (rollback time) | postmortem |
    |-|-|-|-|-|-|
    | A | api/production | 05-05 10:00 | +2m | 10:10 | done 05-05 20:00, on time |
    | B | api/production | 05-06 09:00 | +5m | 09:20 | done 05-08 12:00, late (due 05-07 09:20) |
    | C | web/production | unknown | 05-12 08:00 | 08:30 | open, overdue (due 05-13 08:30) |
    | D | web/staging | 05-13 10:00 | +10m | 10:40 | open, no deadline |
    | E | worker/production | 05-20 08:00 | unknown | 09:00 | open (due 05-21 09:00) |
    | F | api/production | 05-14 10:00 | 09:50 (before live) | 10:30 | done, when unknown |
    | G | api/production | 04-01 10:00 | +1m | 10:05 | before the period |
    | H | api/production | broken started_at | | 05-15 10:00 | left out, listed |

    Signatures: S1 for A, B, F (a repeat); S2 for C and G (G is outside: no repeat).
    Follow-ups: A past due (target 05-10) and closed; B open (target 06-01); D open without
    a target date; G one that is outside the period.
    """
    with Ledger(state) as ledger:
        ids = {
            "A": _incident(ledger, 1, "api", "production", started_at=at(5, 10), detected_at=at(5, 10, 2), mitigated_at=at(5, 10, 10)),
            "B": _incident(ledger, 2, "api", "production", started_at=at(6, 9), detected_at=at(6, 9, 5), mitigated_at=at(6, 9, 20)),
            "C": _incident(ledger, 3, "web", "production", detected_at=at(12, 8), mitigated_at=at(12, 8, 30)),
            "D": _incident(ledger, 4, "web", "staging", started_at=at(13, 10), detected_at=at(13, 10, 10), mitigated_at=at(13, 10, 40)),
            "E": _incident(ledger, 5, "worker", "production", started_at=at(20, 8), mitigated_at=at(20, 9)),
            "F": _incident(ledger, 6, "api", "production", started_at=at(14, 10), detected_at=at(14, 9, 50), mitigated_at=at(14, 10, 30)),
            "G": _incident(ledger, 7, "api", "production", started_at=at(1, 10, month=4), detected_at=at(1, 10, 1, month=4), mitigated_at=at(1, 10, 5, month=4)),
            "H": _incident(ledger, 8, "api", "production", started_at=at(15, 9), mitigated_at=at(15, 10)),
        }  # fmt: skip
        ledger.mark_done(ids["A"], at(5, 20))
        ledger.mark_done(ids["B"], at(8, 12))
        ledger.set_status(ids["F"], "done")  # done before the ledger kept the time
        ledger.set_ticket(ids["A"], TicketRef("jira", "OPS-1", "https://jira.example.com/browse/OPS-1", "Done"))
        ledger.set_ticket(ids["C"], TicketRef("file", "PM-3", (state / "tickets" / "PM-3.json").as_uri()))
        ledger.set_draft(ids["A"], state / "drafts" / "a.md", "0" * 64, "azaion")
        ledger.add_evidence(
            ids["A"],
            [
                EvidenceFile("/var/log/azaion/rollback-20260505T101000Z.log", "log", "0" * 64, 10, "20260505T101000Z"),
                EvidenceFile(
                    "/var/log/azaion/rollback-20260505T101000Z.manifest.json",
                    "manifest",
                    "1" * 64,
                    10,
                    "20260505T101000Z",
                ),
            ],
        )
        for letter, signature in (("A", "S1"), ("B", "S1"), ("F", "S1"), ("C", "S2"), ("G", "S2")):
            ledger.set_signature(Signature(ids[letter], signature, "3 api health" if signature == "S1" else "2 web"))
        for letter, key, target, status in (
            ("A", "p1", "2026-05-10", "open"),
            ("A", "p2", "2026-05-10", "closed"),
            ("B", "p1", "2026-06-01", "open"),
            ("D", "p1", None, "open"),
            ("G", "p1", "2026-04-10", "open"),
        ):
            ledger.upsert_followup(
                Followup(ids[letter], key, f"action {letter}{key}", target_date=target, status=status)
            )
        # a hand edit gone wrong: one unreadable value in one record
        ledger.db.execute("UPDATE incidents SET started_at = 'yesterday' WHERE id = ?", (ids["H"],))
    return Seeded(state=state, ids=ids)


@pytest.fixture
def seeded(tmp_path: Path) -> Seeded:
    return seed(tmp_path / "state")


@pytest.fixture(scope="session")
def chromium(tmp_path_factory):
    """A headless chromium for the browser tests. Without chromium they FAIL (never skip
    silently) unless ROLLBACK_PM_SKIP_BROWSER=1 asks to skip them, visibly."""
    from tests.support.cdp import Chromium, chromium_path

    if chromium_path() is None:
        if os.environ.get("ROLLBACK_PM_SKIP_BROWSER") == "1":
            pytest.skip("ROLLBACK_PM_SKIP_BROWSER=1: browser tests skipped on request")
        pytest.fail(
            "chromium is not installed: run scripts/bootstrap.sh (it installs Debian's chromium), "
            "or set ROLLBACK_PM_SKIP_BROWSER=1 to skip the browser tests"
        )
    browser = Chromium(tmp_path_factory.mktemp("chromium") / "profile")
    yield browser
    browser.close()
