"""`rollback-pm ledger check` and `ledger rebuild`: a lost ledger is found out, and its
incidents come back from the drafts, ticket files and evidence manifests around it."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from rollback_pm.cli import cli
from rollback_pm.ledger import DB_NAME, SCHEMA_VERSION, Ledger
from rollback_pm.models import EvidenceFile, Incident, SmokeStep

DEPLOY = "0123456789abcdef0123456789abcdef01234567"
ROLLBACK = "fedcba9876543210fedcba9876543210fedcba98"
T0 = datetime(2026, 5, 13, 8, 47, 21, tzinfo=timezone.utc)
BUNDLE = "20260513T084721Z"
STRAY = "20260513T090000Z"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("ROLLBACK_PM_", "PLUGIN_", "CI_")):
            monkeypatch.delenv(name)


class Site:
    """A state dir, an evidence dir and the CLI over them."""

    def __init__(self, root: Path) -> None:
        self.state = root / "state"
        self.evidence = root / "evidence"
        self.evidence.mkdir()

    def run(self, *args: str, code: int | None = 0):
        result = CliRunner().invoke(
            cli,
            ["--config", os.devnull, "--state-dir", str(self.state), *args],
            catch_exceptions=False,
        )
        assert "Traceback" not in result.output and "internal error" not in result.output, result.output
        if code is not None:
            assert result.exit_code == code, result.output
        return result

    def bundle(self, bundle: str) -> list[EvidenceFile]:
        files = []
        for suffix, kind, content in (
            (".log", "log", b"api stderr 2026-05-13T08:47:00Z panic: migration 0042\n"),
            (".inspect.json", "inspect", b"[]\n"),
        ):
            path = self.evidence / f"rollback-{bundle}{suffix}"
            path.write_bytes(content)
            files.append(EvidenceFile(str(path), kind, hashlib.sha256(content).hexdigest(), len(content), bundle))
        manifest = {
            "bundle": bundle,
            "files": [{"name": Path(f.path).name, "kind": f.kind, "sha256": f.sha256, "bytes": f.bytes} for f in files],
        }
        data = json.dumps(manifest).encode()
        path = self.evidence / f"rollback-{bundle}.manifest.json"
        path.write_bytes(data)
        files.append(EvidenceFile(str(path), "manifest", hashlib.sha256(data).hexdigest(), len(data), bundle))
        return files

    def incident(self, **facts) -> str:
        with Ledger(self.state) as ledger:
            stored, _ = ledger.upsert_incident(Incident(id="", **facts))
        return stored.id


@pytest.fixture
def site(tmp_path: Path) -> tuple[Site, dict[str, str]]:
    """Three incidents: a (draft, ticket, evidence), b (draft only), c (ticket only, resolved)."""
    s = Site(tmp_path)
    a = s.incident(
        service="api",
        environment="production",
        deploy_sha=DEPLOY,
        rollback_sha=ROLLBACK,
        rollback_sha_source="flag",
        pipeline_number="42",
        mitigated_at=T0,
        detected_at=T0 - timedelta(minutes=5),
        detected_by="smoke test",
        smoke_steps=[SmokeStep(name="api health", status="failed", step=3, ts=T0 - timedelta(minutes=5))],
        evidence=s.bundle(BUNDLE),
    )
    b = s.incident(service="web", environment="staging", deploy_sha="a" * 40, pipeline_number="7", mitigated_at=T0)
    c = s.incident(service="worker", environment="production", deploy_sha="b" * 40, mitigated_at=T0, severity="Low")
    s.bundle(STRAY)  # collected, but no incident knows it
    s.run("draft", a)
    s.run("draft", b, "--template", "blameless")
    s.run("ticket", "open", a)
    s.run("ticket", "open", c)
    ticket_c = s.state / "tickets" / f"PM-{c}.json"
    ticket_c.write_text(json.dumps({**json.loads(ticket_c.read_text()), "status": "resolved"}))
    return s, {"a": a, "b": b, "c": c}


def lose_the_ledger(state: Path) -> None:
    (state / DB_NAME).write_bytes(b"")


def test_check_of_a_healthy_state_dir(site) -> None:
    s, ids = site
    result = s.run("ledger", "check", "--evidence-dir", str(s.evidence), code=1)
    assert result.output.splitlines() == [
        f"ledger {s.state / DB_NAME}: schema version {SCHEMA_VERSION} (current), integrity ok, 3 incidents",
        f"problem: evidence bundle {STRAY} in {s.evidence} (rollback-{STRAY}.inspect.json, rollback-{STRAY}.log, "
        f"rollback-{STRAY}.manifest.json) is not in the ledger; `rollback-pm ledger rebuild` attributes it to the "
        "incident whose draft or ticket names it",
        "1 problem found",
    ]
    (s.evidence / f"rollback-{STRAY}.log").unlink()
    (s.evidence / f"rollback-{STRAY}.inspect.json").unlink()
    (s.evidence / f"rollback-{STRAY}.manifest.json").unlink()
    clean = s.run("ledger", "check", "--evidence-dir", str(s.evidence), "--json")
    report = json.loads(clean.output)
    assert (report["clean"], report["problems"], report["incidents"], report["integrity"]) == (True, [], 3, "ok")


def test_check_finds_rows_whose_files_are_gone_and_files_the_ledger_does_not_know(site) -> None:
    s, ids = site
    with Ledger(s.state) as ledger:
        draft_a = ledger.get(ids["a"]).draft_path
    Path(draft_a).unlink()
    (s.state / "tickets" / f"PM-{ids['c']}.json").unlink()
    (s.evidence / f"rollback-{BUNDLE}.log").unlink()
    (s.state / "tickets" / "PM-ffffffffffff.json").write_text('{"key": 5}')
    report = json.loads(s.run("ledger", "check", "--evidence-dir", str(s.evidence), "--json", code=1).output)
    problems = {(p["kind"], p["incident"]): p["message"] for p in report["problems"]}
    assert problems[("draft", ids["a"])] == (
        f"incident {ids['a']}'s draft {draft_a} is gone; `rollback-pm draft {ids['a']}` writes it again"
    )
    assert problems[("ticket", ids["c"])].startswith(f"incident {ids['c']}'s ticket file ")
    assert problems[("evidence", ids["a"])].startswith(
        f"incident {ids['a']}'s evidence {s.evidence}/rollback-{BUNDLE}.log is gone"
    )
    assert problems[("ticket", None)].startswith(f"ticket file {s.state}/tickets/PM-ffffffffffff.json is not a ticket")


def test_a_lost_ledger_is_refused_then_rebuilt_from_drafts_tickets_and_manifests(site) -> None:
    s, ids = site
    a, b, c = ids["a"], ids["b"], ids["c"]
    lose_the_ledger(s.state)
    refused = s.run("incidents", "list", code=1)
    assert "is empty (0 bytes): the incidents it held are gone" in refused.output

    check = json.loads(s.run("ledger", "check", "--evidence-dir", str(s.evidence), "--json", code=1).output)
    kinds = sorted((p["kind"], p["incident"] or "") for p in check["problems"])
    assert kinds == sorted(
        [("ledger", ""), ("draft", a), ("draft", b), ("ticket", a), ("ticket", c), ("evidence", ""), ("evidence", "")]
    )

    result = s.run("ledger", "rebuild", "--evidence-dir", str(s.evidence), code=3)
    lines = result.output.splitlines()
    aside = [p for p in s.state.iterdir() if p.name.startswith(f"{DB_NAME}.broken-")]
    assert [p.read_bytes() for p in aside] == [b""]  # kept, as it was
    assert lines[0] == f"moved aside: {aside[0]}"
    assert f"ledger {s.state / DB_NAME}: 3 incident(s) recovered" in lines
    assert (
        f"not recovered: evidence bundle {STRAY}: no draft or ticket names it; its files stay in {s.evidence}" in lines
    )
    assert not [p for p in s.state.iterdir() if p.name.startswith(".rebuild-")]

    with Ledger(s.state) as ledger:
        got_a, got_b, got_c = ledger.get(a), ledger.get(b), ledger.get(c)
    assert (got_a.service, got_a.environment, got_a.deploy_sha, got_a.rollback_sha) == (
        "api",
        "production",
        DEPLOY,
        ROLLBACK,
    )
    assert (got_a.mitigated_at, got_a.detected_at, got_a.detected_by, got_a.severity) == (
        T0,
        T0 - timedelta(minutes=5),
        "smoke test",
        "High",
    )
    assert got_a.ticket.key == f"PM-{a}" and got_a.draft_path.endswith(".md")
    assert sorted(Path(e.path).name for e in got_a.evidence) == [
        f"rollback-{BUNDLE}.inspect.json",
        f"rollback-{BUNDLE}.log",
        f"rollback-{BUNDLE}.manifest.json",
    ]
    # b had only a draft: its facts come from the blameless template, its mitigation from the deadline
    assert (got_b.service, got_b.environment, got_b.deploy_sha, got_b.status) == ("web", "staging", "a" * 40, "open")
    assert got_b.mitigated_at == T0
    assert got_b.ticket is None
    # c had only a ticket, resolved
    assert (got_c.service, got_c.status, got_c.severity, got_c.ticket.status) == ("worker", "done", "Low", "resolved")

    # the recovered draft counts as a human's: never overwritten without --force
    redraft = s.run("draft", a, code=2)
    assert "was edited since rollback-pm wrote it" in redraft.output
    # and the clock runs again
    s.run("check-deadlines", "--now", "2026-05-13T10:00:00Z", "--dry-run")


def test_rebuild_refuses_a_healthy_ledger_without_force(site) -> None:
    s, _ = site
    result = s.run("ledger", "rebuild", code=2)
    assert result.output.startswith(f"rollback-pm: ledger {s.state / DB_NAME} passes SQLite's checks; a rebuild")
    assert not [p for p in s.state.iterdir() if ".broken-" in p.name]
    forced = s.run("ledger", "rebuild", "--force", "--evidence-dir", str(s.evidence), "--json", code=3)
    report = json.loads(forced.output)
    assert len(report["recovered"]) == 3
    assert all(".broken-" in Path(p).name for p in report["moved_aside"])  # with its -wal and -shm, if any
    old = sqlite3.connect(report["moved_aside"][0])
    assert old.execute("SELECT count(*) FROM incidents").fetchone()[0] == 3  # the old one is intact


def test_rebuild_of_an_empty_state_dir(tmp_path: Path) -> None:
    s = Site(tmp_path)
    result = s.run("ledger", "rebuild", "--evidence-dir", str(s.evidence))
    assert result.output == f"ledger {s.state / DB_NAME}: 0 incident(s) recovered\n"
    s.run("incidents", "list")
