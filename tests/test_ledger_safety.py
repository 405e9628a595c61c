"""The ledger is never lost silently: an existing empty or damaged ledger is refused,
untouched, with the way to recover; a new one appears only complete; a schema upgrade
keeps a backup first."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from rollback_pm import ledger as ledger_module
from rollback_pm.cli import cli
from rollback_pm.errors import EXIT_FAILED, LedgerError
from rollback_pm.ledger import DB_NAME, MIGRATIONS, SCHEMA_VERSION, Ledger
from tests.test_ledger import make_incident

HINT = (
    "It was not changed. `rollback-pm ledger check` says what else is in the state dir; `rollback-pm ledger "
    "rebuild` moves it aside and recovers the incidents from the drafts, ticket files and evidence manifests; "
    "or restore ledger.sqlite3 from a backup (the state dir's backups/ holds the copies taken before each "
    "schema upgrade)"
)


def incidents_list(state: Path):
    return CliRunner().invoke(cli, ["--state-dir", str(state), "incidents", "list"], catch_exceptions=False)


def test_a_new_state_dir_initialises_and_leaves_no_temp_files(tmp_path: Path) -> None:
    state = tmp_path / "new" / "state"
    result = incidents_list(state)
    assert (result.exit_code, result.output) == (0, "no incidents\n")
    assert sorted(p.name for p in state.iterdir() if not p.name.startswith(f"{DB_NAME}-")) == [
        ".ledger.lock",
        DB_NAME,
    ]
    db = sqlite3.connect(state / DB_NAME)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert oct((state / DB_NAME).stat().st_mode & 0o777) == "0o640"


def damaged(state: Path, content: bytes) -> Path:
    state.mkdir()
    path = state / DB_NAME
    path.write_bytes(content)
    return path


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "is empty (0 bytes): the incidents it held are gone"),
        (b"\x00" * 4096, "is not a SQLite database (it was overwritten or is another file)"),
        (b"#!/bin/sh\necho oops\n", "is not a SQLite database (it was overwritten or is another file)"),
    ],
    ids=["zero-bytes", "zeroed", "another-file"],
)
def test_an_empty_or_foreign_ledger_is_refused_untouched(tmp_path: Path, content: bytes, reason: str) -> None:
    path = damaged(tmp_path / "state", content)
    before = path.stat()
    result = incidents_list(tmp_path / "state")
    assert result.exit_code == EXIT_FAILED
    assert result.output == f"rollback-pm: ledger {path} {reason}. {HINT}\n"
    assert path.read_bytes() == content
    assert path.stat().st_mtime_ns == before.st_mtime_ns


def a_ledger(state: Path) -> Path:
    with Ledger(state) as ledger:
        ledger.upsert_incident(make_incident())
        ledger.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return state / DB_NAME


def test_a_corrupt_page_is_refused(tmp_path: Path) -> None:
    path = a_ledger(tmp_path / "state")
    data = bytearray(path.read_bytes())
    page = 4096
    data[page + 100 : 2 * page] = b"\xff" * (page - 100)  # the second page: a table's b-tree
    path.write_bytes(bytes(data))
    with pytest.raises(LedgerError) as caught:
        Ledger(tmp_path / "state")
    assert str(caught.value).startswith(f"ledger {path} is corrupt (")
    assert str(caught.value).endswith(HINT)
    assert path.read_bytes() == bytes(data)


def test_damage_seen_once_is_checked_again_before_the_ledger_is_refused(tmp_path, monkeypatch) -> None:
    # a check racing another process's WAL recovery may see damage that is gone a moment
    # later: refusing a sound ledger would stop every command
    path = a_ledger(tmp_path / "state")
    answers = iter(["is corrupt (database disk image is malformed)", None])
    real = ledger_module._checked
    monkeypatch.setattr(ledger_module, "_checked", lambda p: next(answers, real(p)))
    monkeypatch.setattr(ledger_module, "CORRUPT_RECHECKS", (0.0, 0.0))
    assert ledger_module.unusable_reason(path) is None
    with Ledger(tmp_path / "state") as ledger:
        assert len(ledger.list()) == 1


def test_a_sqlite_file_without_schema_version_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    db = sqlite3.connect(state / DB_NAME)
    db.execute("CREATE TABLE notes (text TEXT)")
    db.commit()
    db.close()
    with pytest.raises(LedgerError, match="has no schema version: it is not a rollback-pm ledger, or its creation"):
        Ledger(state)


def test_a_directory_or_a_pipe_in_place_of_the_ledger_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / DB_NAME).mkdir()
    with pytest.raises(LedgerError, match="is not a regular file .a directory, a device or a pipe."):
        Ledger(state)
    (state / DB_NAME).rmdir()
    os.mkfifo(state / DB_NAME)  # reading it would block forever
    with pytest.raises(LedgerError, match="is not a regular file"):
        Ledger(state)


def version_1_ledger(state: Path) -> Path:
    state.mkdir()
    db = sqlite3.connect(state / DB_NAME)
    db.executescript(MIGRATIONS[0])
    db.execute(
        "INSERT INTO incidents (id, idem_key, service, environment, deploy_sha, severity, detected_by, created_at, "
        "updated_at) VALUES ('abc123abc123', 'k', 'api', 'production', ?, 'High', 'operator', "
        "'2026-05-13T08:47:21Z', '2026-05-13T08:47:21Z')",
        ("d" * 40,),
    )
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    return state / DB_NAME


def test_a_backup_is_taken_before_a_schema_upgrade(tmp_path: Path) -> None:
    state = tmp_path / "state"
    version_1_ledger(state)
    with Ledger(state) as ledger:
        assert ledger.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert [i.id for i in ledger.list()] == ["abc123abc123"]
    (backup,) = (state / "backups").iterdir()
    assert backup.name.startswith("ledger.v1.") and backup.name.endswith(".sqlite3")
    copy = sqlite3.connect(backup)
    assert copy.execute("PRAGMA user_version").fetchone()[0] == 1
    assert copy.execute("SELECT id FROM incidents").fetchall() == [("abc123abc123",)]
    with Ledger(state):
        pass
    assert len(list((state / "backups").iterdir())) == 1  # no upgrade, no backup


def test_no_upgrade_without_its_backup(tmp_path: Path) -> None:
    state = tmp_path / "state"
    version_1_ledger(state)
    (state / "backups").write_text("in the way")
    with pytest.raises(LedgerError, match="ledger backup dir .* exists but is not a directory"):
        Ledger(state)
    db = sqlite3.connect(state / DB_NAME)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 1


def test_a_damaged_stored_record_names_the_incident_and_the_field(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with Ledger(state) as ledger:
        iid = ledger.upsert_incident(make_incident())[0].id
        ledger.db.execute("UPDATE incidents SET facts_json = ? WHERE id = ?", ('{"containers": [{"id": "abc"}]}', iid))
        with pytest.raises(LedgerError) as caught:
            ledger.get(iid)
        assert str(caught.value) == (
            f"incident {iid} in the ledger {state / DB_NAME} has a damaged record (containers[0] has no 'name'); "
            "correct it with sqlite3, or recover it from its draft and ticket with `rollback-pm ledger rebuild --force`"
        )
        # a retry of the hook replaces the damaged facts with its own
        ledger.upsert_incident(make_incident())
        assert ledger.get(iid).containers == []
        ledger.db.execute("UPDATE incidents SET mitigated_at = 'someday' WHERE id = ?", (iid,))
        with pytest.raises(LedgerError, match=r"has a damaged record \(mitigated_at 'someday' is not an ISO 8601 time"):
            ledger.list()


WRITER = """
import sys
from pathlib import Path
from rollback_pm.ledger import Ledger
from tests.test_ledger import make_incident
with Ledger(Path(sys.argv[1])) as ledger:
    ledger.upsert_incident(make_incident(service=sys.argv[2]))
"""


def test_opening_the_ledger_again_keeps_the_locks_of_a_ledger_this_process_holds(tmp_path: Path) -> None:
    # POSIX locks belong to the process: a check that closed its own descriptor of the file
    # dropped the open ledger's lock, so another process closing its connection believed it
    # was the last one, checkpointed and removed the WAL under the open ledger ("malformed").
    state = tmp_path / "state"
    with Ledger(state) as held:
        held.upsert_incident(make_incident(service="held"))
        with Ledger(state) as again:
            assert [i.service for i in again.list()] == ["held"]
        written = subprocess.run(
            [sys.executable, "-c", WRITER, str(state), "other"], capture_output=True, text=True, cwd=Path.cwd()
        )
        assert written.returncode == 0, written.stderr
        assert (state / f"{DB_NAME}-wal").exists()  # the writer knew it was not the last connection
        assert sorted(i.service for i in held.list()) == ["held", "other"]
