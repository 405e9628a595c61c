"""Shared helpers for the delivery tests: the hooks, the Dockerfile, the docs, the wheel.

The hook scripts are run the way a deploy script or Woodpecker runs them: as processes,
with an environment built from scratch, against a `rollback-pm` command on PATH that is
this checkout (``python -m rollback_pm``).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
HOOKS = ROOT / "hooks"
ON_ROLLBACK = HOOKS / "on-rollback"
ENTRYPOINT = HOOKS / "plugin-entrypoint"
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CONSTRAINTS = ROOT / "constraints.txt"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!_-]+)$")


def write_exe(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o755)
    return path


def make_rollback_pm(directory: Path) -> Path:
    """A `rollback-pm` command that runs this checkout with the test's Python."""
    directory.mkdir(parents=True, exist_ok=True)
    return write_exe(
        directory / "rollback-pm", f'#!/bin/sh\nPYTHONPATH="{ROOT}" exec "{sys.executable}" -m rollback_pm "$@"\n'
    )


def make_recorder(directory: Path) -> Path:
    """Stands in for rollback-pm where a test is about the calling script, not rollback-pm:
    records its arguments, stdin and identity, then exits $FAKE_RC or hangs when FAKE_HANG=1."""
    return write_exe(
        directory / "fake-rollback-pm",
        """#!/bin/sh
rec=${FAKE_RECORD:?}
printf '%s\\n' "$@" >"$rec.args"
cat >"$rec.stdin"
id -u >"$rec.uid"
id -G >"$rec.groups"
sed -n 's/^NoNewPrivs:[[:space:]]*//p' /proc/self/status >"$rec.nnp"
echo $$ >"$rec.pid"
if [ "${FAKE_HANG:-0}" = 1 ]; then exec sleep 300; fi
echo "fake rollback-pm: exit ${FAKE_RC:-0}" >&2
exit "${FAKE_RC:-0}"
""",
    )


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def needs_modules(*names: str) -> pytest.MarkDecorator:
    """Skip, with the reason shown, until the branches providing these modules are merged."""
    missing = [n for n in names if not _importable(n)]
    return pytest.mark.skipif(bool(missing), reason=f"needs {', '.join(missing)} (not merged into this branch yet)")


def needs_root() -> pytest.MarkDecorator:
    return pytest.mark.skipif(os.geteuid() != 0, reason="needs root: runs the hooks as another uid with setpriv")


def python_usable_by(uid: int) -> pytest.MarkDecorator:
    """Skip, with the reason shown, when the test's Python cannot run as ``uid``
    (a pyenv or venv under /root, mode 0700, is not reachable by other users)."""
    if os.geteuid() != 0:
        return pytest.mark.skipif(True, reason="needs root: runs the hooks as another uid with setpriv")
    # Through a shell, as the entrypoint does: setpriv's own exec still holds root's capabilities.
    probe = subprocess.run(
        [
            "setpriv",
            f"--reuid={uid}",
            f"--regid={uid}",
            "--clear-groups",
            "--no-new-privs",
            "sh",
            "-c",
            f'exec "{sys.executable}" -c "import rollback_pm"',
        ],
        env={"PYTHONPATH": str(ROOT), "PATH": SYSTEM_PATH},
        capture_output=True,
    )
    return pytest.mark.skipif(
        probe.returncode != 0, reason=f"{sys.executable} or {ROOT} is not usable by uid {uid} on this machine"
    )


@pytest.fixture(scope="session")
def rpm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding this checkout's `rollback-pm`."""
    directory = tmp_path_factory.mktemp("bin")
    make_rollback_pm(directory)
    return directory


@pytest.fixture
def public_dir() -> Iterator[Path]:
    """A world-readable temp dir, for processes that drop to another uid."""
    directory = Path(tempfile.mkdtemp(prefix="rpm-delivery-"))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def world_readable(path: Path) -> None:
    path.chmod(path.stat().st_mode | stat.S_IROTH | stat.S_IXOTH)


def pins(path: Path = CONSTRAINTS) -> dict[str, Version]:
    """constraints.txt as {canonical name: pinned version}; anything but name==version fails."""
    found: dict[str, Version] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        match = _PIN.match(line)
        assert match, f"{path.name}:{number}: {line!r} is not name==version (rerun scripts/update-constraints.sh)"
        name = canonicalize_name(match.group(1))
        assert name not in found, f"{path.name}:{number}: {name} pinned twice"
        found[name] = Version(match.group(2))
    return found
