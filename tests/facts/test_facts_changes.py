"""Suspect changes from a real temporary git repository."""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import pytest

from rollback_pm.facts.changes import suspect_changes
from rollback_pm.models import ChangedFile, Commit

MISSING = "0123456789abcdef0123456789abcdef01234567"


def git(repo: Path, *args: str, date: str = "2026-05-13T08:00:00Z", author: str = "Ana Ops") -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        GIT_AUTHOR_NAME=author,
        GIT_AUTHOR_EMAIL="ops@example.org",
        GIT_COMMITTER_NAME=author,
        GIT_COMMITTER_EMAIL="ops@example.org",
        GIT_AUTHOR_DATE=date,
        GIT_COMMITTER_DATE=date,
        GIT_CONFIG_NOSYSTEM="1",
        HOME=str(repo),
    )
    done = subprocess.run(["git", "-C", str(repo), *args], env=env, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def commit(repo: Path, subject: str, date: str, author: str = "Ana Ops") -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", subject, "-m", "body line", date=date, author=author)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    root = tmp_path_factory.mktemp("repo")
    git(root, "init", "-q", "-b", "main")
    (root / "app.py").write_text("print('v1')\n")
    (root / "config.yml").write_text("workers: 2\n")
    (root / "docs").mkdir()
    (root / "docs" / "old.md").write_text("notes\n" * 20)
    good = commit(root, "release 1.4.0", "2026-05-12T10:00:00Z")
    (root / "app.py").write_text("print('v2')\nprint('extra')\n")
    first = commit(root, "api: new health endpoint", "2026-05-13T07:00:00Z", author="Zoë Dev")
    (root / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00binary")
    (root / "docs" / "old.md").rename(root / "docs" / "new.md")
    second = commit(root, "docs: move notes; add logo", "2026-05-13T07:30:00Z")
    (root / "config.yml").write_text("workers: 0\n")
    bad = commit(root, "config: workers 0 (oops)", "2026-05-13T08:00:00Z")
    (root / "sub").mkdir()
    return {"root": root, "good": good, "first": first, "second": second, "bad": bad}


def expected_commits(repo: dict[str, object]) -> list[Commit]:
    return [
        Commit(
            sha=repo["bad"],
            author="Ana Ops",
            subject="config: workers 0 (oops)",
            date=datetime(2026, 5, 13, 8, 0, tzinfo=timezone.utc),
        ),
        Commit(
            sha=repo["second"],
            author="Ana Ops",
            subject="docs: move notes; add logo",
            date=datetime(2026, 5, 13, 7, 30, tzinfo=timezone.utc),
        ),
        Commit(
            sha=repo["first"],
            author="Zoë Dev",
            subject="api: new health endpoint",
            date=datetime(2026, 5, 13, 7, 0, tzinfo=timezone.utc),
        ),
    ]


EXPECTED_FILES = [
    ChangedFile(path="app.py", added=2, deleted=1),
    ChangedFile(path="config.yml", added=1, deleted=1),
    ChangedFile(path="docs/old.md => docs/new.md", added=0, deleted=0),
    ChangedFile(path="logo.png", added=None, deleted=None),  # binary
]


def test_commits_and_files_between_rollback_and_deploy(repo: dict[str, object]) -> None:
    commits, files, note = suspect_changes(repo["root"], repo["good"], repo["bad"])
    assert commits == expected_commits(repo)
    assert files == EXPECTED_FILES
    assert note is None


def test_works_from_a_subdirectory_of_the_checkout(repo: dict[str, object]) -> None:
    commits, files, note = suspect_changes(Path(repo["root"]) / "sub", repo["good"], repo["bad"])
    assert (len(commits), len(files), note) == (3, 4, None)


def test_caps_say_how_much_was_left_out(repo: dict[str, object]) -> None:
    commits, files, note = suspect_changes(repo["root"], repo["good"], repo["bad"], max_commits=2, max_files=1)
    assert commits == expected_commits(repo)[:2]
    assert files == EXPECTED_FILES[:1]
    assert note == "showing 2 of 3 commits; showing 1 of 4 changed files"


def test_deploy_older_than_rollback(repo: dict[str, object]) -> None:
    commits, files, note = suspect_changes(repo["root"], repo["bad"], repo["first"])
    good, first = str(repo["bad"])[:7], str(repo["first"])[:7]
    assert commits == []
    assert [f.path for f in files] == ["config.yml", "docs/new.md => docs/old.md", "logo.png"]
    assert note == f"no commits in {good}..{first}: the deploy is an ancestor of the rollback"


@pytest.mark.parametrize(
    ("rollback", "deploy", "note"),
    [
        (None, "bad", "suspect changes not listed: the rollback SHA is unknown"),
        ("abc1234", "bad", "suspect changes not listed: the rollback SHA 'abc1234' is not a full commit SHA"),
        (
            "good",
            "--output=/tmp/x",
            "suspect changes not listed: the deploy SHA '--output=/tmp/x' is not a full commit SHA",
        ),
        ("bad", "bad", "no suspect changes: the rollback SHA is the deploy SHA"),
    ],
)
def test_unusable_shas(repo: dict[str, object], rollback: str | None, deploy: str, note: str) -> None:
    assert suspect_changes(repo["root"], repo.get(rollback, rollback), repo.get(deploy, deploy)) == ([], [], note)


def test_sha_absent_from_the_checkout(repo: dict[str, object]) -> None:
    assert suspect_changes(repo["root"], MISSING, repo["bad"]) == (
        [],
        [],
        (
            f"suspect changes not listed: the rollback commit 0123456 is not in {repo['root']}; fetch it (git fetch "
            "origin) or give --repo-dir of a checkout that has it"
        ),
    )


def test_shallow_clone_says_to_fetch_full_history(repo: dict[str, object], tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{repo['root']}", str(clone)], check=True)
    assert suspect_changes(clone, repo["good"], repo["bad"]) == (
        [],
        [],
        (
            f"suspect changes not listed: the rollback commit {str(repo['good'])[:7]} is not in {clone}; the clone is "
            "shallow: clone with full history (Woodpecker: clone settings depth: 0)"
        ),
    )


def test_not_a_checkout_and_not_a_directory(tmp_path: Path) -> None:
    sha = "a" * 40
    assert suspect_changes(tmp_path, sha, "b" * 40) == (
        [],
        [],
        (f"suspect changes not listed: {tmp_path} is not a git checkout (give --repo-dir)"),
    )
    missing = tmp_path / "nope"
    assert suspect_changes(missing, sha, "b" * 40) == (
        [],
        [],
        (f"suspect changes not listed: {missing} is not a directory (give --repo-dir)"),
    )


def test_git_timeout_is_a_note_not_a_hang(repo: dict[str, object]) -> None:
    assert suspect_changes(repo["root"], repo["good"], repo["bad"], timeout=1e-6) == (
        [],
        [],
        "suspect changes not listed: git cat-file took longer than 1e-06 s",
    )


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the checkout to another uid")
def test_checkout_owned_by_another_uid(repo: dict[str, object], tmp_path: Path) -> None:
    # a CI clone made by the agent's uid, read by the plugin's: plain git refuses it
    foreign = tmp_path / "foreign"
    shutil.copytree(repo["root"], foreign, symlinks=True)
    for path in [foreign, *foreign.rglob("*")]:
        os.lchown(path, 54321, 54321)
    refused = subprocess.run(
        ["git", "-C", str(foreign), "rev-parse", "HEAD"],
        capture_output=True,
        text=True,
        env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)},
    )
    assert refused.returncode != 0 and "dubious ownership" in refused.stderr
    commits, files, note = suspect_changes(foreign, repo["good"], repo["bad"])
    assert (commits, files, note) == (expected_commits(repo), EXPECTED_FILES, None)
