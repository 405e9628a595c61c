"""`pip install` of the built wheel into a fresh venv gives a working rollback-pm with its
templates and the on-rollback hook (not an editable install: what users get)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
import venv
import zipfile
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the package's own dependency
    import tomli as tomllib

import pytest

from .conftest import ROOT, SYSTEM_PATH

# What a build needs: the .dockerignore allow-list, less what only the image needs (constraints.txt).
SOURCES = ("pyproject.toml", "setup.cfg", "README.md", "LICENSE", "rollback_pm", "hooks")


def pip(python: Path, *args: str, cwd: Path) -> None:
    result = subprocess.run(
        [str(python), "-m", "pip", "--disable-pip-version-check", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def copy_sources(src: Path) -> Path:
    """A copy of what a build reads, so that building leaves the checkout clean."""
    src.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(ROOT / name, src / name)
    return src


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(wheel, venv): the wheel built from a copy of the sources (the checkout stays clean),
    installed with its dependencies into a new venv."""
    work = tmp_path_factory.mktemp("wheel")
    src = copy_sources(work / "src")
    pip(Path(sys.executable), "wheel", "--no-deps", "--wheel-dir", str(work / "dist"), str(src), cwd=work)
    (wheel,) = (work / "dist").glob("rollback_pm-*.whl")
    env_dir = work / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    pip(env_dir / "bin" / "python", "install", "--no-cache-dir", str(wheel), cwd=work)
    return wheel, env_dir


def source_templates() -> set[str]:
    return {p.name for p in (ROOT / "rollback_pm" / "templates").glob("*.j2")}


def test_wheel_holds_every_template_and_the_hook(installed):
    wheel, _ = installed
    names = zipfile.ZipFile(wheel).namelist()
    assert {
        Path(n).name for n in names if n.startswith("rollback_pm/templates/") and n.endswith(".j2")
    } == source_templates()
    assert any(n.endswith(".data/scripts/on-rollback") for n in names)
    assert not [n for n in names if n.startswith(("tests/", "scripts/", "docs/"))]


def test_wheel_ships_the_license(installed):
    wheel, _ = installed
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        # Metadata 2.4 puts it under licenses/, older setuptools beside METADATA.
        licenses = [n for n in names if ".dist-info/" in n and n.endswith("/LICENSE")]
        assert len(licenses) == 1, names
        assert archive.read(licenses[0]).decode() == (ROOT / "LICENSE").read_text()
        metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "License-File: LICENSE" in metadata.splitlines()


