"""check-deadlines against the Gitea/Forgejo and Jira fakes: the overdue comment and label
reach the real API shapes (a forge label must exist before it is added), and a tracker
that answers 503 makes the run degraded until it is back."""

from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner

from rollback_pm.cli import cli
from rollback_pm.ledger import Ledger
from rollback_pm.models import Incident
from rollback_pm.tickets import open_ticket
from rollback_pm.trackers.gitea import GiteaTracker
from rollback_pm.trackers.jira import JiraTracker
from tests.support.fake_gitea import FakeGitea
from tests.support.fake_jira import FakeJira

T0 = datetime(2026, 5, 13, 8, 47, 21, tzinfo=timezone.utc)


@pytest.fixture(params=["forgejo", "jira-v3"])
def tracker(request, tmp_path, monkeypatch):
    for name in ("ROLLBACK_PM_CONFIG", "CI_REPO", "CI_FORGE_URL", "CI_FORGE_TYPE"):
        monkeypatch.delenv(name, raising=False)
    fake = FakeGitea(kind="forgejo") if request.param == "forgejo" else FakeJira(api_version=3)
    with fake:
        if request.param == "forgejo":
            flags = ["--tracker", "forgejo", "--tracker-url", fake.url, "--forge-repo", fake.repo]
            backend = GiteaTracker(fake.url, fake.repo, fake.token, kind="forgejo")
        else:
            flags = [
                "--tracker",
                "jira",
                "--tracker-url",
                fake.url,
                "--jira-project",
                fake.project,
                "--jira-email",
                fake.email,
                "--jira-api",
                "3",
            ]
            backend = JiraTracker(fake.url, fake.project, fake.token, email=fake.email, api_version=3)
        monkeypatch.setenv("ROLLBACK_PM_TRACKER_TOKEN", fake.token)
        monkeypatch.setenv("ROLLBACK_PM_TRACKER_RETRY_BUDGET", "1")
        yield request.param, fake, backend, flags
        assert fake.failures == []


def run(tmp_path, flags, at):
    (tmp_path / "none.toml").write_text("")
    now = (T0 + at).strftime("%Y-%m-%dT%H:%M:%SZ")
    return CliRunner().invoke(
        cli,
        [
            "--config",
            str(tmp_path / "none.toml"),
            "--state-dir",
            str(tmp_path / "state"),
            "check-deadlines",
            "--quiet",
            "--now",
            now,
            *flags,
        ],
        catch_exceptions=False,
    )


def test_overdue_comment_and_label_once_and_degraded_while_down(tmp_path, tracker):
    kind, fake, backend, flags = tracker
    with Ledger(tmp_path / "state") as ledger:
        stored, _ = ledger.upsert_incident(
            Incident(
                id="",
                service="api",
                environment="production",
                deploy_sha="1" * 40,
                rollback_sha="2" * 40,
                mitigated_at=T0,
                detected_at=T0,
            )
        )
        ticket = open_ticket(ledger, backend, ledger.get(stored.id)).ticket
    fake.server.inject("*", ".*", status=503, times=1000)
    down = run(tmp_path, flags, timedelta(hours=22))  # due-soon: nothing overdue, so exit 3 shows
    assert down.exit_code == 3 and f"could not check {stored.id}" in down.stderr
    assert fake.token not in down.stdout + down.stderr
    fake.server.clear_injections()
    up = run(tmp_path, flags, timedelta(hours=26, minutes=15))
    assert up.exit_code == 1
    assert f"{stored.id}: sent overdue label postmortem-overdue to {ticket.key}" in up.stdout
    again = run(tmp_path, flags, timedelta(hours=26, minutes=30))
    assert (again.exit_code, again.stdout) == (1, "")
    if kind == "forgejo":
        [issue] = fake.issues.values()
        assert "postmortem-overdue" in fake.label_names(issue["number"])
        assert len(issue["comments"]) == 1
    else:
        [issue] = fake.issues.values()
        assert "postmortem-overdue" in issue["fields"]["labels"]
        assert len(issue["comments"]) == 1
