"""One symlink policy for the state, drafts and tickets dirs and the files in them, the
evidence dir's: a planted symlink is refused with a clear message (exit 1, or 3 where the
ticket is queued), never followed, and nothing is written through it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from rollback_pm import hook
from rollback_pm.cli import cli
from rollback_pm.config import load_settings
from rollback_pm.errors import EXIT_DEGRADED, EXIT_FAILED, LedgerError
from rollback_pm.ledger import Ledger
from tests.test_ledger import make_incident


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("ROLLBACK_PM_", "PLUGIN_", "CI_")):
            monkeypatch.delenv(name)


def run(*args: str):
    result = CliRunner().invoke(cli, ["--config", os.devnull, *args], catch_exceptions=False)
    assert "Traceback" not in result.output and "internal error" not in result.output, result.output
    return result


def tree(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    """Where a planted link points: it must stay as it is."""
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / "precious").write_text("keep me")
    return target


def test_a_symlinked_state_dir_is_refused(tmp_path: Path, elsewhere: Path) -> None:
    link = tmp_path / "state"
    link.symlink_to(elsewhere)
    message = (
        f"rollback-pm: state dir {link} is a symlink (to {elsewhere}); refusing to follow it. "
        "set --state-dir or ROLLBACK_PM_STATE_DIR to a real, writable directory\n"
    )
    for args in (
        ["incidents", "list"],
        ["check-deadlines"],
        ["ticket", "flush"],
        ["mark-good", "--service", "api", "--sha", "d" * 40],
    ):
        result = run("--state-dir", str(link), *args)
        assert (result.exit_code, result.output) == (EXIT_FAILED, message), args
    assert tree(elsewhere) == ["precious"]


@pytest.fixture
def state_with_incident(tmp_path: Path) -> tuple[Path, str]:
    state = tmp_path / "state"
    with Ledger(state) as ledger:
        stored, _ = ledger.upsert_incident(make_incident())
    return state, stored.id


def test_a_symlinked_drafts_dir_is_refused(tmp_path: Path, elsewhere: Path, state_with_incident) -> None:
    state, iid = state_with_incident
    link = tmp_path / "drafts"
    link.symlink_to(elsewhere)
    result = run("--state-dir", str(state), "draft", iid, "--drafts-dir", str(link))
    assert result.exit_code == EXIT_FAILED
    assert result.output == (
        f"rollback-pm: drafts dir {link} is a symlink (to {elsewhere}); refusing to follow it. "
        "pass a real, writable --drafts-dir\n"
    )
    assert tree(elsewhere) == ["precious"]


def test_the_default_drafts_dir_in_the_state_dir_too(elsewhere: Path, state_with_incident) -> None:
    state, iid = state_with_incident
    (state / "drafts").symlink_to(elsewhere)
    result = run("--state-dir", str(state), "draft", iid)
    assert result.exit_code == EXIT_FAILED
    assert result.output.startswith(f"rollback-pm: drafts dir {state / 'drafts'} is a symlink (to {elsewhere})")
    assert tree(elsewhere) == ["precious"]


@pytest.mark.parametrize(
    ("name", "what", "args"),
    [
        (".ledger.lock", "ledger lock", ["incidents", "list"]),
        ("check-deadlines.lock", "check-deadlines lock", ["check-deadlines"]),
        ("ledger.sqlite3", "ledger file", ["incidents", "list"]),
        ("ledger.sqlite3-wal", "ledger file", ["incidents", "list"]),
    ],
)
def test_a_symlink_planted_at_a_lock_or_ledger_file(tmp_path: Path, elsewhere: Path, name, what, args) -> None:
    state = tmp_path / "state"
    with Ledger(state):
        pass
    (state / name).unlink(missing_ok=True)
    (state / name).symlink_to(elsewhere / "precious")
    result = run("--state-dir", str(state), *args)
    assert result.exit_code == EXIT_FAILED
    fix = (
        "remove the link; rollback-pm creates the lock file itself"
        if what.endswith("lock")
        else "replace the link with the file it points to"
    )
    assert result.output == (
        f"rollback-pm: {what} {state / name} is a symlink (to {elsewhere / 'precious'}); refusing to follow it. {fix}\n"
    )
    assert (elsewhere / "precious").read_text() == "keep me"


def test_a_dangling_symlink_at_the_ledger_lock(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / ".ledger.lock").symlink_to("/nonexistent/rollback-pm.lock")
    result = run("--state-dir", str(state), "incidents", "list")
    assert result.exit_code == EXIT_FAILED
    assert "ledger lock" in result.output and "is a symlink (to /nonexistent/rollback-pm.lock)" in result.output


def test_a_symlink_planted_at_the_hook_lock(tmp_path: Path, elsewhere: Path) -> None:
    settings = load_settings({"state_dir": str(tmp_path / "state")}, env={})
    lock = hook.run_lock(settings.state_dir, "key")  # creates locks/
    Path(lock.lock_file).symlink_to(elsewhere / "precious")
    with pytest.raises(LedgerError, match=r"hook lock .* is a symlink .* refusing to follow it"):
        hook.run_lock(settings.state_dir, "key")
    assert (elsewhere / "precious").read_text() == "keep me"


def test_a_symlinked_tickets_dir_queues_the_ticket_and_writes_nothing_there(
    elsewhere: Path, state_with_incident
) -> None:
    state, iid = state_with_incident
    (state / "tickets").symlink_to(elsewhere)
    result = run("--state-dir", str(state), "ticket", "open", iid)
    assert result.exit_code == EXIT_DEGRADED
    assert result.stdout.startswith(
        f"ticket queued in the outbox: ticket directory {state / 'tickets'} is a symlink (to {elsewhere}); "
        "refusing to follow it. make the state dir's tickets/ a real, writable directory."
    )
    assert tree(elsewhere) == ["precious"]
