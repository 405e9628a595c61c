"""An engine that is not a Swarm manager: exit 2, and the message says where to point DOCKER_HOST.

The shared engine is a manager while the Swarm tests run, so the engine here is a loopback
server answering as dockerd 20.10 does (fixtures/engine-version.json is its real /version;
the Swarm blocks are those `docker info` showed before `docker swarm init`, and on a worker).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.swarm.conftest import cli_env, run_cli

FIXTURES = Path(__file__).parent / "fixtures"
NOT_IN_SWARM = {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive", "ControlAvailable": False, "Error": ""}
WORKER = {"NodeID": "q1w2e3", "NodeAddr": "10.0.0.7", "LocalNodeState": "active", "ControlAvailable": False}


def engine(swarm: dict[str, object]) -> Iterator[str]:
    version = (FIXTURES / "engine-version.json").read_bytes()

    class Engine(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.endswith("/version"):
                body = version
            elif self.path.endswith("/info"):
                body = json.dumps({"ServerVersion": "20.10.24+dfsg1", "Swarm": swarm}).encode()
            else:
                self.send_response(404)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Engine)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"tcp://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture()
def no_swarm_engine() -> Iterator[str]:
    yield from engine(NOT_IN_SWARM)


@pytest.fixture()
def worker_engine() -> Iterator[str]:
    yield from engine(WORKER)


@pytest.mark.parametrize("command", [["collect"], ["hook", "--deploy-sha", "b" * 40], ["watch", "--once"]])
def test_an_engine_outside_any_swarm(tmp_path: Path, no_swarm_engine: str, command: list[str]) -> None:
    result = run_cli(tmp_path, *command, "--swarm-service", "web", env=cli_env(tmp_path, DOCKER_HOST=no_swarm_engine))
    assert result.returncode == 2, result.stderr
    host = no_swarm_engine.replace("tcp://", "http://")  # as the Docker SDK names it
    assert result.stderr.strip() == (
        f"rollback-pm: the Docker engine at {host} is not a Swarm manager (its Swarm state is 'inactive'). "
        "Services, tasks and their logs are only known to managers: run rollback-pm on a manager or set "
        "DOCKER_HOST (or --docker-host) to one (`docker node ls` lists them)."
    )


def test_a_worker_node(tmp_path: Path, worker_engine: str) -> None:
    result = run_cli(tmp_path, "collect", "--stack", "shop", "--docker-host", worker_engine)
    assert result.returncode == 2
    assert "is not a Swarm manager (it is a worker node)" in result.stderr
