"""Exactly one ticket per rollback (issue 15), on Jira Cloud (v3), Jira Data Center (v2),
Gitea and Forgejo, against fakes whose search lags behind their writes the way Jira Cloud's
/search/jql does (tens of seconds here, so it is never the search that saves us):

- a create whose answer is lost (the issue is made, the connection drops) is recognised by
  reading issues by number, never by searching and creating again;
- when the tracker goes down right after such a create, the ticket is queued, and the flush
  that follows, still inside the search's lag, finds the issue instead of making another;
- two runners with separate state dirs that hook the same rollback at the same moment (both
  creates held at a gate until both have been sent) end with one open ticket: the higher
  number is marked a duplicate of the lower, linked to it and closed, and both ledgers
  record the lower one. Once in threads, once as two `rollback-pm hook` processes;
- a search further behind than the reads by number may cover waits in the outbox rather
  than create a ticket that may exist.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path

import pytest

from rollback_pm import tickets
from rollback_pm.ledger import Ledger
from rollback_pm.models import Incident, SmokeStep
from rollback_pm.trackers.claim import DUPLICATE_LABEL, MAX_SCAN
from rollback_pm.trackers.gitea import GiteaTracker
from rollback_pm.trackers.jira import JiraTracker
from tests.support.fake_gitea import FakeGitea
from tests.support.fake_jira import FakeJira

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 5, 13, 8, 47, 21, tzinfo=timezone.utc)
DEPLOY = "0123456789abcdef" * 2 + "01234567"
ROLLBACK = "fedcba9876543210" * 2 + "fedcba98"
KINDS = ["jira-v3", "jira-v2", "gitea", "forgejo"]
LAG = 30.0  # seconds the fakes' search lags behind their writes


def incident() -> Incident:
    return Incident(
        id="",
        service="api",
        environment="production",
        deploy_sha=DEPLOY,
        rollback_sha=ROLLBACK,
        rollback_sha_source="flag",
        pipeline_number="42",
        mitigated_at=T0,
        detected_at=T0,
        detected_by="smoke test",
        smoke_steps=[SmokeStep(name="api health", status="failed", step=3, ts=T0, message="502")],
    )


class Served:
    """A fake tracker with a lagging search, and trackers (one per runner) that talk to it."""

    def __init__(self, kind: str, fake: FakeJira | FakeGitea, clock) -> None:
        self.kind, self.fake, self.clock = kind, fake, clock

    @property
    def create_route(self) -> str:
        return f"/rest/api/{self.fake.api_version}/issue" if self.jira else "/repos/{owner}/{repo}/issues"

    @property
    def read_route(self) -> str:
        return (
            f"/rest/api/{self.fake.api_version}/issue/{{issueIdOrKey}}"
            if self.jira
            else "/repos/{owner}/{repo}/issues/{index}"
        )

    @property
    def jira(self) -> bool:
        return self.kind.startswith("jira")

    def tracker(self, **kwargs):
        timing = dict(sleep=self.clock.sleep, clock=self.clock.monotonic) if self.clock else {}
        timing.update(kwargs)
        fake = self.fake
        if self.jira:
            return JiraTracker(
                fake.url,
                fake.project,
                fake.token,
                email=fake.email if fake.api_version == 3 else None,
                api_version=fake.api_version,
                **timing,
            )
        return GiteaTracker(fake.url, fake.repo, fake.token, kind=self.kind, **timing)

    def labelled(self, label: str, *, open_only: bool = False) -> list:
        return self.fake.labelled(label, open_only=open_only)

    def all_issues(self) -> list:
        return list(self.fake.issues)

    def creates(self) -> int:
        return len(self.fake.server.calls("POST", self.create_route))

    def cli_flags(self) -> list[str]:
        fake = self.fake
        if self.jira:
            flags = ["--tracker", "jira", "--tracker-url", fake.url, "--jira-project", fake.project]
            flags += ["--jira-api", str(fake.api_version)]
            return flags + (["--jira-email", fake.email] if fake.api_version == 3 else [])
        return ["--tracker", self.kind, "--tracker-url", fake.url, "--forge-repo", fake.repo]


def serve(kind: str, clock, lag: float = LAG):
    timing = {"search_lag": lag, "clock": clock.monotonic} if clock else {"search_lag": lag}
    fake = FakeJira(api_version=int(kind[-1]), **timing) if kind.startswith("jira") else FakeGitea(kind=kind, **timing)
    return fake


@pytest.fixture(params=KINDS)
def served(request, clock):
    with serve(request.param, clock) as fake:
        yield Served(request.param, fake, clock)
        assert fake.failures == [], "requests broke the API spec:\n" + "\n".join(fake.failures)


def test_a_lost_create_while_the_search_lags_makes_one_ticket(served, tmp_path):
    served.fake.server.inject("POST", served.create_route, drop=True, passthrough=True)
    tracker = served.tracker()
    with Ledger(tmp_path / "state") as ledger:
        stored, _ = ledger.upsert_incident(incident())
        outcome = tickets.open_ticket(ledger, tracker, stored)
        assert not outcome.queued, outcome.message
        assert ledger.get(stored.id).ticket.key == outcome.ticket.key
    label = stored.unique_label
    assert len(served.labelled(label)) == 1 and len(served.all_issues()) == 1
    assert served.creates() == 1  # the lost create was recognised, never sent again
    assert tracker.find(label) is None  # the search still does not show it: reads by number did


def test_a_lost_create_then_an_outage_is_queued_and_the_flush_finds_it(served, tmp_path):
    served.fake.server.inject("POST", served.create_route, drop=True, passthrough=True)
    # the reads before the create pass (three numbers: none yet), every read after it fails
    served.fake.server.inject("GET", served.read_route, status=503, times=1000, skip=3)
    tracker = served.tracker(max_attempts=2)
    with Ledger(tmp_path / "state") as ledger:
        stored, _ = ledger.upsert_incident(incident())
        queued = tickets.open_ticket(ledger, tracker, stored)
        assert queued.queued and "unavailable" in queued.message
        served.fake.server.clear_injections()
        flushed = tickets.flush(ledger, tracker)  # still inside the search's lag
        assert flushed.failed == [] and flushed.unreadable == []
        (key,) = served.labelled(stored.unique_label)
        shown = f"{served.fake.repo}#{key}" if not served.jira else key
        assert flushed.sent == [f"{stored.id}: found {shown} {ledger.get(stored.id).ticket.url}"]
    assert served.creates() == 1 and len(served.all_issues()) == 1


def test_a_search_too_far_behind_waits_in_the_outbox(served, tmp_path):
    for n in range(MAX_SCAN + 5):  # someone else's issues, all made inside the search's lag
        if served.jira:
            served.fake.add_issue(f"other {n}", ["other"])
        else:
            served.fake.add_issue(f"other {n}")
    tracker = served.tracker()
    with Ledger(tmp_path / "state") as ledger:
        stored, _ = ledger.upsert_incident(incident())
        queued = tickets.open_ticket(ledger, tracker, stored)
        assert queued.queued
        assert f"more than {MAX_SCAN} issues follow it" in queued.message
        assert "cannot be ruled out until the search catches up, so none is created now" in queued.message
        assert served.creates() == 0
        served.clock.sleep(LAG + 1)  # the search has caught up
        assert len(tickets.flush(ledger, tracker).sent) == 1
    assert len(served.labelled(stored.unique_label)) == 1 and served.creates() == 1


def assert_one_open_ticket(served: Served, label: str, keys: list[str]) -> None:
    """One open issue with the label; the other one made, a closed duplicate linked to it."""
    (winner,) = served.labelled(label, open_only=True)
    assert served.labelled(label) == [winner]
    issues = served.all_issues()
    assert len(issues) == 2 and min(issues) == winner  # both created, the lower number wins
    (loser,) = [i for i in issues if i != winner]
    fake = served.fake
    if served.jira:
        issue = fake.issue(loser)
        assert DUPLICATE_LABEL in issue["fields"]["labels"] and label not in issue["fields"]["labels"]
        assert issue["fields"]["status"]["statusCategory"]["key"] == "done"
        assert fake.linked(loser) == [("Duplicate", winner)] and fake.links[0]["inward"] == loser
        assert "Duplicate of" in str(issue["comments"][0]["body"])
        assert keys == [winner, winner]
    else:
        assert fake.label_names(loser) == [*fake.label_names(winner)[:-1], DUPLICATE_LABEL]
        assert fake.issue(loser)["state"] == "closed"
        assert fake.issue(loser)["comments"][0]["body"].startswith(f"Duplicate of #{winner}: ")
        assert keys == [f"{fake.repo}#{winner}"] * 2


def test_two_runners_with_their_own_state_dirs_make_one_ticket(served, tmp_path):
    gate = threading.Barrier(2)
    served.fake.server.inject("POST", served.create_route, gate=gate, times=2)
    results: dict[int, object] = {}

    def runner(n: int) -> None:
        try:
            with Ledger(tmp_path / f"state-{n}") as ledger:
                stored, _ = ledger.upsert_incident(incident())
                results[n] = tickets.open_ticket(ledger, served.tracker(), stored)
        except BaseException as exc:  # surfaced below
            results[n] = exc

    threads = [threading.Thread(target=runner, args=(n,)) for n in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    outcomes = [results[1], results[2]]
    assert all(not isinstance(o, BaseException) and not o.queued for o in outcomes), outcomes
    assert sorted(o.created for o in outcomes) == [False, True]  # one made it, the other found it
    assert_one_open_ticket(served, incident_label(tmp_path / "state-1"), [o.ticket.key for o in outcomes])
    for n in (1, 2):
        with Ledger(tmp_path / f"state-{n}") as ledger:
            (stored,) = ledger.list()
            assert stored.ticket.key == outcomes[0].ticket.key


def incident_label(state: Path) -> str:
    with Ledger(state) as ledger:
        (stored,) = ledger.list()
    return stored.unique_label


@pytest.mark.parametrize("kind", KINDS)
def test_two_hook_processes_with_their_own_state_dirs_make_one_ticket(kind, tmp_path):
    with serve(kind, None, lag=3600) as fake:
        served = Served(kind, fake, None)
        fake.server.inject("POST", served.create_route, gate=threading.Barrier(2), times=2)
        (tmp_path / "none.toml").write_text("")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ROLLBACK_PM_", "CI_", "PLUGIN_"))}
        env.update(PYTHONPATH=str(ROOT), ROLLBACK_PM_TRACKER_TOKEN=fake.token)

        def hook(n: int) -> subprocess.Popen[str]:
            command = [
                sys.executable,
                "-m",
                "rollback_pm",
                "--config",
                str(tmp_path / "none.toml"),
                "--state-dir",
                str(tmp_path / f"state-{n}"),
                "hook",
                "--phase",
                "finalize",
                "--service",
                "api",
                "--deploy-sha",
                DEPLOY,
                "--rollback-sha",
                ROLLBACK,
                "--pipeline-number",
                "42",
                "--mitigated-at",
                "2026-05-13T08:47:21Z",
                "--drafts-dir",
                str(tmp_path / f"drafts-{n}"),
                *served.cli_flags(),
            ]
            return subprocess.Popen(
                command, env=env, cwd=tmp_path, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )

        runners = [hook(1), hook(2)]
        outputs = [r.communicate(timeout=180) for r in runners]
        assert [r.returncode for r in runners] == [0, 0], outputs
        keys = []
        for n in (1, 2):
            with Ledger(tmp_path / f"state-{n}") as ledger:
                (stored,) = ledger.list()
                keys.append(stored.ticket.key)
        assert_one_open_ticket(served, stored.unique_label, keys)
        assert fake.failures == [], "requests broke the API spec:\n" + "\n".join(fake.failures)
