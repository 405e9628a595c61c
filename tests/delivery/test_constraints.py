"""constraints.txt pins every runtime dependency, and the image is built from it, so that
two builds of the plugin image install the same packages."""

from __future__ import annotations

import configparser
import json
import platform
import re
import subprocess
import sys

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from .conftest import CONSTRAINTS, ROOT, pins


def runtime_requirements() -> list[Requirement]:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    lines = config["options"]["install_requires"].splitlines()
    return [Requirement(line.strip()) for line in lines if line.strip()]


def report_requirements() -> list[Requirement]:
    """The report extra (matplotlib): pinned too, so the dev venv's plots are repeatable."""
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    lines = config["options.extras_require"]["report"].splitlines()
    return [Requirement(line.strip()) for line in lines if line.strip()]


def image_python() -> str:
    match = re.search(r"^ARG PYTHON_IMAGE=python:(\d+\.\d+\.\d+)-", (ROOT / "Dockerfile").read_text(), re.M)
    assert match, "Dockerfile lost its ARG PYTHON_IMAGE=python:X.Y.Z-... default"
    return match.group(1)


def environments() -> dict[str, dict[str, str]]:
    """The Pythons the pins must serve: the image's, and the one running the tests."""
    image = image_python()
    return {
        f"the image's Python {image}": {"python_version": image.rsplit(".", 1)[0], "python_full_version": image},
        f"this Python {platform.python_version()}": {},
    }


def test_every_runtime_dependency_is_pinned_within_its_range():
    pinned = pins()
    for where, env in environments().items():
        for requirement in runtime_requirements() + report_requirements():
            if requirement.marker and not requirement.marker.evaluate(env):
                continue
            name = canonicalize_name(requirement.name)
            assert name in pinned, (
                f"{requirement} (setup.cfg) is not pinned in constraints.txt for {where}: "
                "run scripts/update-constraints.sh"
            )
            assert requirement.specifier.contains(pinned[name], prereleases=True), (
                f"constraints.txt pins {name}=={pinned[name]}, outside setup.cfg's {requirement}: "
                "run scripts/update-constraints.sh"
            )


def test_the_pins_are_the_whole_dependency_tree(tmp_path):
    """pip, asked to install the runtime requirements and the report extra under the constraints,
    picks exactly the pinned versions and nothing unpinned (a dry run: nothing is installed)."""
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("".join(f"{r}\n" for r in runtime_requirements() + report_requirements()))
    report = tmp_path / "report.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--disable-pip-version-check",
            "install",
            "--dry-run",
            "--ignore-installed",
            "--quiet",
            "--report",
            str(report),
            "--constraint",
            str(CONSTRAINTS),
            "--requirement",
            str(requirements),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    chosen = {
        canonicalize_name(item["metadata"]["name"]): Version(item["metadata"]["version"])
        for item in json.loads(report.read_text())["install"]
    }
    pinned = pins()
    unpinned = sorted(set(chosen) - set(pinned))
    assert not unpinned, f"pip would install {unpinned} unpinned: run scripts/update-constraints.sh"
    assert {name: chosen[name] for name in chosen} == {name: pinned[name] for name in chosen}


def test_the_image_is_built_from_the_constraints():
    dockerfile = (ROOT / "Dockerfile").read_text()
    build = dockerfile[: dockerfile.rindex("\nFROM ")]
    copied = [line.split()[1:-1] for line in build.splitlines() if line.startswith("COPY ")]
    assert any("constraints.txt" in names for names in copied)
    wheel = re.search(r"^RUN python -m pip wheel (.*)$", build, re.M)
    assert wheel and "--constraint constraints.txt" in wheel.group(1), "the build stage must resolve with the pins"
    assert "!constraints.txt" in (ROOT / ".dockerignore").read_text().splitlines()


def test_the_dev_venv_is_built_from_the_constraints():
    bootstrap = (ROOT / "scripts" / "bootstrap.sh").read_text()
    assert re.search(r'pip" install .*--constraint "\$ROOT/constraints.txt"', bootstrap)
    assert '"$ROOT/constraints.txt"' in bootstrap.split("want=", 1)[1].split("\n", 1)[0]  # a new pin rebuilds it
