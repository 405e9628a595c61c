"""Tiny test images built from the host's busybox: no registry needed."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

APPLETS = ("sh", "echo", "sleep", "seq", "yes", "head", "cat", "printf", "date", "dd", "true", "false")


def ensure_busybox_image(
    tag: str = "rollback-pm-test/busybox:1", labels: dict[str, str] | None = None, cmd: list[str] | None = None
) -> str:
    """Import a busybox root as ``tag`` unless it exists; returns the tag. ``cmd``: its CMD."""
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
        if cmd:
            changes += ["--change", f"CMD {json.dumps(cmd)}"]
        tar = subprocess.Popen(["tar", "-C", root, "-c", "."], stdout=subprocess.PIPE)
        subprocess.run(["docker", "import", *changes, "-", tag], stdin=tar.stdout, check=True, capture_output=True)
        tar.wait()
    return tag


# --- containers through the SDK, and a fault-injecting proxy in front of the engine -------

import socket  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from typing import Any  # noqa: E402

import docker  # noqa: E402

TEST_LABEL = "rollback-pm.test-session"


class Containers:
    """Throwaway containers for one test, named ``<prefix><name>`` and removed by ``cleanup``.

    Uses the SDK (the docker CLI here is newer than the daemon); ``--network none`` always.
    """

    def __init__(self, image: str, prefix: str | None = None) -> None:
        self.client = docker.APIClient(version="auto", timeout=120)
        self.image = image
        self.prefix = prefix or f"rpm-evid-{uuid.uuid4().hex[:6]}-"
        self.session = self.prefix.rstrip("-")
        self.created: list[str] = []

    def run(
        self,
        name: str,
        script: str = "",
        *,
        env: dict[str, str] | None = None,
        labels: dict[str, str] | None = None,
        log_driver: str = "json-file",
        log_opts: dict[str, str] | None = None,
        tty: bool = False,
        wait: bool = True,
        command: list[str] | None = None,
        healthcheck: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Run ``sh -c script`` (or ``command``); waits for the exit unless ``wait`` is False."""
        host_config = self.client.create_host_config(
            network_mode="none", log_config={"Type": log_driver, "Config": log_opts or {}}
        )
        container = self.client.create_container(
            self.image,
            command=command if command is not None else ["sh", "-c", script],
            name=f"{self.prefix}{name}",
            environment=env or {},
            labels={TEST_LABEL: self.session, **(labels or {})},
            tty=tty,
            host_config=host_config,
            healthcheck=healthcheck,
        )
        self.created.append(container["Id"])
        self.client.start(container["Id"])
        if wait:
            self.client.wait(container["Id"], timeout=120)
        return self.client.inspect_container(container["Id"])

    def wait_for_log(self, ident: str, text: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while text.encode() not in self.client.logs(ident):
            if time.monotonic() > deadline:
                raise AssertionError(f"{ident} never logged {text!r}")
            time.sleep(0.05)

    def remove(self, ident: str) -> None:
        try:
            self.client.remove_container(ident, force=True)
        except docker.errors.NotFound:
            pass

    def cleanup(self) -> None:
        for ident in self.created:
            self.remove(ident)
        self.created.clear()
        self.client.close()


def _stop_listening(server: socket.socket) -> None:
    """Close a listening socket so that a thread blocked in accept() returns (close alone does not wake it)."""
    try:
        server.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    server.close()


class StallingProxy:
    """A unix-socket relay to the real engine that can stall chosen requests.

    Each connection carries one request (``Connection: close`` is added). A request whose
    path contains one of ``stall`` gets the first ``after_bytes`` bytes of the engine's
    answer, then nothing until the client gives up: a hung container or a stalled API.
    """

    def __init__(self, path: str, engine: str = "/var/run/docker.sock") -> None:
        self.path = path
        self.engine = engine
        self.stall: list[str] = []
        self.after_bytes = 0
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(path)
        self._server.listen(64)
        self._closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"unix://{self.path}"

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        upstream = None
        try:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                head += chunk
            head, _, rest = head.partition(b"\r\n\r\n")
            request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
            lines = [h for h in head.split(b"\r\n") if not h.lower().startswith(b"connection:")]
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(self.engine)
            upstream.sendall(b"\r\n".join(lines) + b"\r\nConnection: close\r\n\r\n" + rest)
            limit = self.after_bytes if any(s in request_line for s in self.stall) else None
            sent = 0
            while True:
                data = upstream.recv(65536)
                if not data:
                    break
                if limit is not None and sent + len(data) > limit:
                    conn.sendall(data[: limit - sent])
                    self._closed.wait()  # hold the connection open, silent
                    return
                conn.sendall(data)
                sent += len(data)
        except OSError:
            pass
        finally:
            conn.close()
            if upstream is not None:
                upstream.close()

    def close(self) -> None:
        self._closed.set()
        _stop_listening(self._server)


class SilentEngine:
    """A unix socket that accepts connections, reads what is sent and never answers.

    What a wedged dockerd looks like from the client: connect() succeeds, every request
    waits forever. Only a client-side deadline ends the wait.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(path)
        self._server.listen(64)
        self._conns: list[socket.socket] = []
        self._closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"unix://{self.path}"

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            self._conns.append(conn)  # kept open and unanswered

    def close(self) -> None:
        self._closed.set()
        _stop_listening(self._server)
        for conn in self._conns:
            conn.close()
