"""A real one-node Swarm for the Swarm tests, and services that fail the way deploys do.

The engine is shared with tests that never use Swarm: the swarm is created here, once per
session, only when a Swarm test runs (``docker swarm init --advertise-addr 127.0.0.1``),
and left at the end even when tests failed. An engine that already is a manager is used
as it is and left a manager. Services and images carry a per-session prefix and are
removed by the tests that made them.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.docker_images import ensure_busybox_image

GOOD_SHA = "a1" * 20
BAD_SHA = "b2" * 20
SECRET = "swarm-Secret-Pa55word-77"
SESSION = uuid.uuid4().hex[:6]
# Short monitors: Swarm's updater judges a task within --update-monitor and finishes a
# rollback after --rollback-monitor; the rollback's window is what a watcher has to collect.
# Two replicas updated together, of which only slot 1 of the bad version crashes: Swarm
# then has a running bad task to replace when it rolls back, so its rollback_started lasts
# (with one crashing task alone, the slot is often already empty or refilled with the good
# spec when the rollback starts, and Swarm completes it in the same instant).
REPLICAS = 2
FAST_UPDATES = [
    "--replicas", str(REPLICAS),
    "--update-parallelism", str(REPLICAS),
    "--env", "TASK_SLOT={{.Task.Slot}}",
    "--update-failure-action", "rollback",
    "--update-monitor", "3s",
    "--update-delay", "0s",
    "--rollback-monitor", "2s",
    "--rollback-delay", "0s",
    "--restart-condition", "on-failure",
    "--restart-delay", "0s",
    "--stop-grace-period", "1s",
]  # fmt: skip


def docker(*args: str, check: bool = True) -> str:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout.strip()


def _swarm_state() -> dict[str, Any]:
    return json.loads(docker("info", "--format", "{{json .Swarm}}"))


@pytest.fixture(scope="session")
def swarm(docker_engine: None) -> Iterator[str]:
    """The engine as a Swarm manager; its node id."""
    state = _swarm_state()
    created = False
    if state.get("LocalNodeState") != "active":
        docker("swarm", "init", "--advertise-addr", "127.0.0.1")
        created = True
    elif not state.get("ControlAvailable"):
        pytest.fail("this engine is a Swarm worker: the Swarm tests need a manager (or no Swarm at all)")
    try:
        yield str(_swarm_state()["NodeID"])
    finally:
        if created:
            docker("swarm", "leave", "--force", check=False)


@pytest.fixture(scope="session")
def app_images(swarm: str) -> Iterator[dict[str, str]]:
    """The good and the bad version of an app, each labelled with its revision."""
    label = "org.opencontainers.image.revision"
    good = ensure_busybox_image(
        f"rpm-swarm-{SESSION}/app:good",
        {label: GOOD_SHA},
        ["sh", "-c", 'echo "app good started"; while true; do sleep 1; done'],
    )
    bad = ensure_busybox_image(
        f"rpm-swarm-{SESSION}/app:bad",
        {label: BAD_SHA},
        [
            "sh",
            "-c",
            'echo "app bad starting"; if [ "$TASK_SLOT" = 1 ]; then sleep 1; echo "FATAL: migration 42 failed" >&2;'
            ' exit 3; fi; while true; do echo "GET /api 500"; sleep 1; done',
        ],
    )
    runs = ensure_busybox_image(
        f"rpm-swarm-{SESSION}/app:bad-but-running",
        {label: BAD_SHA},
        ["sh", "-c", 'echo "app bad started"; while true; do echo "GET /api 500"; sleep 1; done'],
    )
    yield {"good": good, "bad": bad, "runs": runs}
    # Swarm removes a removed service's task containers a little later: wait for them.
    deadline = time.monotonic() + 60
    for tag in (good, bad, runs):
        while docker("ps", "-aq", "--filter", f"ancestor={tag}", check=False) and time.monotonic() < deadline:
            time.sleep(0.5)
        docker("image", "rm", tag, check=False)


class Services:
    """Services for one test, removed at its end. Uses the docker CLI, as a pipeline would."""

    def __init__(self, images: dict[str, str]) -> None:
        self.images = images
        self.names: list[str] = []

    def create(self, name: str, *extra: str, image: str = "good", command: list[str] | None = None) -> str:
        full = f"rpmsw-{SESSION}-{uuid.uuid4().hex[:4]}-{name}"
        docker(
            "service", "create", "--detach", "--no-resolve-image", "--name", full,
            *FAST_UPDATES, *extra, self.images[image], *(command or []),
        )  # fmt: skip
        self.names.append(full)
        wait_for(lambda: running_tasks(full) >= REPLICAS, f"{full} running")
        return full

    def update(self, name: str, image: str, *extra: str) -> None:
        docker("service", "update", "--detach", "--no-resolve-image", "--image", self.images[image], *extra, name)

    def remove_all(self) -> None:
        for name in self.names:
            docker("service", "rm", name, check=False)


def inspect(name: str) -> dict[str, Any]:
    return json.loads(docker("service", "inspect", name))[0]


def update_state(name: str) -> str | None:
    return (inspect(name).get("UpdateStatus") or {}).get("State")


def running_tasks(name: str) -> int:
    return docker("service", "ps", "--filter", "desired-state=running", "--format", "{{.CurrentState}}", name).count(
        "Running"
    )


def wait_for(check: Any, what: str, timeout: float = 120.0, every: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(every)


@pytest.fixture()
def services(app_images: dict[str, str]) -> Iterator[Services]:
    made = Services(app_images)
    try:
        yield made
    finally:
        made.remove_all()


def cli_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    (tmp_path / "none.toml").write_text("")
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "ROLLBACK_PM_CONFIG": str(tmp_path / "none.toml")}
    return {**env, **extra}


def cli_args(tmp_path: Path, *args: str) -> list[str]:
    return [
        sys.executable, "-m", "rollback_pm",
        "--state-dir", str(tmp_path / "state"),
        "--log-level", "info",
        *args,
        "--evidence-dir", str(tmp_path / "evidence"),
        "--min-free-mb", "1",
        *(["--drafts-dir", str(tmp_path / "drafts")] if args[0] != "collect" else []),
    ]  # fmt: skip


def run_cli(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli_args(tmp_path, *args), capture_output=True, text=True, env=env or cli_env(tmp_path), timeout=300
    )


class EngineRelay:
    """A unix socket relaying to the real engine, which a test can cut and restore: dockerd
    going away and coming back, as a watcher sees it."""

    def __init__(self, path: str, engine: str = "/var/run/docker.sock") -> None:
        self.path = path
        self.engine = engine
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        self._server: socket.socket | None = None
        self.restore()

    @property
    def url(self) -> str:
        return f"unix://{self.path}"

    def restore(self) -> None:
        if os.path.exists(self.path):
            os.unlink(self.path)
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(self.path)
        server.listen(64)
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def cut(self) -> None:
        """Refuse new connections and break the open ones."""
        with self._lock:
            server, self._server = self._server, None
            sockets, self._open = self._open, []
        if server is not None:
            server.close()
            os.unlink(self.path)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(self.engine)
            with self._lock:
                self._open += [conn, upstream]
            for a, b in ((conn, upstream), (upstream, conn)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.cut()


@pytest.fixture()
def relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineRelay]:
    engine_relay = EngineRelay(str(tmp_path_factory.mktemp("rl") / "e.sock"))
    try:
        yield engine_relay
    finally:
        engine_relay.close()
