"""A stateful Jira on loopback: Cloud (REST v3) or Data Center (REST v2).

Every request is validated against the vendored Jira Cloud OpenAPI description (for v2, a
variant derived from it: /rest/api/2 paths, bearer tokens, the classic /search; Cloud's
removed /rest/api/3/search is taken out of the v3 one). On top of the spec it checks what
Jira itself enforces: v3 rich text must be a valid ADF document (validated against the
official ADF JSON schema), v2 rich text must be a wiki-markup string, labels may not contain
spaces, due dates are YYYY-MM-DD, attachments need ``X-Atlassian-Token: no-check`` and a
multipart field named ``file``. Such client mistakes are recorded as failures as well as
answered the way Jira answers them.

Search can lag behind writes, as Jira Cloud documents for /search/jql ("recent updates might
not be immediately visible"; ``reconcileIssues`` gives read-after-write for the ids a client
names) and as a Data Center cluster's replicated index does: with ``search_lag`` seconds
(on ``clock``), a search sees each issue as it was that long ago, while reading an issue by
its key (GET /issue/{key}) is always current.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import time
from collections.abc import Callable
from datetime import datetime, timezone
from functools import cache
from typing import Any

import jsonschema

from tests.support import SPECS
from tests.support.specserver import (
    FakeService,
    Request,
    Response,
    Spec,
    SpecServer,
    load_spec_document,
)

STATUSES = {
    "To Do": {"id": "10000", "key": "new", "name": "To Do", "colorName": "blue-gray"},
    "In Progress": {"id": "3", "key": "indeterminate", "name": "In Progress", "colorName": "yellow"},
    "Done": {"id": "10001", "key": "done", "name": "Done", "colorName": "green"},
}
TRANSITIONS = {"11": "To Do", "21": "In Progress", "31": "Done"}
# Jira's default issue link types (a site admin can rename or delete them).
LINK_TYPES = (
    {"id": "10000", "name": "Blocks", "inward": "is blocked by", "outward": "blocks"},
    {"id": "10001", "name": "Cloners", "inward": "is cloned by", "outward": "clones"},
    {"id": "10002", "name": "Duplicate", "inward": "is duplicated by", "outward": "duplicates"},
    {"id": "10003", "name": "Relates", "inward": "relates to", "outward": "relates to"},
)
USERS = (
    {
        "accountId": "5b10ac8d82e05b22cc7d4ef5",
        "name": "ana",
        "displayName": "Ana Kovač",
        "emailAddress": "ana@example.com",
    },
    {
        "accountId": "5b10a0effa615349cb016cd8",
        "name": "bo",
        "displayName": "Bo Chen",
        "emailAddress": "bo.chen@example.com",
    },
    {
        "accountId": "5b109f2e9729b51b54dc274d",
        "name": "anand",
        "displayName": "Anand Rao",
        "emailAddress": "anand@example.com",
    },
)
SETTABLE = {"summary", "description", "issuetype", "project", "labels", "duedate", "priority", "components", "assignee"}


@cache
def jira_spec(api_version: int) -> Spec:
    doc = load_spec_document(SPECS / "jira-cloud-platform-v3.openapi.json")
    if api_version == 3:
        # Cloud removed GET/POST /rest/api/3/search in 2025 (it answers 410 Gone): a
        # client still using it must fail here too.
        paths = {p: item for p, item in doc["paths"].items() if p != "/rest/api/3/search"}
        return Spec({**doc, "paths": paths})
    # Data Center: REST v2 has the same resources under /rest/api/2, the classic /search
    # (no /search/jql), and personal access tokens sent as bearer tokens.
    paths = {}
    for path, item in doc["paths"].items():
        if not path.startswith("/rest/api/3/") or path.startswith("/rest/api/3/search/"):
            continue
        item = copy.deepcopy(item)
        for op in item.values():
            if isinstance(op, dict) and isinstance(op.get("security"), list):
                op["security"] = [{"bearerAuth": []}, *op["security"]]
        paths[path.replace("/rest/api/3/", "/rest/api/2/", 1)] = item
    components = dict(doc["components"])
    components["securitySchemes"] = {
        **components["securitySchemes"],
        "bearerAuth": {"type": "http", "scheme": "bearer"},
    }
    return Spec({**doc, "paths": paths, "components": components})


@cache
def adf_validator() -> jsonschema.Draft7Validator:
    """The official ADF schema, with its node alternatives dispatched on ``type``.

    Plain ``anyOf`` over ~30 node kinds makes jsonschema validate every kind against every
    node, recursively (a second per small document); ``if type == X then anyOf(kinds of
    type X)`` checks the same rules, only against the kinds that can match."""
    schema = json.loads((SPECS / "adf-schema.full.json").read_text(encoding="utf-8"))
    definitions = schema["definitions"]

    def resolve(node: Any) -> Any:
        while isinstance(node, dict) and "$ref" in node:
            node = definitions[node["$ref"].rsplit("/", 1)[-1]]
        return node

    def node_types(node: Any, depth: int = 0) -> set[str] | None:
        node = resolve(node)
        if not isinstance(node, dict) or depth > 10:
            return None
        enum = node.get("properties", {}).get("type", {}).get("enum")
        if enum:
            return set(enum)
        for sub in node.get("allOf", []):
            found = node_types(sub, depth + 1)
            if found:
                return found
        if "anyOf" in node:
            kinds = [node_types(alt, depth + 1) for alt in node["anyOf"]]
            if all(kinds):
                return set().union(*kinds)  # type: ignore[arg-type]
        return None

    def dispatch(node: Any) -> Any:
        if isinstance(node, list):
            return [dispatch(v) for v in node]
        if not isinstance(node, dict):
            return node
        node = {k: dispatch(v) for k, v in node.items()}
        alternatives = node.get("anyOf")
        if alternatives:
            kinds = [node_types(alt) for alt in alternatives]
            if all(kinds):
                by_type: dict[str, list[Any]] = {}
                for alt, types in zip(alternatives, kinds, strict=True):
                    for t in sorted(types):  # type: ignore[arg-type]
                        by_type.setdefault(t, []).append(alt)
                rest = {k: v for k, v in node.items() if k != "anyOf"}
                rest["required"] = sorted(set(rest.get("required", [])) | {"type"})
                rest["properties"] = {**rest.get("properties", {}), "type": {"enum": sorted(by_type)}}
                rest["allOf"] = [
                    *rest.get("allOf", []),
                    *(
                        {"if": {"properties": {"type": {"const": t}}}, "then": {"anyOf": alts}}
                        for t, alts in sorted(by_type.items())
                    ),
                ]
                return rest
        return node

    return jsonschema.Draft7Validator(dispatch(schema))


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000+00:00")


def _errors(status: int, messages: list[str] | None = None, errors: dict[str, str] | None = None) -> Response:
    return Response(status, {"errorMessages": messages or [], "errors": errors or {}})


class FakeJira(FakeService):
    """``with FakeJira(api_version=3) as jira: JiraTracker(jira.url, jira.project, jira.token, ...)``"""

    def __init__(
        self,
        *,
        api_version: int = 3,
        project: str = "OPS",
        email: str = "oncall@example.com",
        token: str = "jira-Secret-Token-0xC0FFEE",
        issue_types: tuple[str, ...] = ("Task", "Bug"),
        priorities: tuple[str, ...] = ("Highest", "High", "Medium", "Low", "Lowest"),
        components: tuple[str, ...] = ("api", "web"),
        unavailable_fields: tuple[str, ...] = (),
        link_types: tuple[dict[str, str], ...] = LINK_TYPES,
        users: tuple[dict[str, str], ...] = USERS,
        search_lag: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api_version = api_version
        self.search_lag = search_lag
        self.clock = clock
        self.project = project
        self.project_id = "10000"
        self.email = email
        self.token = token
        self.issue_types = issue_types
        self.priorities = priorities
        self.components = components
        self.unavailable_fields = set(unavailable_fields)
        self.link_types = [dict(t) for t in link_types]
        self.users = [dict(u) for u in users]
        self.links: list[dict[str, Any]] = []  # issue links: id, type, inward (key), outward (key)
        self.issues: dict[str, dict[str, Any]] = {}
        self._next_id = 10001
        self._next_number = 1
        self.server = SpecServer(jira_spec(api_version), name=f"jira-v{api_version}", authenticate=self._authenticate)
        v = f"/rest/api/{api_version}"
        route = self.server.route
        route("POST", f"{v}/issue", self._create)
        route("GET", f"{v}/issue/{{issueIdOrKey}}", self._get_issue)
        route("PUT", f"{v}/issue/{{issueIdOrKey}}", self._edit_issue)
        route("GET", f"{v}/search/jql" if api_version == 3 else f"{v}/search", self._search)
        route("POST", f"{v}/issue/{{issueIdOrKey}}/comment", self._add_comment)
        route("GET", f"{v}/issue/{{issueIdOrKey}}/comment", self._list_comments)
        route("POST", f"{v}/issue/{{issueIdOrKey}}/attachments", self._attach)
        route("POST", f"{v}/issue/{{issueIdOrKey}}/remotelink", self._remote_link)
        route("GET", f"{v}/issue/{{issueIdOrKey}}/remotelink", self._list_remote_links)
        route("GET", f"{v}/issue/{{issueIdOrKey}}/transitions", self._transitions)
        route("POST", f"{v}/issue/{{issueIdOrKey}}/transitions", self._do_transition)
        route("POST", f"{v}/issueLink", self._link_issues)
        route("GET", f"{v}/issueLinkType", self._list_link_types)
        route("GET", f"{v}/user/assignable/search", self._assignable_users)

    @property
    def url(self) -> str:
        return self.server.url

    # -- helpers for tests

    def issue(self, key: str) -> dict[str, Any]:
        with self.server.lock:
            return self.issues[key]

    def set_status(self, key: str, name: str) -> None:
        with self.server.lock:
            self.issues[key]["fields"]["status"] = self._status(name)
            self._reindex(self.issues[key])

    def labelled(self, label: str, *, open_only: bool = False) -> list[str]:
        """Keys of the issues carrying ``label`` now (not as the lagging search sees them)."""
        with self.server.lock:
            return [
                key
                for key, issue in self.issues.items()
                if label in issue["fields"]["labels"]
                and not (open_only and issue["fields"]["status"]["statusCategory"]["key"] == "done")
            ]

    def linked(self, key: str) -> list[tuple[str, str]]:
        """(link type name, the other issue's key) of each link of an issue."""
        with self.server.lock:
            return [
                (link["type"], link["outward"] if link["inward"] == key else link["inward"])
                for link in self.links
                if key in (link["inward"], link["outward"])
            ]

    def add_issue(self, summary: str, labels: list[str]) -> str:
        """An issue made by someone else (to check searches pick the right one)."""
        with self.server.lock:
            return self._store({"summary": summary, "labels": labels, "issuetype": {"name": self.issue_types[0]}})

    # -- auth

    def _authenticate(self, req: Request) -> Response | None:
        header = req.header("authorization") or ""
        if self.api_version == 3:
            expected = "Basic " + base64.b64encode(f"{self.email}:{self.token}".encode()).decode()
        else:
            expected = f"Bearer {self.token}"
        if header == expected:
            return None
        return Response(
            401,
            {
                "errorMessages": ["You are not authenticated. Authentication required to perform this operation."],
                "errors": {},
            },
            {"WWW-Authenticate": 'Basic realm="protected-area"' if self.api_version == 3 else "Bearer"},
        )

    # -- state

    def _status(self, name: str) -> dict[str, Any]:
        category = STATUSES[name]
        return {
            "id": category["id"],
            "name": name,
            "self": f"{self.url}/rest/api/{self.api_version}/status/{category['id']}",
            "statusCategory": {
                "id": 2 if category["key"] == "new" else 3 if category["key"] == "done" else 4,
                "key": category["key"],
                "name": category["name"],
                "colorName": category["colorName"],
            },
        }

    def _store(self, fields: dict[str, Any]) -> str:
        key = f"{self.project}-{self._next_number}"
        issue_id = str(self._next_id)
        self._next_number += 1
        self._next_id += 1
        now = _now()
        stored = {
            "summary": fields.get("summary", ""),
            "description": fields.get("description"),
            "issuetype": {"id": "10002", "name": fields.get("issuetype", {}).get("name", self.issue_types[0])},
            "project": {"id": self.project_id, "key": self.project, "name": f"{self.project} project"},
            "labels": list(fields.get("labels", [])),
            "duedate": fields.get("duedate"),
            "priority": fields.get("priority") and {"id": "2", "name": fields["priority"]["name"]},
            "components": [{"id": str(i), "name": c["name"]} for i, c in enumerate(fields.get("components", []), 1)],
            "status": self._status("To Do"),
            "assignee": self._user_bean(fields["assignee"]) if fields.get("assignee") else None,
            "created": now,
            "updated": now,
        }
        self.issues[key] = {
            "id": issue_id,
            "key": key,
            "fields": stored,
            "comments": [],
            "attachments": [],
            "attachment_data": {},
            "remotelinks": [],
            "properties": {},
            "index": [],
        }
        self._reindex(self.issues[key])
        return key

    def _reindex(self, issue: dict[str, Any]) -> None:
        """What the search will see of the issue from ``search_lag`` seconds on."""
        snapshot = {"labels": list(issue["fields"]["labels"]), "status": issue["fields"]["status"]}
        issue["index"].append((self.clock() + self.search_lag, snapshot))

    def _indexed(self, issue: dict[str, Any], reconcile: set[str]) -> dict[str, Any] | None:
        """The issue's fields as the search index has them now (None: not indexed yet)."""
        if issue["id"] in reconcile:
            return issue["fields"]
        now = self.clock()
        visible = [snapshot for at, snapshot in issue["index"] if at <= now]
        return {**issue["fields"], **visible[-1]} if visible else None

    def _find(self, key_or_id: str) -> dict[str, Any] | None:
        for issue in self.issues.values():
            if key_or_id in (issue["key"], issue["id"]):
                return issue
        return None

    def _bean(
        self, issue: dict[str, Any], fields: list[str] | None, properties: list[str] | None = None
    ) -> dict[str, Any]:
        all_fields = {**issue["fields"], "attachment": issue["attachments"], "issuelinks": self._issue_links(issue)}
        if fields is None or "*all" in fields or "*navigable" in fields:
            chosen = all_fields
        else:
            chosen = {f: all_fields.get(f) for f in fields if f in all_fields}
        bean = {
            "expand": "renderedFields,names,schema,operations,editmeta,changelog",
            "id": issue["id"],
            "key": issue["key"],
            "self": f"{self.url}/rest/api/{self.api_version}/issue/{issue['id']}",
            "fields": chosen,
        }
        if properties:
            every = "*all" in properties
            bean["properties"] = {k: v for k, v in issue["properties"].items() if every or k in properties}
        return bean

    @staticmethod
    def _fields_param(req: Request) -> list[str] | None:
        values = req.query.get("fields")
        if not values:
            return None
        return [f.strip() for v in values for f in v.split(",") if f.strip()]

    def _check_rich_text(self, req: Request, field: str, value: Any) -> str | None:
        """Jira's own check of a rich-text value; a violation is our client's bug."""
        if self.api_version == 3:
            problems = (
                [e.message for e in adf_validator().iter_errors(value)]
                if isinstance(value, dict)
                else ["not an object"]
            )
            if problems:
                self.server.fail(req, f"{field} is not a valid ADF document: {problems[0][:300]}")
                return "Operation value must be an Atlassian Document (see the Atlassian Document Format)"
        elif not isinstance(value, str):
            self.server.fail(req, f"{field} must be a wiki-markup string on REST v2, got {type(value).__name__}")
            return "Operation value must be a string"
        return None

    # -- handlers

    def _create(self, req: Request) -> Response:
        fields = (req.json or {}).get("fields", {})
        errors: dict[str, str] = {}
        project = fields.get("project") or {}
        if project.get("key") != self.project and project.get("id") != self.project_id:
            errors["project"] = "Specify a valid project ID or key"
        issuetype = fields.get("issuetype") or {}
        if issuetype.get("name") not in self.issue_types and issuetype.get("id") != "10002":
            errors["issuetype"] = "Specify a valid issue type"
        summary = fields.get("summary")
        if not isinstance(summary, str) or not summary.strip():
            errors["summary"] = "You must specify a summary of the issue."
        elif "\n" in summary or "\r" in summary:
            errors["summary"] = "The summary is invalid because it contains newline characters."
        elif len(summary) > 255:
            errors["summary"] = "Summary must be less than 255 characters."
        for name in fields:
            if name in self.unavailable_fields or name not in SETTABLE:
                errors[name] = f"Field '{name}' cannot be set. It is not on the appropriate screen, or unknown."
        if "description" in fields and "description" not in errors:
            problem = self._check_rich_text(req, "description", fields["description"])
            if problem:
                errors["description"] = problem
        for label in fields.get("labels", []):
            if not isinstance(label, str) or re.search(r"\s", label) or not label or len(label) > 255:
                self.server.fail(req, f"invalid label {label!r}")
                errors["labels"] = f"The label '{label}' contains spaces which is invalid."
        duedate = fields.get("duedate")
        if duedate is not None and not (isinstance(duedate, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", duedate)):
            self.server.fail(req, f"duedate {duedate!r} is not YYYY-MM-DD")
            errors["duedate"] = f"Error parsing date string: {duedate}"
        priority = fields.get("priority")
        if priority is not None and "priority" not in errors and (priority or {}).get("name") not in self.priorities:
            errors["priority"] = "The priority selected is invalid."
        for component in fields.get("components", []) if "components" not in errors else []:
            if component.get("name") not in self.components:
                errors["components"] = f"Component name '{component.get('name')}' is not valid"
        if fields.get("assignee") is not None and "assignee" not in errors:
            problem = self._check_assignee(req, fields["assignee"])
            if problem:
                errors["assignee"] = problem
        properties = (req.json or {}).get("properties") or []
        if any(not isinstance(p, dict) or not p.get("key") or "value" not in p for p in properties):
            errors["properties"] = "An entity property needs a key and a value."
        if errors:
            return _errors(400, errors=errors)
        key = self._store(fields)
        issue = self.issues[key]
        issue["properties"] = {p["key"]: p["value"] for p in properties}
        return Response(
            201, {"id": issue["id"], "key": key, "self": f"{self.url}/rest/api/{self.api_version}/issue/{issue['id']}"}
        )

    def _not_found(self) -> Response:
        return _errors(404, ["Issue does not exist or you do not have permission to see it."])

    def _get_issue(self, req: Request) -> Response:
        issue = self._find(req.params["issueIdOrKey"])
        if issue is None:
            return self._not_found()
        properties = [k.strip() for v in req.query.get("properties", []) for k in v.split(",") if k.strip()]
        return Response(200, self._bean(issue, self._fields_param(req), properties))

    def _edit_issue(self, req: Request) -> Response:
        issue = self._find(req.params["issueIdOrKey"])
        if issue is None:
            return self._not_found()
        body = req.json or {}
        labels = issue["fields"]["labels"]
        for op in body.get("update", {}).get("labels", []):
            for verb, value in op.items():
                if verb in ("add", "remove") and (not isinstance(value, str) or re.search(r"\s", value)):
                    self.server.fail(req, f"invalid label {value!r}")
                    return _errors(400, errors={"labels": f"The label '{value}' contains spaces which is invalid."})
                if verb == "add" and value not in labels:
                    labels.append(value)
                elif verb == "remove" and value in labels:
                    labels.remove(value)
                elif verb == "set":
                    issue["fields"]["labels"] = labels = list(value)
        for name, value in body.get("fields", {}).items():
            if name not in SETTABLE or name in self.unavailable_fields:
                return _errors(
                    400,
                    errors={name: f"Field '{name}' cannot be set. It is not on the appropriate screen, or unknown."},
                )
            if name == "summary" and (not isinstance(value, str) or not value.strip() or "\n" in value):
                self.server.fail(req, f"summary {value!r} is not one non-empty line")
                return _errors(400, errors={"summary": "You must specify a summary of the issue."})
            if name == "duedate" and value is not None and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(value)):
                self.server.fail(req, f"duedate {value!r} is not YYYY-MM-DD")
                return _errors(400, errors={"duedate": f"Error parsing date string: {value}"})
            if name == "assignee" and value is not None:
                problem = self._check_assignee(req, value)
                if problem:
                    return _errors(400, errors={"assignee": problem})
                value = self._user_bean(value)
            issue["fields"][name] = value
        issue["fields"]["updated"] = _now()
        self._reindex(issue)
        return Response(204)

    _CLAUSE = re.compile(r'\s*(project|labels|key|status|statusCategory)\s*=\s*("(?:[^"\\]|\\.)*"|[\w.-]+)\s*', re.I)

    def _search(self, req: Request) -> Response:
        jql = req.arg("jql", "") or ""
        parts = re.split(r"(?i)\border\s+by\b", jql, maxsplit=1)
        query, order = parts[0], (parts[1] if len(parts) > 1 else "")
        clauses = []
        rest = query.strip()
        while rest:
            m = self._CLAUSE.match(rest)
            if not m:
                self.server.fail(req, f"the fake's JQL subset cannot evaluate {jql!r}")
                return _errors(400, [f"Error in the JQL Query: cannot parse {rest!r}"])
            value = m.group(2)
            if value.startswith('"'):
                value = re.sub(r"\\(.)", r"\1", value[1:-1])
            clauses.append((m.group(1).lower(), value))
            rest = rest[m.end() :]
            joiner = re.match(r"(?i)and\s+", rest)
            if joiner:
                rest = rest[joiner.end() :]
            elif rest:
                self.server.fail(req, f"the fake's JQL subset cannot evaluate {jql!r}")
                return _errors(400, [f"Error in the JQL Query: cannot parse {rest!r}"])
        if not clauses and self.api_version == 3:
            return _errors(
                400, ["Unbounded JQL queries are not allowed here. Please add a search restriction to your query."]
            )
        for field, value in clauses:
            if field == "project" and value not in (self.project, self.project_id):
                return _errors(400, [f"The value '{value}' does not exist for the field 'project'."])
        reconcile = {v.strip() for value in req.query.get("reconcileIssues", []) for v in value.split(",")}
        hits = []
        for issue in self.issues.values():
            f = self._indexed(issue, reconcile)
            if f is None:
                continue  # created less than search_lag ago: the index does not have it yet
            ok = True
            for field, value in clauses:
                if field == "project":
                    ok &= value in (self.project, self.project_id)
                elif field == "labels":
                    ok &= value in f["labels"]
                elif field == "key":
                    ok &= value == issue["key"]
                elif field == "status":
                    ok &= value.lower() == f["status"]["name"].lower()
                elif field == "statuscategory":
                    category = f["status"]["statusCategory"]
                    ok &= value.lower() in (category["key"], category["name"].lower())
            if ok:
                hits.append(issue)
        order_field = (order.split() or ["created"])[0].lower()
        descending = "desc" in order.lower()
        hits.sort(
            key=lambda i: (i["fields"]["created"], int(i["id"])) if order_field == "created" else int(i["id"]),
            reverse=descending,
        )
        limit = int(req.arg("maxResults", "50") or 50)
        fields = self._fields_param(req)
        if self.api_version == 3:
            beans = [self._bean(i, fields if fields is not None else ["id"]) for i in hits[:limit]]
            if fields is None:
                beans = [{"id": b["id"]} for b in beans]  # /search/jql returns ids unless asked
            return Response(200, {"issues": beans, "isLast": len(hits) <= limit})
        start = int(req.arg("startAt", "0") or 0)
        page = hits[start : start + limit]
        return Response(
            200,
            {
                "expand": "schema,names",
                "startAt": start,
                "maxResults": limit,
                "total": len(hits),
                "issues": [self._bean(i, fields) for i in page],
            },
        )

    def _add_comment(self, req: Request) -> Response:
        issue = self._find(req.params["issueIdOrKey"])
        if issue is None:
            return self._not_found()
        body = (req.json or {}).get("body")
        problem = self._check_rich_text(req, "comment body", body)
        if problem:
            return _errors(400, errors={"comment": problem})
        comment_id = str(20000 + sum(len(i["comments"]) for i in self.issues.values()) + 1)
        now = _now()
        comment = {
            "id": comment_id,
            "self": f"{self.url}/rest/api/{self.api_version}/issue/{issue['id']}/comment/{comment_id}",
            "body": body,
            "created": now,
            "updated": now,
            "author": {"accountId": "5b10a2844c20165700ede21g", "displayName": "rollback-pm"},
        }
        issue["comments"].append(comment)
        return Response(201, comment)

    def _list_comments(self, req: Request) -> Response:
        issue = self._find(req.params["issueIdOrKey"])
        if issue is None:
            return self._not_found()
        comments = list(issue["comments"])
        if req.arg("orderBy") == "-created":
            comments.reverse()
        start = int(req.arg("startAt", "0") or 0)
        limit = int(req.arg("maxResults", "100") or 100)
        return Response(
            200,
            {
                "startAt": start,
                "maxResults": limit,
                "total": len(comments),
                "comments": comments[start : start + limit],
            },
        )

    def _attach(self, req: Request) -> Response:
        if (req.header("x-atlassian-token") or "").lower() != "no-check":
            self.server.fail(req, "attachment upload without X-Atlassian-Token: no-check")
            return Response(403, "XSRF check failed")
        issue = self._find(req.params["issueIdOrKey"])
        if issue is None:
            return self._not_found()
        files = [p for p in req.parts if p.filename is not None]
        if not files or any(p.name != "file" for p in files):
            self.server.fail(req, f"attachments must be multipart fields named 'file', got {[p.name for p in files]}")
            return Response(200, [])  # Jira silently ignores other field names
        created = []
        for part in files:
            attachment_id = str(30000 + sum(len(i["attachments"]) for i in self.issues.values()) + 1)
            api = f"{self.url}/rest/api/{self.api_version}"
            attachment = {
                "id": attachment_id,
                "self": f"{api}/attachment/{attachment_id}",
                "filename": part.filename,
                "size": len(part.data),
                "created": _now(),
                "mimeType": part.content_type or "application/octet-stream",
                "content": f"{api}/attachment/content/{attachment_id}",
            }
            issue["attachments"].append(attachment)
            issue["attachment_data"][attachment_id] = part.data
            created.append(attachment)
        return Response(200, created)

    def _remote_link(self, req: Request) -> Response:
        issue = self._find(req.params["issueIdOrKey"])
        if issue is None:
            return self._not_found()
        link = req.json or {}
        for existing in issue["remotelinks"]:
            if link.get("globalId") and existing.get("globalId") == link.get("globalId"):
                existing.update(link)
                return Response(200, {"id": existing["id"], "self": existing["self"]})
        link_id = 40000 + len(issue["remotelinks"]) + 1
        stored = {
            **link,
            "id": link_id,
            "self": f"{self.url}/rest/api/{self.api_version}/issue/{issue['key']}/remotelink/{link_id}",
        }
        issue["remotelinks"].append(stored)
        return Response(201, {"id": link_id, "self": stored["self"]})

    def _list_remote_links(self, req: Request) -> Response:
        issue = self._find(req.params["issueIdOrKey"])
        if issue is None:
            return self._not_found()
        return Response(200, issue["remotelinks"])

    def _transitions(self, req: Request) -> Response:
        issue = self._find(req.params["issueIdOrKey"])
        if issue is None:
            return self._not_found()
        return Response(
            200,
            {
                "transitions": [
                    {"id": tid, "name": name, "to": self._status(name), "hasScreen": False, "isAvailable": True}
                    for tid, name in TRANSITIONS.items()
                ]
            },
        )

    def _do_transition(self, req: Request) -> Response:
        issue = self._find(req.params["issueIdOrKey"])
        if issue is None:
            return self._not_found()
        tid = ((req.json or {}).get("transition") or {}).get("id")
        if tid not in TRANSITIONS:
            return _errors(400, [f"Transition id '{tid}' is not valid for this issue."])
        issue["fields"]["status"] = self._status(TRANSITIONS[tid])
        self._reindex(issue)
        return Response(204)

    # -- users and issue links

    def _user_key(self) -> str:
        """Cloud names users by account id; Data Center by user name."""
        return "accountId" if self.api_version == 3 else "name"

    def _find_user(self, value: dict[str, Any]) -> dict[str, str] | None:
        key = self._user_key()
        return next((u for u in self.users if value.get(key) and u[key] == value.get(key)), None)

    def _check_assignee(self, req: Request, value: Any) -> str | None:
        key = self._user_key()
        if not isinstance(value, dict) or set(value) != {key}:
            # Cloud refuses user names (GDPR); Data Center has no account ids.
            self.server.fail(req, f"assignee {value!r} must be {{{key!r}: ...}} on REST v{self.api_version}")
            return f"Specify the assignee by {key}"
        if self._find_user(value) is None:
            return f"User '{value[key]}' cannot be assigned issues."
        return None

    def _user_bean(self, value: dict[str, Any]) -> dict[str, Any]:
        user = self._find_user(value) or {}
        bean: dict[str, Any] = {
            "displayName": user.get("displayName", ""),
            "active": True,
            "self": f"{self.url}/rest/api/{self.api_version}/user?accountId={user.get('accountId', '')}",
        }
        if self.api_version == 3:
            bean.update(accountId=user.get("accountId", ""), accountType="atlassian")
        else:
            bean.update(name=user.get("name", ""), key=user.get("name", ""), emailAddress=user.get("emailAddress", ""))
        return bean

    def _assignable_users(self, req: Request) -> Response:
        if not (req.arg("project") or req.arg("issueKey") or req.arg("issueId")):
            self.server.fail(req, "assignable search without project, issueKey or issueId")
            return _errors(400, ["One of 'project', 'issueKey' or 'issueId' is required."])
        if req.arg("project") not in (None, self.project, self.project_id):
            return _errors(404, [f"No project could be found with key '{req.arg('project')}'."])
        wanted_param = "query" if self.api_version == 3 else "username"
        text = req.arg(wanted_param)
        if text is None:
            self.server.fail(req, f"assignable search on REST v{self.api_version} needs {wanted_param!r}")
            return _errors(400, [f"The '{wanted_param}' query parameter is required."])
        text = text.casefold()
        hits = []
        for user in self.users:
            words = [*user["displayName"].casefold().split(), user["emailAddress"].casefold(), user["name"].casefold()]
            if any(w.startswith(text) for w in words) or user["displayName"].casefold().startswith(text):
                hits.append(user)
        limit = int(req.arg("maxResults", "50") or 50)
        beans = []
        for user in hits[:limit]:
            bean: dict[str, Any] = {
                "displayName": user["displayName"],
                "active": True,
                "self": f"{self.url}/rest/api/{self.api_version}/user?accountId={user['accountId']}",
                "emailAddress": user["emailAddress"],
            }
            if self.api_version == 3:
                bean.update(accountId=user["accountId"], accountType="atlassian")
            else:
                bean.update(name=user["name"], key=user["name"])
            beans.append(bean)
        return Response(200, beans)

    def _list_link_types(self, req: Request) -> Response:
        api = f"{self.url}/rest/api/{self.api_version}"
        return Response(
            200, {"issueLinkTypes": [{**t, "self": f"{api}/issueLinkType/{t['id']}"} for t in self.link_types]}
        )

    def _link_issues(self, req: Request) -> Response:
        body = req.json or {}
        wanted = body.get("type") or {}
        link_type = next(
            (t for t in self.link_types if t["name"] == wanted.get("name") or t["id"] == wanted.get("id")), None
        )
        inward = self._find(
            (body.get("inwardIssue") or {}).get("key") or (body.get("inwardIssue") or {}).get("id") or ""
        )
        outward = self._find(
            (body.get("outwardIssue") or {}).get("key") or (body.get("outwardIssue") or {}).get("id") or ""
        )
        if link_type is None:
            return _errors(404, [f"No issue link type with name '{wanted.get('name')}' found."])
        if inward is None or outward is None:
            return _errors(404, ["Issue Does Not Exist"])
        if inward is outward:
            self.server.fail(req, f"an issue linked to itself ({inward['key']})")
            return _errors(400, ["You cannot link an issue to itself."])
        for link in self.links:
            # A duplicate is answered as created, and not stored twice.
            if link["type"] == link_type["name"] and {link["inward"], link["outward"]} == {
                inward["key"],
                outward["key"],
            }:
                return Response(201)
        self.links.append(
            {
                "id": str(50000 + len(self.links) + 1),
                "type": link_type["name"],
                "inward": inward["key"],
                "outward": outward["key"],
            }
        )
        return Response(201)

    def _issue_links(self, issue: dict[str, Any]) -> list[dict[str, Any]]:
        api = f"{self.url}/rest/api/{self.api_version}"
        beans = []
        for link in self.links:
            if issue["key"] not in (link["inward"], link["outward"]):
                continue
            link_type = next(t for t in self.link_types if t["name"] == link["type"])
            other_key = link["outward"] if link["inward"] == issue["key"] else link["inward"]
            other = self.issues[other_key]
            side = "outwardIssue" if link["inward"] == issue["key"] else "inwardIssue"
            beans.append(
                {
                    "id": link["id"],
                    "self": f"{api}/issueLink/{link['id']}",
                    "type": {**link_type, "self": f"{api}/issueLinkType/{link_type['id']}"},
                    side: {
                        "id": other["id"],
                        "key": other_key,
                        "self": f"{api}/issue/{other['id']}",
                        "fields": {"summary": other["fields"]["summary"], "status": other["fields"]["status"]},
                    },
                }
            )
        return beans
