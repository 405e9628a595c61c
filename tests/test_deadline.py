"""One deadline: the ticket, the draft and check-deadlines agree, whatever deadline_hours is."""

import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from rollback_pm.cli import cli
from rollback_pm.deadline import describe, due_at
from rollback_pm.ledger import Ledger
from rollback_pm.models import Incident

pytestmark = pytest.mark.usefixtures("clean_env")
DEPLOY = "0123456789abcdef0123456789abcdef01234567"
ROLLBACK = "fedcba9876543210fedcba9876543210fedcba98"
T0 = datetime(2026, 5, 13, 8, 47, 21, tzinfo=timezone.utc)  # mitigation


def readers(tmp_path: Path, config: str, environment: str) -> dict[str, object]:
    """Run the hook's finalize phase, then ask each reader when the postmortem is due."""
    (tmp_path / "config.toml").write_text(config)
    base = ["--config", str(tmp_path / "config.toml"), "--state-dir", str(tmp_path / "state")]
    hook = CliRunner().invoke(
        cli,
        [
            *base,
            "hook",
            "--phase",
            "finalize",
            "--service",
            "api",
            "--environment",
            environment,
            "--deploy-sha",
            DEPLOY,
            "--rollback-sha",
            ROLLBACK,
            "--mitigated-at",
            "2026-05-13T08:47:21Z",
            "--drafts-dir",
            str(tmp_path / "drafts"),
        ],
        catch_exceptions=False,
    )
    assert hook.exit_code == 0, hook.output
    with Ledger(tmp_path / "state") as ledger:
        [incident] = ledger.list()
    ticket = json.loads((tmp_path / "state" / "tickets" / f"PM-{incident.id}.json").read_text())
    draft = Path(incident.draft_path).read_text()
    marker = re.search(r"deadline=(\S+) -->", draft.splitlines()[0])
    cron = CliRunner().invoke(
        cli, [*base, "check-deadlines", "--json", "--dry-run", "--now", "2026-05-13T09:00:00Z"], catch_exceptions=False
    )
    [row] = json.loads(cron.output)["incidents"]
    return {
        "ticket due date": ticket["due_date"],
        "ticket text": ticket["body"].split("\n")[0].split("**. ", 1)[1],
        "draft marker": marker.group(1) if marker else None,
        "draft text": next(line for line in draft.splitlines() if line.startswith("**Deadline**")),
        "cron": (row["due"], row["state"], row["reason"].split(";")[0]),
    }


@pytest.mark.parametrize(
    ("config", "environment", "hours"),
    [
        ("deadline_hours = 0\n", "production", 0),
        ("deadline_hours = 12\n", "production", 12),
        ("", "production", 24),
        ("deadline_hours = 24\n[environments.staging]\ndeadline_hours = 6\n", "staging", 6),
        ("deadline_hours = 24\n[environments.staging]\ndeadline_hours = 0\n", "staging", 0),
    ],
)
def test_ticket_draft_and_cron_agree(tmp_path, config, environment, hours):
    seen = readers(tmp_path, config, environment)
    if hours == 0:
        assert seen == {
            "ticket due date": None,
            "ticket text": "There is no postmortem deadline in this environment.",
            "draft marker": None,
            "draft text": f"**Deadline**: none (no postmortem deadline in {environment})",
            "cron": (None, "ok", "no deadline in this environment"),
        }
        return
    due = T0 + timedelta(hours=hours)
    iso = due.strftime("%Y-%m-%dT%H:%M:%SZ")
    left = due - datetime(2026, 5, 13, 9, 0, tzinfo=timezone.utc)
    assert seen == {
        "ticket due date": due.date().isoformat(),
        "ticket text": f"The postmortem is due by {iso} (mitigation + {hours}h).",
        "draft marker": iso,
        "draft text": f"**Deadline**: {iso} (within {hours} hours of the incident)",
        "cron": (iso, "ok" if hours > 4 else "due-soon", f"due in {int(left.total_seconds() // 3600)}h47m"),
    }


def test_the_one_function():
    incident = Incident(id="x", service="api", environment="production", deploy_sha=DEPLOY, mitigated_at=T0)
    assert due_at(incident, 0) is None
    assert due_at(incident, 1.5) == T0 + timedelta(minutes=90)
    recorded = Incident(id="y", service="api", environment="production", deploy_sha=DEPLOY, created_at=T0)
    assert due_at(recorded, 24) == T0 + timedelta(hours=24)  # no mitigation time: from when it was recorded
    unknown = Incident(id="z", service="api", environment="production", deploy_sha=DEPLOY)
    assert due_at(unknown, 24) is None
    assert describe(unknown, 24) == "The postmortem is due by unknown (mitigation + 24h)."
