"""A Woodpecker CI server on loopback (repos, pipelines with workflows and steps, step logs),
validated against the vendored Woodpecker Swagger 2 spec.

Known deviation of the real server from its own spec, kept here: a LogEntry's ``data`` is a
Go ``[]byte``, which encoding/json writes as a base64 string, while the generated spec says
"array of integers". The fake answers like the server, and that operation's response check
is exempted (with the reason).
"""

from __future__ import annotations

import base64
from functools import cache
from typing import Any

from tests.support import SPECS
from tests.support.specserver import (
    FakeService,
    Request,
    Response,
    Spec,
    SpecServer,
    load_spec_document,
)

LOGS = "/repos/{repo_id}/logs/{pipeline_number}/{step_id}"


@cache
def woodpecker_spec() -> Spec:
    return Spec(load_spec_document(SPECS / "woodpecker.swagger.json"), greedy=("repo_full_name",))


class FakeWoodpecker(FakeService):
    def __init__(self, *, token: str = "wp-Secret-Token-0xFEED") -> None:
        self.token = token
        self.repos: dict[str, dict[str, Any]] = {}
        self.pipelines: dict[tuple[int, int], dict[str, Any]] = {}
        self.logs: dict[tuple[int, int, int], list[dict[str, Any]]] = {}
        self.server = SpecServer(
            woodpecker_spec(),
            name="woodpecker",
            authenticate=self._authenticate,
            exempt={
                ("GET", LOGS): "LogEntry.data is a Go []byte: base64 JSON string, not the integer array the spec says"
            },
        )
        self.server.route("GET", "/repos/lookup/{repo_full_name}", self._lookup)
        self.server.route("GET", "/repos/{repo_id}/pipelines/{pipeline_number}", self._pipeline)
        self.server.route("GET", LOGS, self._logs)

    @property
    def url(self) -> str:
        """The server's URL (CI_SYSTEM_URL); the API is under /api."""
        return self.server.origin

    # -- state

    def add_repo(self, full_name: str, repo_id: int = 7) -> int:
        owner, name = full_name.split("/", 1)
        with self.server.lock:
            self.repos[full_name] = {
                "id": repo_id,
                "forge_id": 1,
                "forge_remote_id": "42",
                "owner": owner,
                "name": name,
                "full_name": full_name,
                "forge_url": f"https://git.example.com/{full_name}",
                "clone_url": f"https://git.example.com/{full_name}.git",
                "default_branch": "main",
                "private": True,
                "visibility": "private",
                "active": True,
                "allow_pr": True,
                "allow_deploy": True,
                "config_file": ".woodpecker.yaml",
                "timeout": 60,
                "require_approval": "forks",
            }
        return repo_id

    def add_pipeline(self, repo_id: int, number: int, workflows: list[dict[str, Any]], **fields: Any) -> None:
        """``workflows``: [{"name": ..., "steps": [{"name", "state", "started", "finished", "exit_code", ...}]}]."""
        pid = 0
        built = []
        step_id = 1000 * number
        for w_index, workflow in enumerate(workflows, 1):
            pid += 1
            workflow_pid = pid
            children = []
            for step in workflow["steps"]:
                pid += 1
                step_id += 1
                children.append(
                    {
                        "id": step.get("id", step_id),
                        "uuid": f"01J{step_id:023d}",
                        "pid": pid,
                        "ppid": workflow_pid,
                        "pipeline_id": 500 + number,
                        "name": step["name"],
                        "state": step["state"],
                        "error": step.get("error", ""),
                        "exit_code": step.get("exit_code", 0),
                        "started": step.get("started", 0),
                        "finished": step.get("finished", 0),
                        "type": step.get("type", "commands"),
                    }
                )
            states = [c["state"] for c in children]
            built.append(
                {
                    "id": 900 + w_index,
                    "pipeline_id": 500 + number,
                    "pid": workflow_pid,
                    "name": workflow["name"],
                    "state": "failure" if "failure" in states else "success",
                    "started": min((c["started"] for c in children if c["started"]), default=0),
                    "finished": max((c["finished"] for c in children), default=0),
                    "agent_id": 1,
                    "platform": "linux/amd64",
                    "environ": {},
                    "children": children,
                }
            )
        pipeline = {
            "id": 500 + number,
            "number": number,
            "status": fields.pop("status", "failure"),
            "event": fields.pop("event", "push"),
            "branch": "main",
            "ref": "refs/heads/main",
            "commit": fields.pop("commit", "0123456789abcdef0123456789abcdef01234567"),
            "message": "deploy",
            "author": "alice",
            "created": 1778662000,
            "started": 1778662005,
            "finished": 1778662400,
            "forge_url": "https://git.example.com/acme/shop/commit/0123456",
            "workflows": built,
            **fields,
        }
        with self.server.lock:
            self.pipelines[(repo_id, number)] = pipeline

    def step(self, repo_id: int, number: int, name: str) -> dict[str, Any]:
        for workflow in self.pipelines[(repo_id, number)]["workflows"]:
            for child in workflow["children"]:
                if child["name"] == name:
                    return child
        raise KeyError(name)

    def add_log(self, repo_id: int, number: int, step_id: int, lines: list[str], start_time: int = 0) -> None:
        entries = [
            {
                "id": i + 1,
                "step_id": step_id,
                "time": start_time + i,
                "line": i,
                "data": base64.b64encode(text.encode()).decode(),
                "type": 0,
            }
            for i, text in enumerate(lines)
        ]
        with self.server.lock:
            self.logs[(repo_id, number, step_id)] = entries

    # -- handlers

    def _authenticate(self, req: Request) -> Response | None:
        if req.header("authorization") == f"Bearer {self.token}":
            return None
        return Response(401, "Unauthorized")

    def _lookup(self, req: Request) -> Response:
        repo = self.repos.get(req.params["repo_full_name"])
        return Response(200, repo) if repo else Response(404, "Not Found")

    def _pipeline(self, req: Request) -> Response:
        pipeline = self.pipelines.get((int(req.params["repo_id"]), int(req.params["pipeline_number"])))
        return Response(200, pipeline) if pipeline else Response(404, "Not Found")

    def _logs(self, req: Request) -> Response:
        key = (int(req.params["repo_id"]), int(req.params["pipeline_number"]), int(req.params["step_id"]))
        if key not in self.logs:
            return Response(404, "Not Found")
        return Response(200, self.logs[key])
