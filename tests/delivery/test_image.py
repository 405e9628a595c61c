"""The plugin image builds and behaves, when its base image is in the local engine.

Tests never pull from a registry: without the base image this test is skipped and says
how to run it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name
from packaging.version import Version

from .conftest import ROOT, pins


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
        pytest.skip(
            f"base image {base} is not in the local Docker engine, and tests never pull it: "
            f"`docker pull {base}` (or set ROLLBACK_PM_TEST_PYTHON_IMAGE to a local Python slim image) "
            "to run this test"
        )

    tag = f"rpm-delivery-plugin:{uuid.uuid4().hex[:12]}"
    tags = [f"{tag}-build", tag]
    try:
        # The build stage is tagged too (then reused from the cache), so that nothing of this
        # build is left dangling. It fetches the dependencies' wheels from the package index.
        for target, name in (("build", tags[0]), (None, tags[1])):
            build = subprocess.run(
                [
                    "docker",
                    "build",
                    "--force-rm",
                    "--network",
                    "host",
                    "--build-arg",
                    f"PYTHON_IMAGE={base}",
                    "--build-arg",
                    "VERSION=test",
                    *(["--target", target] if target else []),
                    "-t",
                    name,
                    str(ROOT),
                ],
                capture_output=True,
                text=True,
                timeout=1200,
            )
            assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-4000:]
        check_image(tag, base)
    finally:
        docker("rmi", "-f", *tags)


def check_image(tag: str, base: str) -> None:
    from rollback_pm import __version__

    config = json.loads(docker("image", "inspect", tag).stdout)[0]["Config"]
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["/usr/local/bin/plugin-entrypoint"]
    assert config["Labels"]["org.opencontainers.image.version"] == "test"
    assert config["Labels"]["org.opencontainers.image.base.name"] == base

    version = docker("run", "--rm", "--network", "none", "--entrypoint", "rollback-pm", tag, "--version")
    assert version.stdout == f"rollback-pm, version {__version__}\n", version.stderr

    inside = docker(
        "run",
        "--rm",
        "--network",
        "none",
        "--entrypoint",
        "sh",
        tag,
        "-c",
        "id -u; for t in on-rollback git pip gcc cc; do command -v $t; done; ls -A /tmp;"
        " ls -A /root/.cache 2>/dev/null; python -c 'import rollback_pm' && echo importable",
    )
    assert inside.stdout.split() == ["10001", "/usr/local/bin/on-rollback", "/usr/bin/git", "importable"]

    # Every installed distribution is the pinned version (constraints.txt): builds are repeatable.
    listed = docker(
        "run",
        "--rm",
        "--network",
        "none",
        "--entrypoint",
        "python",
        tag,
        "-c",
        "import importlib.metadata as m, json; "
        "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))",
    )
    assert listed.returncode == 0, listed.stderr
    installed = {canonicalize_name(name): Version(v) for name, v in json.loads(listed.stdout).items()}
    assert installed.pop("rollback-pm") == Version(__version__)
    pinned = pins()
    assert {name: pinned.get(name) for name in installed} == installed
    assert "matplotlib" not in installed  # the report extra (its plots) stays out of the plugin image

    unknown = docker("run", "--rm", "--network", "none", "-e", "PLUGIN_COMMAND=deploy", tag)
    assert unknown.returncode == 2
    assert "unknown command 'deploy'" in unknown.stderr

    # Started as root with the docker socket mounted: the hook runs as 10001 in the socket's group.
    gid = os.stat("/var/run/docker.sock").st_gid
    with tempfile.TemporaryDirectory(prefix="rpm-delivery-") as rec:
        os.chmod(rec, 0o755)
        probe = Path(rec) / "probe"
        probe.write_text('#!/bin/sh\necho "$*"; id -u; id -G\n')
        probe.chmod(0o755)
        dropped = docker(
            "run",
            "--rm",
            "--network",
            "none",
            "--user",
            "0",
            "-v",
            "/var/run/docker.sock:/var/run/docker.sock",
            "-v",
            f"{rec}:/probe:ro",
            "-e",
            "ROLLBACK_PM_BIN=/probe/probe",
            "-e",
            "PLUGIN_PHASE=collect",
            tag,
        )
    assert dropped.returncode == 0, dropped.stderr
    assert dropped.stdout.splitlines() == ["hook --phase collect", "10001", f"10001 {gid}"]
    assert "may not use it" not in dropped.stderr
