import os
import subprocess

import pytest

from tests.support.docker_images import ensure_busybox_image


def _docker_ok() -> bool:
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture()
def clean_env(monkeypatch):
    """No ROLLBACK_PM_*, PLUGIN_* or CI settings from the outside; our logs on stderr, warnings only."""
    from rollback_pm.log import configure

    for name in list(os.environ):
        if name.startswith(("ROLLBACK_PM_", "CI_", "PLUGIN_")) or name == "CI":
            monkeypatch.delenv(name, raising=False)
    configure()


@pytest.fixture(scope="session")
def docker_engine() -> None:
    """Docker tests need a real engine. scripts/test.sh starts one; without it they FAIL
    (never skip silently) unless ROLLBACK_PM_SKIP_DOCKER=1 asks to skip them, visibly."""
    if _docker_ok():
        return
    if os.environ.get("ROLLBACK_PM_SKIP_DOCKER") == "1":
        pytest.skip("ROLLBACK_PM_SKIP_DOCKER=1: docker tests skipped on request")
    pytest.fail("no Docker engine answers `docker info`; run the tests with scripts/test.sh, which starts dockerd")


@pytest.fixture(scope="session")
def busybox_image(docker_engine) -> str:
    return ensure_busybox_image()
