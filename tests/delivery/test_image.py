"""The plugin image builds and behaves, when its base image is in the local engine.

Tests never pull from a registry: without the base image this test is skipped and says
how to run it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import uuid

import pytest

from .conftest import ROOT


def docker(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)


def base_image() -> str:
    override = os.environ.get("ROLLBACK_PM_TEST_PYTHON_IMAGE")
    if override:
        return override
    match = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", (ROOT / "Dockerfile").read_text(), re.M)
    assert match, "Dockerfile lost its ARG PYTHON_IMAGE default"
    return match.group(1)


@pytest.mark.docker
def test_plugin_image_builds_and_runs_as_its_user():
    info = docker("info", "--format", "{{.ServerVersion}}", timeout=30)
    assert info.returncode == 0, f"no Docker engine: {info.stderr.strip()} (scripts/test.sh starts one)"
    base = base_image()
    if docker("image", "inspect", base, timeout=30).returncode != 0:
        pytest.skip(f"base image {base} is not in the local Docker engine, and tests never pull it: "
                    f"`docker pull {base}` (or set ROLLBACK_PM_TEST_PYTHON_IMAGE to a local Python slim image) "
                    "to run this test")

    tag = f"rpm-delivery-plugin:{uuid.uuid4().hex[:12]}"
    # The build stage fetches the dependencies' wheels from the package index: host network.
    build = subprocess.run(["docker", "build", "--network", "host", "--build-arg", f"PYTHON_IMAGE={base}",
                            "--build-arg", "VERSION=test", "-t", tag, str(ROOT)],
                           capture_output=True, text=True, timeout=1200)
    try:
        assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-4000:]
        config = json.loads(docker("image", "inspect", tag).stdout)[0]["Config"]
        assert config["User"] == "10001:10001"
        assert config["Entrypoint"] == ["/usr/local/bin/plugin-entrypoint"]
        assert config["Labels"]["org.opencontainers.image.version"] == "test"
        assert config["Labels"]["org.opencontainers.image.base.name"] == base

        from rollback_pm import __version__

        version = docker("run", "--rm", "--network", "none", "--entrypoint", "rollback-pm", tag, "--version")
        assert version.stdout == f"rollback-pm, version {__version__}\n", version.stderr

        inside = docker("run", "--rm", "--network", "none", "--entrypoint", "sh", tag, "-c",
                        "id -u; command -v on-rollback git; command -v pip gcc cc; ls -A /tmp /root/.cache 2>/dev/null;"
                        " python -c 'import rollback_pm' && echo importable")
        assert inside.stdout.split() == ["10001", "/usr/local/bin/on-rollback", "/usr/bin/git", "importable"]

        unknown = docker("run", "--rm", "--network", "none", "-e", "PLUGIN_COMMAND=deploy", tag)
        assert unknown.returncode == 2
        assert "unknown command 'deploy'" in unknown.stderr
    finally:
        docker("rmi", "-f", tag)
