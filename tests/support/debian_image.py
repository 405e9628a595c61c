"""A Debian test image with real software in it (python3, PostgreSQL, nginx), from debootstrap.

Real failures need real programs: PostgreSQL's own ``FATAL:``, nginx's own ``[emerg]``, a
real Python traceback. The image is built from the Debian mirror apt already uses on this
machine (read from /etc/apt/sources.list(.d)), imported with ``docker import`` and tagged
with a hash of what goes into it, so it is built once per machine and reused by every test
run. A file lock keeps parallel test runs from building it twice. If it cannot be built
(debootstrap missing, mirror unreachable), the fixture FAILS with the reason: never a skip.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from filelock import FileLock

SUITE = "bookworm"
PACKAGES = ("python3", "postgresql", "nginx-light", "procps")
RECIPE_VERSION = "1"  # bump when the build steps change
_RECIPE = hashlib.sha256(f"{SUITE} {' '.join(PACKAGES)} {RECIPE_VERSION}".encode()).hexdigest()[:10]
TAG = f"rollback-pm-test/debian:{SUITE}-{_RECIPE}"
LOCK = Path(tempfile.gettempdir()) / "rollback-pm-test-debian-image.lock"
BUILD_TIMEOUT_S = 1800
ENV = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8")


class DebianImageError(RuntimeError):
    """The image could not be built; the message says what to fix."""


def _image_exists(tag: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", tag], capture_output=True).returncode == 0


def apt_mirror(sources_dir: Path = Path("/etc/apt")) -> str:
    """The Debian archive URI apt uses here (not the security archive), from one-line or deb822 sources."""
    candidates: list[str] = []
    files = [sources_dir / "sources.list", *sorted((sources_dir / "sources.list.d").glob("*.list"))]
    for path in [f for f in files if f.is_file()]:
        for line in path.read_text(errors="replace").splitlines():
            match = re.match(r"\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", line)
            if match and not match.group(2).endswith("-security"):
                candidates.append(match.group(1))
    for path in sorted((sources_dir / "sources.list.d").glob("*.sources")):
        for stanza in re.split(r"\n\s*\n", path.read_text(errors="replace")):
            fields = dict(re.findall(r"(?m)^([A-Za-z-]+):\s*(.*)$", stanza))
            if "deb" not in fields.get("Types", "").split() or fields.get("Enabled", "yes").lower() == "no":
                continue
            if all(s.endswith("-security") for s in fields.get("Suites", "-security").split()):
                continue
            candidates.extend(fields.get("URIs", "").split())
    debian = [uri for uri in candidates if re.search(r"/debian/?$", uri)]
    if not debian:
        raise DebianImageError(
            f"no Debian archive found in {sources_dir}/sources.list(.d): add a 'deb <mirror>/debian {SUITE} main' source"
        )
    return debian[0]


def _build(tag: str) -> None:
    debootstrap = shutil.which("debootstrap") or next(
        (p for p in ("/usr/sbin/debootstrap", "/sbin/debootstrap") if Path(p).exists()), None
    )
    if debootstrap is None:
        raise DebianImageError(
            "debootstrap is not installed; run scripts/bootstrap.sh (it installs it) or `apt-get install -y debootstrap`"
        )
    mirror = apt_mirror()
    with tempfile.TemporaryDirectory(prefix="rpm-debian-", dir="/var/tmp") as work:
        root = Path(work, "root")
        log = Path(work, "debootstrap.log")
        command = [
            debootstrap,
            "--variant=minbase",
            f"--include={','.join(PACKAGES)}",
            SUITE,
            str(root),
            mirror,
        ]
        with open(log, "wb") as out:
            proc = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, timeout=BUILD_TIMEOUT_S)
        if proc.returncode != 0:
            tail = log.read_text(errors="replace")[-3000:]
            raise DebianImageError(f"`{' '.join(command)}` exited {proc.returncode}:\n{tail}")
        # What the image does not need: downloaded .debs and package lists.
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for item in (root / junk).glob("*"):
                if item.is_file():
                    item.unlink()
        changes = [arg for env in ENV for arg in ("--change", f"ENV {env}")]
        tar = subprocess.Popen(["tar", "--numeric-owner", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
        imported = subprocess.run(
            ["docker", "import", *changes, "--change", f"LABEL rollback-pm.test-recipe={_RECIPE}", "-", tag],
            stdin=tar.stdout,
            capture_output=True,
            timeout=BUILD_TIMEOUT_S,
        )
        assert tar.stdout is not None
        tar.stdout.close()
        if tar.wait() != 0 or imported.returncode != 0:
            raise DebianImageError(f"docker import of the debootstrap root failed: {imported.stderr.decode()[-2000:]}")


def ensure_debian_image(tag: str = TAG) -> str:
    """Build the image unless this machine already has it; returns the tag."""
    if _image_exists(tag):
        return tag
    with FileLock(str(LOCK), timeout=BUILD_TIMEOUT_S):
        if not _image_exists(tag):  # another test run may have built it while we waited
            _build(tag)
    return tag


@pytest.fixture(scope="session")
def debian_image(docker_engine: None) -> str:
    """The Debian test image's tag (built on first use, a few minutes; then reused)."""
    try:
        return ensure_debian_image()
    except (DebianImageError, subprocess.TimeoutExpired) as exc:
        pytest.fail(f"cannot build the Debian test image {TAG}: {exc}")
