"""Suspect changes: the commits and files between what was restored and what was deployed.

This is the first place a postmortem reader looks for the root cause. It is a nice-to-have
for the hook, so nothing here raises: when the checkout is missing, shallow or slow, the
caller gets empty lists and a note saying why.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from rollback_pm.errors import UsageError
from rollback_pm.facts.shas import SHA_RE
from rollback_pm.log import get_logger
from rollback_pm.models import ChangedFile, Commit
from rollback_pm.timeutil import parse_ts

GIT_TIMEOUT = 15.0  # seconds per git call; a pipeline must never hang on us
_FIELD, _RECORD = "\x1f", "\x1e"

log = get_logger(__name__)


class _GitFailed(Exception):
    pass


def suspect_changes(
    repo_dir: Path,
    rollback_sha: str | None,
    deploy_sha: str,
    *,
    max_commits: int = 50,
    max_files: int = 200,
    timeout: float = GIT_TIMEOUT,
) -> tuple[list[Commit], list[ChangedFile], str | None]:
    """Commits in rollback..deploy (newest first) and files changed between the two trees.

    The third element is a note for the draft: why nothing is listed, or that the lists
    were capped ("showing 50 of 312 commits"). None when the lists are complete.
    """
    if not rollback_sha:
        return [], [], "suspect changes not listed: the rollback SHA is unknown"
    for what, sha in (("rollback", rollback_sha), ("deploy", deploy_sha)):
        if not sha or not SHA_RE.match(sha):  # also keeps anything option-like away from git's argv
            return [], [], f"suspect changes not listed: the {what} SHA {sha!r} is not a full commit SHA"
    if rollback_sha == deploy_sha:
        return [], [], "no suspect changes: the rollback SHA is the deploy SHA"
    repo_dir = Path(repo_dir)
    if not repo_dir.is_dir():
        return [], [], f"suspect changes not listed: {repo_dir} is not a directory (give --repo-dir)"
    top = _toplevel(repo_dir)
    if top is None:
        return [], [], f"suspect changes not listed: {repo_dir} is not a git checkout (give --repo-dir)"
    git = _Git(top, timeout)
    try:
        for what, sha in (("rollback", rollback_sha), ("deploy", deploy_sha)):
            if not git.has_commit(sha):
                return [], [], f"suspect changes not listed: the {what} commit {sha[:7]} is not in {top}; {git.hint()}"
        commits, total_commits = _commits(git, rollback_sha, deploy_sha, max_commits)
        files, total_files = _files(git, rollback_sha, deploy_sha, max_files)
    except _GitFailed as exc:
        log.info("suspect changes not listed", reason=str(exc))
        return [], [], f"suspect changes not listed: {exc}"
    notes = []
    if total_commits == 0:
        notes.append(f"no commits in {rollback_sha[:7]}..{deploy_sha[:7]}: the deploy is an ancestor of the rollback")
    elif total_commits > len(commits):
        notes.append(f"showing {len(commits)} of {total_commits} commits")
    if total_files > len(files):
        notes.append(f"showing {len(files)} of {total_files} changed files")
    return commits, files, "; ".join(notes) or None


def _toplevel(start: Path) -> Path | None:
    """The work tree holding ``start``: found by hand, because git itself refuses to say
    when the checkout belongs to another uid (CI clones often do)."""
    path = start.resolve()
    for candidate in (path, *path.parents):
        if (candidate / ".git").exists():  # a directory, or a file in worktrees and submodules
            return candidate
    return None


class _Git:
    def __init__(self, top: Path, timeout: float) -> None:
        self.top = top
        self.timeout = timeout
        # Our own environment only: an inherited GIT_DIR or GIT_INDEX_FILE would point git elsewhere.
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
        self.env.update(GIT_TERMINAL_PROMPT="0", GIT_OPTIONAL_LOCKS="0", GIT_PAGER="cat", LC_ALL="C")

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        # safe.directory for exactly this checkout (owned by the CI's uid, not ours); we only read,
        # with textconv/external diff drivers off so the repository's config runs nothing.
        argv = ["git", "-C", str(self.top), "-c", f"safe.directory={self.top}", "-c", "core.fsmonitor=false", *args]
        try:
            done = subprocess.run(argv, capture_output=True, env=self.env, timeout=self.timeout, check=False)
        except FileNotFoundError:
            raise _GitFailed("git is not installed") from None
        except subprocess.TimeoutExpired:
            raise _GitFailed(f"git {args[0]} took longer than {self.timeout:g} s") from None
        except OSError as exc:
            raise _GitFailed(f"git could not run: {exc.strerror or exc}") from None
        if check and done.returncode != 0:
            message = done.stderr.decode("utf-8", "replace").strip().splitlines()
            raise _GitFailed(f"git {args[0]} failed: {message[-1] if message else f'exit {done.returncode}'}")
        return done

    def has_commit(self, sha: str) -> bool:
        return self.run("cat-file", "-e", f"{sha}^{{commit}}", check=False).returncode == 0

    def hint(self) -> str:
        shallow = self.run("rev-parse", "--is-shallow-repository", check=False).stdout.strip() == b"true"
        if shallow:
            return "the clone is shallow: clone with full history (Woodpecker: clone settings depth: 0)"
        return "fetch it (git fetch origin) or give --repo-dir of a checkout that has it"


def _commits(git: _Git, rollback: str, deploy: str, limit: int) -> tuple[list[Commit], int]:
    span = f"{rollback}..{deploy}"
    total = int(git.run("rev-list", "--count", span).stdout.strip() or 0)
    if total == 0 or limit <= 0:
        return [], total
    out = git.run(
        "log",
        f"--max-count={limit}",
        "--no-color",
        "--no-show-signature",
        f"--format=%H{_FIELD}%an{_FIELD}%aI{_FIELD}%s{_RECORD}",
        span,
    ).stdout.decode("utf-8", "replace")
    commits = []
    for record in out.split(_RECORD):
        fields = record.strip("\n").split(_FIELD)
        if len(fields) != 4:
            continue
        sha, author, date, subject = fields
        try:
            when = parse_ts(date)
        except UsageError:
            when = None
        commits.append(Commit(sha=sha, author=author, subject=subject, date=when))
    return commits, total


def _files(git: _Git, rollback: str, deploy: str, limit: int) -> tuple[list[ChangedFile], int]:
    """``git diff --numstat`` of the two trees: what changed in production, renames as "old => new"."""
    out = git.run(
        "diff", "--numstat", "-z", "-M", "--no-color", "--no-textconv", "--no-ext-diff", rollback, deploy
    ).stdout.decode("utf-8", "replace")
    tokens = out.split("\0")
    files: list[ChangedFile] = []
    total = 0
    index = 0
    while index < len(tokens):
        token = tokens[index]
        index += 1
        if not token:
            continue
        added, deleted, path = token.split("\t", 2)
        if not path:  # a rename: the old and new paths follow as their own tokens
            path = f"{tokens[index]} => {tokens[index + 1]}"
            index += 2
        total += 1
        if len(files) < limit:
            files.append(
                ChangedFile(
                    path=path,
                    added=None if added == "-" else int(added),
                    deleted=None if deleted == "-" else int(deleted),
                )
            )
    return files, total