@pytest.fixture(scope="module")
def sdist(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(sdist, builder python): the sdist built by the project's own build backend, in a venv
    holding only pyproject.toml's build requirements."""
    work = tmp_path_factory.mktemp("sdist")
    src = copy_sources(work / "src")
    builder = work / "builder"
    venv.EnvBuilder(with_pip=True).create(builder)
    python = builder / "bin" / "python"
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"]
    pip(python, "install", "--no-cache-dir", *requires, cwd=work)
    build = subprocess.run(
        [str(python), "-c", f"import setuptools.build_meta as b; print(b.build_sdist({str(work / 'dist')!r}))"],
        cwd=src,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    return work / "dist" / build.stdout.split()[-1], python


def test_sdist_ships_the_license_and_builds_a_wheel_that_does(sdist, tmp_path):
    archive, python = sdist
    safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}  # Python < 3.10.12 has no filters
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path, **safe)
    (unpacked,) = tmp_path.iterdir()
    assert (unpacked / "LICENSE").read_text() == (ROOT / "LICENSE").read_text()
    assert "License-File: LICENSE" in (unpacked / "PKG-INFO").read_text().splitlines()

    # What pip does with the sdist on a machine without a wheel: the license survives.
    out = tmp_path / "wheel"
    build = subprocess.run(
        [str(python), "-c", f"import setuptools.build_meta as b; print(b.build_wheel({str(out)!r}))"],
        cwd=unpacked,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    with zipfile.ZipFile(out / build.stdout.split()[-1]) as wheel:
        assert [n for n in wheel.namelist() if ".dist-info/" in n and n.endswith("/LICENSE")]


def test_installed_package_works_and_finds_its_templates(installed, tmp_path):
    from rollback_pm import __version__

    _, env_dir = installed
    env = {"PATH": SYSTEM_PATH}  # nothing of this checkout is importable from tmp_path
    version = subprocess.run(
        [str(env_dir / "bin" / "rollback-pm"), "--version"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (version.returncode, version.stdout) == (0, f"rollback-pm, version {__version__}\n")

    listing = subprocess.run(
        [
            str(env_dir / "bin" / "python"),
            "-c",
            "import importlib.resources as r, json, rollback_pm; "
            "t = r.files('rollback_pm') / 'templates'; "
            "print(json.dumps({'file': rollback_pm.__file__, "
            "'templates': sorted(p.name for p in t.iterdir() if p.name.endswith('.j2')) if t.is_dir() else []}))",
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listing.returncode == 0, listing.stderr
    found = json.loads(listing.stdout)
    assert found["file"].startswith(str(env_dir))  # the installed copy, not the checkout
    assert set(found["templates"]) == source_templates()


def test_wheel_holds_the_report_page(installed):
    wheel, _ = installed
    assert "rollback_pm/report/page.html.j2" in zipfile.ZipFile(wheel).namelist()


def test_installed_without_the_report_extra(installed, tmp_path):
    """A plain install (the plugin image's) has no matplotlib: --json works, --html names the extra."""
    _, env_dir = installed

    def rollback_pm(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(env_dir / "bin" / "rollback-pm"), "--state-dir", str(tmp_path / "state"), *args],
            env={"PATH": SYSTEM_PATH},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )

    assert rollback_pm("incidents", "list").stdout == "no incidents\n"  # makes the ledger
    figures = rollback_pm("report", "--json")
    assert (figures.returncode, figures.stderr) == (0, "")
    assert json.loads(figures.stdout)["rollbacks"]["count"] == 0
    page = rollback_pm("report", "--html", "report.html")
    assert (page.returncode, page.stdout) == (2, "")
    assert page.stderr == (
        "rollback-pm: the HTML report draws its plots with matplotlib, which is not installed: "
        "pip install 'rollback-pm[report]' (scripts/bootstrap.sh installs it); --json and --csv work without it\n"
    )
    assert not (tmp_path / "report.html").exists()


def test_installed_on_rollback_runs_the_rollback_pm_beside_it(installed, tmp_path):
    _, env_dir = installed
    # PATH lacks the venv: the hook must find rollback-pm next to itself.
    result = subprocess.run(
        [str(env_dir / "bin" / "on-rollback"), "--strict", "collect", "--help"],
        env={"PATH": SYSTEM_PATH},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Usage: rollback-pm hook [OPTIONS]")
    assert "--phase [both|collect|finalize]" in result.stdout


RENDER_ALL = r"""
import json, sys
from datetime import datetime, timezone
import importlib.resources as resources
import jinja2
from rollback_pm import drafts
from rollback_pm.models import Commit, EvidenceFile, Incident, SmokeStep

t = lambda m: datetime(2026, 5, 13, 8, m, tzinfo=timezone.utc)
incident = Incident(
    id="3f2a9c1b7d4e", service="shop", environment="production", deploy_sha="a" * 40, rollback_sha="b" * 40,
    rollback_sha_source="image-label", pipeline_number="42", pipeline_url="https://ci.example.com/repos/7/pipeline/42",
    repo="acme/shop", started_at=t(40), detected_at=t(47), mitigated_at=t(55), severity="High",
    detected_by="smoke test", owner="@ana",
    smoke_steps=[SmokeStep(name="api health", status="failed", step=3, ts=t(47), message="502 Bad Gateway")],
    evidence=[EvidenceFile(path="/var/log/azaion/rollback-20260513T085500Z.log", kind="log", sha256="c" * 64,
                           bytes=2048, bundle="20260513T085500Z")],
    commits=[Commit(sha="a" * 40, author="Ana", subject="feat: tenant column migration", date=t(30))],
)
packaged = sorted(p.name for p in (resources.files("rollback_pm") / "templates").iterdir() if p.name.endswith(".j2"))
env = jinja2.Environment(loader=jinja2.PackageLoader("rollback_pm", "templates"))
parsed = [env.parse(env.loader.get_source(env, name)[0]) and name for name in packaged]  # partials parse too
out = {name: drafts.render(incident, name, now=t(58)) for name in drafts.TEMPLATE_NAMES}
print(json.dumps({"packaged": packaged, "parsed": parsed, "rendered": out}))
"""


def test_installed_templates_all_render(installed, tmp_path):
    _, env_dir = installed
    result = subprocess.run(
        [str(env_dir / "bin" / "python"), "-c", RENDER_ALL],
        env={"PATH": SYSTEM_PATH},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["packaged"] == found["parsed"] == sorted(source_templates())
    assert set(found["rendered"]) == {"azaion", "blameless", "sev", "finance"}
    for name, text in found["rendered"].items():
        assert "a" * 7 in text and "api health" in text, name
        assert "{{" not in text and "{%" not in text, name
