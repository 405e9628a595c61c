"""A stateful Gitea or Forgejo on loopback, validated against the vendored Swagger 2 specs.

It behaves like the real forges where it matters to a client: ``Authorization: token …``,
labels that must exist and are passed by id, issue search by label names where names the
repository does not know are silently dropped from the filter (so an unknown label returns
every issue, as on the real forges), the default ``state=open`` of the issue list, pages of
at most 50, issue assets limited to the default allowed file types, file commits that
create branches, and one open pull request per base/head. Label names need not be unique
(the forges accept a second label of the same name: POST /labels answers 201, 404 or 422,
never a conflict), issue and pull request numbers share one sequence, and reading a pull
request's number as an issue answers it with ``pull_request`` set.

The issue list can lag behind writes, as it does on a forge whose issue indexer (Elastic,
Meilisearch) or read replica is behind: with ``search_lag`` seconds (on ``clock``), the list
shows each issue as it was that long ago, while GET /issues/{index} is always current.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import time
from collections.abc import Callable
from datetime import datetime, timezone
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

GREEDY = ("filepath", "head", "branch")  # the forges route these as wildcards (they contain '/')
# Gitea's default [attachment] ALLOWED_TYPES
ALLOWED_TYPES = [
    ".cpio",
    ".csv",
    ".doc",
    ".docx",
    ".gif",
    ".gz",
    ".jpeg",
    ".jpg",
    ".json",
    ".jsonc",
    ".log",
    ".md",
    ".mov",
    ".mp4",
    ".odf",
    ".odg",
    ".odp",
    ".ods",
    ".odt",
    ".patch",
    ".pdf",
    ".png",
    ".pptx",
    ".svg",
    ".tgz",
    ".txt",
    ".webm",
    ".xls",
    ".xlsx",
    ".zip",
]
DEFAULT_PAGE, MAX_PAGE = 30, 50
# How the forges find issue references in a body or comment (#12 in the repository,
# owner/name#12 anywhere): at a word start, not preceded by a word character.
REFERENCE = re.compile(r"(?<![\w#/])(?:([\w.-]+)/([\w.-]+))?#(\d+)\b")
FULL_NAMES = {"oncall": "On Call", "alice": "Alice Smith", "ana": "Ana Kovač"}


@cache
def forge_spec(kind: str) -> Spec:
    return Spec(load_spec_document(SPECS / f"{kind}.swagger.v1.json"), greedy=GREEDY)


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class FakeGitea(FakeService):
    """``with FakeGitea(kind="forgejo") as forge: GiteaTracker(forge.url, forge.repo, forge.token, kind=...)``"""

    def __init__(
        self,
        *,
        kind: str = "gitea",
        owner: str = "acme",
        repo: str = "shop",
        token: str = "forge-Secret-Token-0xBEEF",
        collaborators: tuple[str, ...] = ("oncall", "alice", "ana"),
        search_lag: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kind = kind
        self.search_lag = search_lag
        self.clock = clock
        self.owner, self.name = owner, repo
        self.token = token
        self.collaborators = set(collaborators)
        self.labels: list[dict[str, Any]] = []
        self.issues: dict[int, dict[str, Any]] = {}
        self.pulls: list[dict[str, Any]] = []
        self.branches: dict[str, dict[str, bytes]] = {"main": {"README.md": b"# shop\n"}}
        self._next_index = 1
        self._next_id = 1
        self.server = SpecServer(forge_spec(kind), name=kind, authenticate=self._authenticate)
        r = "/repos/{owner}/{repo}"
        for method, path, handler in [
            ("GET", r, self._get_repo),
            ("GET", f"{r}/labels", self._list_labels),
            ("POST", f"{r}/labels", self._create_label),
            ("GET", f"{r}/issues", self._list_issues),
            ("POST", f"{r}/issues", self._create_issue),
            ("GET", f"{r}/issues/{{index}}", self._get_issue),
            ("PATCH", f"{r}/issues/{{index}}", self._edit_issue),
            ("GET", f"{r}/assignees", self._list_assignees),
            ("DELETE", f"{r}/issues/{{index}}/labels/{{id}}", self._remove_label),
            ("GET", f"{r}/issues/{{index}}/comments", self._list_comments),
            ("POST", f"{r}/issues/{{index}}/comments", self._create_comment),
            ("POST", f"{r}/issues/{{index}}/labels", self._add_labels),
            ("GET", f"{r}/issues/{{index}}/assets", self._list_assets),
            ("POST", f"{r}/issues/{{index}}/assets", self._create_asset),
            ("GET", f"{r}/contents/{{filepath}}", self._get_contents),
            ("POST", f"{r}/contents/{{filepath}}", self._create_file),
            ("GET", f"{r}/branches/{{branch}}", self._get_branch),
            ("POST", f"{r}/pulls", self._create_pull),
            ("GET", f"{r}/pulls/{{base}}/{{head}}", self._get_pull_by_base_head),
        ]:
            self.server.route(method, path, self._in_repo(handler))

    @property
    def url(self) -> str:
        """The forge's web URL (what CI_FORGE_URL holds); the API is under /api/v1."""
        return self.server.origin

    @property
    def repo(self) -> str:
        return f"{self.owner}/{self.name}"

    # -- helpers for tests

    def issue(self, number: int) -> dict[str, Any]:
        with self.server.lock:
            return self.issues[number]

    def close_issue(self, number: int) -> None:
        with self.server.lock:
            self.issues[number]["state"] = "closed"
            self.issues[number]["closed_at"] = _now()
            self._reindex(self.issues[number])

    def add_issue(self, title: str, label_names: list[str] = (), state: str = "open") -> int:  # type: ignore[assignment]
        """An issue someone else opened."""
        with self.server.lock:
            ids = [self._label_named(n)["id"] for n in label_names]
            return self._store_issue({"title": title, "body": "", "labels": ids}, state=state)

    def references(self, number: int) -> list[int]:
        """The issues whose body or comments reference issue ``number`` (the forge's cross-references)."""
        with self.server.lock:
            return list(self.issues[number]["referenced_by"])

    def label_names(self, number: int) -> list[str]:
        with self.server.lock:
            return [self._label(i)["name"] for i in self.issues[number]["label_ids"]]

    def labelled(self, name: str, *, open_only: bool = False) -> list[int]:
        """Numbers of the issues carrying a label of this name now (not as the lagging list shows)."""
        with self.server.lock:
            return [
                number
                for number, issue in sorted(self.issues.items())
                if name in {self._label(i)["name"] for i in issue["label_ids"]}
                and not (open_only and issue["state"] == "closed")
            ]

    # -- auth and routing

    def _authenticate(self, req: Request) -> Response | None:
        if req.header("authorization") == f"token {self.token}":
            return None
        return Response(401, {"message": "invalid username, password or token", "url": f"{self.url}/api/swagger"})

    def _not_found(self) -> Response:
        return Response(
            404,
            {
                "errors": ["The target couldn't be found."],
                "message": "The target couldn't be found.",
                "url": f"{self.url}/api/swagger",
            },
        )

    def _in_repo(self, handler: Callable[[Request], Response]) -> Callable[[Request], Response]:
        def wrapped(req: Request) -> Response:
            if (req.params.get("owner"), req.params.get("repo")) != (self.owner, self.name):
                return self._not_found()
            return handler(req)

        return wrapped

    def _page(self, req: Request, items: list[Any]) -> list[Any]:
        page = max(1, int(req.arg("page", "1") or 1))
        limit = int(req.arg("limit", "0") or 0)
        limit = DEFAULT_PAGE if limit <= 0 else min(limit, MAX_PAGE)
        return items[(page - 1) * limit : page * limit]

    def _user(self, login: str) -> dict[str, Any]:
        return {
            "id": abs(hash(login)) % 1000 + 1,
            "login": login,
            "full_name": FULL_NAMES.get(login, login),
            "email": f"{login}@example.com",
            "avatar_url": f"{self.url}/avatars/{login}",
            "html_url": f"{self.url}/{login}",
        }

    # -- labels

    def _label(self, label_id: int) -> dict[str, Any]:
        return next(lab for lab in self.labels if lab["id"] == label_id)

    def _label_named(self, name: str) -> dict[str, Any]:
        for lab in self.labels:
            if lab["name"] == name:
                return lab
        lab = {
            "id": self._next_id,
            "name": name,
            "color": "ededed",
            "description": "",
            "exclusive": False,
            "is_archived": False,
            "url": f"{self.url}/api/v1/repos/{self.repo}/labels/{self._next_id}",
        }
        self._next_id += 1
        self.labels.append(lab)
        return lab

    def _list_labels(self, req: Request) -> Response:
        return Response(200, self._page(req, self.labels))

    def _create_label(self, req: Request) -> Response:
        body = req.json or {}
        name, color = body.get("name", ""), body.get("color", "")
        if not name.strip() or not re.fullmatch(r"#?[0-9a-fA-F]{6}", color):
            self.server.fail(req, f"invalid label {body!r}")
            return Response(422, {"message": "Color or name is invalid", "url": f"{self.url}/api/swagger"})
        lab = {
            "id": self._next_id,
            "name": name,
            "color": color.lstrip("#"),
            "description": "",
            "exclusive": False,
            "is_archived": False,
            "url": f"{self.url}/api/v1/repos/{self.repo}/labels/{self._next_id}",
        }
        self._next_id += 1
        self.labels.append(lab)
        return Response(201, lab)

    # -- issues

    def _store_issue(self, body: dict[str, Any], state: str = "open") -> int:
        number = self._next_index
        self._next_index += 1
        now = _now()
        self.issues[number] = {
            "id": 1000 + number,
            "number": number,
            "title": body["title"],
            "body": body.get("body", ""),
            "label_ids": list(dict.fromkeys(body.get("labels", []))),
            "state": state,
            "due_date": body.get("due_date"),
            "assignees": list(body.get("assignees") or []),
            "created_at": now,
            "updated_at": now,
            "closed_at": now if state == "closed" else None,
            "comments": [],
            "assets": [],
            "asset_data": {},
            "referenced_by": [],
            "index": [],
        }
        self._cross_reference(number, body.get("body", ""))
        self._reindex(self.issues[number])
        return number

    def _cross_reference(self, source: int, text: str) -> None:
        """Record, as the forges do, which issues a body or comment of ``source`` references."""
        for owner, repo, number in REFERENCE.findall(text or ""):
            if (owner or self.owner, repo or self.name) != (self.owner, self.name):
                continue
            target = self.issues.get(int(number))
            if target is not None and int(number) != source and source not in target["referenced_by"]:
                target["referenced_by"].append(source)

    def _reindex(self, issue: dict[str, Any]) -> None:
        """What the issue list will show of the issue from ``search_lag`` seconds on."""
        issue["index"].append(
            (self.clock() + self.search_lag, {"label_ids": list(issue["label_ids"]), "state": issue["state"]})
        )

    def _indexed(self, issue: dict[str, Any]) -> dict[str, Any] | None:
        now = self.clock()
        visible = [snapshot for at, snapshot in issue["index"] if at <= now]
        return visible[-1] if visible else None

    def _issue_json(self, issue: dict[str, Any]) -> dict[str, Any]:
        number = issue["number"]
        return {
            "id": issue["id"],
            "number": number,
            "title": issue["title"],
            "body": issue["body"],
            "url": f"{self.url}/api/v1/repos/{self.repo}/issues/{number}",
            "html_url": f"{self.url}/{self.repo}/issues/{number}",
            "labels": [self._label(i) for i in issue["label_ids"]],
            "state": issue["state"],
            "due_date": issue["due_date"],
            "assignees": [self._user(a) for a in issue["assignees"]] or None,
            "assignee": self._user(issue["assignees"][0]) if issue["assignees"] else None,
            "user": self._user("rollback-bot"),
            "comments": len(issue["comments"]),
            "created_at": issue["created_at"],
            "updated_at": issue["updated_at"],
            "closed_at": issue["closed_at"],
            "is_locked": False,
            "assets": issue["assets"],
            "pull_request": None,
            "repository": {"id": 1, "name": self.name, "owner": self.owner, "full_name": self.repo},
        }

    def _issue_for(self, req: Request) -> dict[str, Any] | None:
        return self.issues.get(int(req.params["index"]))

    def _list_issues(self, req: Request) -> Response:
        state = req.arg("state", "open")
        if req.arg("type") == "pulls":
            return Response(200, [])
        # The forges resolve label names to ids in this repository and drop unknown names;
        # with none left there is no label filter at all.
        names = [n for n in (req.arg("labels", "") or "").split(",") if n]
        wanted_names = {lab["name"] for lab in self.labels if lab["name"] in names}
        hits = []
        # Newest first (the forges' default; Forgejo's sort=latest), oldest first on request.
        for issue in sorted(self.issues.values(), key=lambda i: i["number"], reverse=req.arg("sort") != "oldest"):
            seen = self._indexed(issue)
            if seen is None:
                continue  # created less than search_lag ago: not listed yet
            if state != "all" and seen["state"] != state:
                continue
            if wanted_names and not wanted_names <= {self._label(i)["name"] for i in seen["label_ids"]}:
                continue
            hits.append(self._issue_json(issue))
        return Response(200, self._page(req, hits), {"X-Total-Count": str(len(hits))})

    def _create_issue(self, req: Request) -> Response:
        body = dict(req.json or {})
        if not (body.get("title") or "").strip():
            return Response(422, {"message": "[Title]: Required", "url": f"{self.url}/api/swagger"})
        known = {lab["id"] for lab in self.labels}
        unknown = [i for i in body.get("labels", []) if i not in known]
        if unknown:
            self.server.fail(req, f"label ids {unknown} do not exist in {self.repo}")
            return Response(422, {"message": f"label ids {unknown} do not exist", "url": f"{self.url}/api/swagger"})
        for login in body.get("assignees") or []:
            if login not in self.collaborators:
                return Response(
                    422, {"message": f"Assignee does not exist: [name: {login}]", "url": f"{self.url}/api/swagger"}
                )
        number = self._store_issue(body)
        return Response(201, self._issue_json(self.issues[number]))

    def _get_issue(self, req: Request) -> Response:
        issue = self._issue_for(req)
        if issue is not None:
            return Response(200, self._issue_json(issue))
        pull = next((p for p in self.pulls if p["number"] == int(req.params["index"])), None)
        if pull is not None:  # the forges answer a pull request's number as an issue too
            return Response(200, self._pull_as_issue(pull))
        return self._not_found()

    def _pull_as_issue(self, pull: dict[str, Any]) -> dict[str, Any]:
        number = pull["number"]
        now = _now()
        return {
            "id": 1000 + number,
            "number": number,
            "title": pull["title"],
            "body": pull["body"],
            "url": f"{self.url}/api/v1/repos/{self.repo}/issues/{number}",
            "html_url": f"{self.url}/{self.repo}/pulls/{number}",
            "labels": [],
            "state": pull["state"],
            "user": self._user("rollback-bot"),
            "comments": 0,
            "created_at": now,
            "updated_at": now,
            "is_locked": False,
            "assets": [],
            "pull_request": {"merged": False, "html_url": f"{self.url}/{self.repo}/pulls/{number}"},
            "repository": {"id": 1, "name": self.name, "owner": self.owner, "full_name": self.repo},
        }

    def _edit_issue(self, req: Request) -> Response:
        issue = self._issue_for(req)
        if issue is None:
            return self._not_found()
        body = req.json or {}
        state = body.get("state")
        if state is not None and state not in ("open", "closed"):
            return Response(422, {"message": f"unknown state {state!r}", "url": f"{self.url}/api/swagger"})
        for name in ("title", "body"):
            if body.get(name) is not None:
                issue[name] = body[name]
        if state is not None and state != issue["state"]:
            issue["state"] = state
            issue["closed_at"] = _now() if state == "closed" else None
        issue["updated_at"] = _now()
        self._reindex(issue)
        return Response(201, self._issue_json(issue))

    def _remove_label(self, req: Request) -> Response:
        issue = self._issue_for(req)
        if issue is None:
            return self._not_found()
        try:
            label_id = int(req.params["id"])
        except ValueError:
            return Response(422, {"message": "invalid label id", "url": f"{self.url}/api/swagger"})
        if label_id not in {lab["id"] for lab in self.labels}:
            return Response(422, {"message": f"label {label_id} does not exist", "url": f"{self.url}/api/swagger"})
        if label_id in issue["label_ids"]:
            issue["label_ids"].remove(label_id)
            self._reindex(issue)
        return Response(204)

    def _list_comments(self, req: Request) -> Response:
        issue = self._issue_for(req)
        return Response(200, issue["comments"]) if issue else self._not_found()

    def _create_comment(self, req: Request) -> Response:
        issue = self._issue_for(req)
        if issue is None:
            return self._not_found()
        comment_id = self._next_id
        self._next_id += 1
        now = _now()
        comment = {
            "id": comment_id,
            "body": (req.json or {}).get("body", ""),
            "created_at": now,
            "updated_at": now,
            "html_url": f"{self.url}/{self.repo}/issues/{issue['number']}#issuecomment-{comment_id}",
            "issue_url": f"{self.url}/{self.repo}/issues/{issue['number']}",
            "pull_request_url": "",
            "user": self._user("rollback-bot"),
            "assets": [],
        }
        issue["comments"].append(comment)
        self._cross_reference(issue["number"], comment["body"])
        return Response(201, comment)

    def _edit_issue(self, req: Request) -> Response:
        issue = self._issue_for(req)
        if issue is None:
            return self._not_found()
        body = req.json or {}
        if "title" in body and not (body["title"] or "").strip():
            return Response(422, {"message": "[Title]: Required", "url": f"{self.url}/api/swagger"})
        for login in body.get("assignees") or []:
            if login not in self.collaborators:
                return Response(
                    422, {"message": f"Assignee does not exist: [name: {login}]", "url": f"{self.url}/api/swagger"}
                )
        if body.get("unset_due_date") and body.get("due_date"):
            self.server.fail(req, "due_date and unset_due_date together")
        for name in ("title", "body", "state"):
            if name in body:
                issue[name] = body[name]
        if "assignees" in body:
            issue["assignees"] = list(body["assignees"] or [])
        if body.get("unset_due_date"):
            issue["due_date"] = None
        elif body.get("due_date"):
            issue["due_date"] = body["due_date"]
        if body.get("state") == "closed":
            issue["closed_at"] = _now()
        issue["updated_at"] = _now()
        if "body" in body:
            self._cross_reference(issue["number"], body["body"])
        return Response(201, self._issue_json(issue))

    def _list_assignees(self, req: Request) -> Response:
        return Response(200, [self._user(login) for login in sorted(self.collaborators)])

    def _add_labels(self, req: Request) -> Response:
        issue = self._issue_for(req)
        if issue is None:
            return self._not_found()
        for ref in (req.json or {}).get("labels", []):
            match = [lab for lab in self.labels if lab["id"] == ref or lab["name"] == ref]
            if not match:
                self.server.fail(req, f"label {ref!r} does not exist in {self.repo}")
                return Response(422, {"message": f"label {ref!r} does not exist", "url": f"{self.url}/api/swagger"})
            if match[0]["id"] not in issue["label_ids"]:
                issue["label_ids"].append(match[0]["id"])
        self._reindex(issue)
        return Response(200, [self._label(i) for i in issue["label_ids"]])

    def _list_assets(self, req: Request) -> Response:
        issue = self._issue_for(req)
        return Response(200, issue["assets"]) if issue else self._not_found()

    def _create_asset(self, req: Request) -> Response:
        issue = self._issue_for(req)
        if issue is None:
            return self._not_found()
        part = next(p for p in req.parts if p.name == "attachment")
        name = req.arg("name") or part.filename or "file"
        if not any(name.lower().endswith(ext) for ext in ALLOWED_TYPES):
            return Response(422, {"message": f"File type is not allowed: {name}", "url": f"{self.url}/api/swagger"})
        asset_id = self._next_id
        self._next_id += 1
        uuid = hashlib.sha1(f"{asset_id}".encode()).hexdigest()[:8] + "-0000-4000-8000-000000000000"
        asset = {
            "id": asset_id,
            "name": name,
            "size": len(part.data),
            "download_count": 0,
            "created_at": _now(),
            "uuid": uuid,
            "browser_download_url": f"{self.url}/attachments/{uuid}",
        }
        issue["assets"].append(asset)
        issue["asset_data"][asset_id] = part.data
        return Response(201, asset)

    # -- repository, files, pull requests

    def _repo_json(self) -> dict[str, Any]:
        return {
            "id": 1,
            "name": self.name,
            "full_name": self.repo,
            "owner": self._user(self.owner),
            "default_branch": "main",
            "html_url": f"{self.url}/{self.repo}",
            "has_issues": True,
            "has_pull_requests": True,
            "private": True,
            "empty": False,
            "archived": False,
        }

    def _get_repo(self, req: Request) -> Response:
        return Response(200, self._repo_json())

    def _get_branch(self, req: Request) -> Response:
        name = req.params["branch"]
        if name not in self.branches:
            return self._not_found()
        sha = hashlib.sha1(repr(sorted(self.branches[name].items())).encode()).hexdigest()
        return Response(
            200,
            {
                "name": name,
                "commit": {"id": sha, "message": "update", "url": f"{self.url}/{self.repo}/commit/{sha}"},
                "protected": False,
                "user_can_push": True,
            },
        )

    def _get_contents(self, req: Request) -> Response:
        ref = req.arg("ref") or "main"
        path = req.params["filepath"]
        files = self.branches.get(ref)
        if files is None or path not in files:
            return self._not_found()
        data = files[path]
        return Response(
            200,
            {
                "name": path.rsplit("/", 1)[-1],
                "path": path,
                "type": "file",
                "size": len(data),
                "encoding": "base64",
                "content": base64.b64encode(data).decode(),
                "sha": hashlib.sha1(data).hexdigest(),
            },
        )

    def _create_file(self, req: Request) -> Response:
        body = req.json or {}
        path = req.params["filepath"]
        base = body.get("branch") or "main"
        target = body.get("new_branch") or base
        if base not in self.branches:
            return self._not_found()
        if body.get("new_branch") and target in self.branches:
            return Response(
                422, {"message": f"branch already exists [name: {target}]", "url": f"{self.url}/api/swagger"}
            )
        try:
            data = base64.b64decode(body.get("content", ""), validate=True)
        except (binascii.Error, ValueError):
            self.server.fail(req, "content is not base64")
            return Response(422, {"message": "invalid base64 content", "url": f"{self.url}/api/swagger"})
        if path in self.branches.get(target, self.branches[base]):
            return Response(
                422, {"message": f"repository file already exists [path: {path}]", "url": f"{self.url}/api/swagger"}
            )
        self.branches.setdefault(target, dict(self.branches[base]))[path] = data
        sha = hashlib.sha1(data).hexdigest()
        return Response(
            201,
            {
                "content": {
                    "name": path.rsplit("/", 1)[-1],
                    "path": path,
                    "type": "file",
                    "size": len(data),
                    "sha": sha,
                    "html_url": f"{self.url}/{self.repo}/src/branch/{target}/{path}",
                },
                "commit": {
                    "sha": hashlib.sha1(f"{target}:{path}".encode()).hexdigest(),
                    "message": body.get("message", ""),
                    "html_url": f"{self.url}/{self.repo}/commit/{sha}",
                },
            },
        )

    def _pull_json(self, pull: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": 5000 + pull["number"],
            "number": pull["number"],
            "title": pull["title"],
            "body": pull["body"],
            "state": pull["state"],
            "html_url": f"{self.url}/{self.repo}/pulls/{pull['number']}",
            "base": {"ref": pull["base"], "label": pull["base"], "repo_id": 1},
            "head": {"ref": pull["head"], "label": pull["head"], "repo_id": 1},
            "merged": False,
            "mergeable": True,
            "user": self._user("rollback-bot"),
        }

    def _create_pull(self, req: Request) -> Response:
        body = req.json or {}
        base, head = body.get("base"), body.get("head")
        if base not in self.branches or head not in self.branches:
            return self._not_found()
        if any(p["base"] == base and p["head"] == head and p["state"] == "open" for p in self.pulls):
            return Response(
                409, {"message": "pull request already exists for these targets", "url": f"{self.url}/api/swagger"}
            )
        pull = {
            "number": self._next_index,
            "base": base,
            "head": head,
            "title": body.get("title", ""),
            "body": body.get("body", ""),
            "state": "open",
        }
        self._next_index += 1
        self.pulls.append(pull)
        return Response(201, self._pull_json(pull))

    def _get_pull_by_base_head(self, req: Request) -> Response:
        for pull in reversed(self.pulls):
            if pull["base"] == req.params["base"] and pull["head"] == req.params["head"]:
                return Response(200, self._pull_json(pull))
        return self._not_found()
