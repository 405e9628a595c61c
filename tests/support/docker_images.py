"""Tiny test images built from the host's busybox: no registry needed."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

APPLETS = ("sh", "echo", "sleep", "seq", "yes", "head", "cat", "printf", "date", "dd", "true", "false")


def ensure_busybox_image(tag: str = "rollback-pm-test/busybox:1", labels: dict[str, str] | None = None) -> str:
    """Import a busybox root as ``tag`` unless it exists; returns the tag."""
    if subprocess.run(["docker", "image", "inspect", tag], capture_output=True).returncode == 0:
        return tag
    busybox = shutil.which("busybox") or "/bin/busybox"
    with tempfile.TemporaryDirectory() as root:
        bin_dir = Path(root, "bin")
        bin_dir.mkdir()
        shutil.copy(busybox, bin_dir / "busybox")
        for applet in APPLETS:
            (bin_dir / applet).symlink_to("busybox")
        changes = [arg for k, v in (labels or {}).items() for arg in ("--change", f"LABEL {k}={v}")]
        tar = subprocess.Popen(["tar", "-C", root, "-c", "."], stdout=subprocess.PIPE)
        subprocess.run(["docker", "import", *changes, "-", tag], stdin=tar.stdout, check=True, capture_output=True)
        tar.wait()
    return tag
