"""A real HTTP server on 127.0.0.1 that validates every request against an API spec.

``SpecServer`` loads an OpenAPI 3 or Swagger 2 document and, for each request, checks that
the path matches a path template under the spec's base path, that the method exists for it,
that required path/query/header parameters are present and well-typed (unknown query
parameters are rejected too), that the credentials match one of the spec's security
requirements, and that a JSON body validates against the operation's schema (``$ref``s
resolved into ``components/schemas`` or ``definitions``, with jsonschema). Multipart bodies
are parsed byte-exactly into ``Part``s.

A request that breaks the spec is answered 400 *and* recorded in ``failures``; the fixtures
assert that list is empty at teardown, so a client that sends something the spec does not
allow fails its test loudly. Responses the fakes produce are validated against the spec too
(a wrong fake is a failure as well), except where a fake documents a known deviation of the
real service from its own spec.

Failure injection: ``inject()`` queues an answer (status + headers + body), a hang, or a
dropped connection for the next N requests matching a method and a path, either before the
fake handles the request or after (``passthrough=True``: the request takes effect, then its
answer is lost — the "created, but the client never heard" case), or a gate that holds
requests until several clients have sent theirs (a real race).
"""

from __future__ import annotations

import json
import re
import socket
import threading
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from email.message import Message
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import jsonschema
from referencing import Registry
from referencing.jsonschema import DRAFT4

URN = "urn:spec"
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")
FORMATS = jsonschema.FormatChecker()


@FORMATS.checks("date-time", raises=ValueError)
def _is_date_time(value: object) -> bool:
    # jsonschema checks date-time only with an optional package; Go servers (Gitea, Forgejo)
    # reject anything but RFC 3339, so the check matters.
    if not isinstance(value, str):
        return True
    if not _RFC3339.fullmatch(value):
        return False
    datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    return True


# --------------------------------------------------------------------------- data


@dataclass
class Part:
    """One part of a multipart/form-data body."""

    name: str | None
    filename: str | None
    content_type: str | None
    data: bytes


@dataclass
class Request:
    method: str
    path: str  # below the spec's base path, undecoded, without the query
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    route: str | None = None  # the spec's path template
    params: dict[str, str] = field(default_factory=dict)  # path parameters, decoded
    json: Any = None
    parts: list[Part] = field(default_factory=list)
    form: dict[str, list[str]] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    @property
    def media_type(self) -> str:
        return (self.header("content-type") or "").split(";")[0].strip().lower()


@dataclass
class Response:
    status: int
    body: Any = None  # JSON-serialisable, str (text/plain) or bytes
    headers: dict[str, str] = field(default_factory=dict)

    def encode(self) -> tuple[bytes, str]:
        if self.body is None:
            return b"", "application/json"
        if isinstance(self.body, bytes):
            return self.body, "application/octet-stream"
        if isinstance(self.body, str):
            return self.body.encode(), "text/plain; charset=utf-8"
        return json.dumps(self.body).encode(), "application/json;charset=UTF-8"


DROP = Response(-1)  # close the connection without answering


@dataclass
class Injection:
    method: str
    pattern: str
    remaining: int
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    hang: float | None = None
    drop: bool = False
    passthrough: bool = False
    gate: threading.Barrier | None = None
    skip: int = 0  # matching requests to let through untouched first

    def matches(self, req: Request) -> bool:
        if self.method not in ("*", req.method):
            return False
        return self.pattern == req.route or re.fullmatch(self.pattern, req.path) is not None

    def response(self) -> Response:
        body = self.body if self.body is not None else {"message": f"injected {self.status}"}
        return Response(self.status or 500, body, dict(self.headers))


# --------------------------------------------------------------------------- the spec


def _prepare(node: Any) -> Any:
    """Make every local $ref absolute (so any sub-schema validates on its own against the
    registry) and turn OpenAPI 3.0 ``nullable`` / Swagger ``x-nullable`` into JSON Schema."""
    if isinstance(node, list):
        return [_prepare(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _prepare(v) for k, v in node.items()}
    ref = out.get("$ref")
    if isinstance(ref, str) and ref.startswith("#"):
        out["$ref"] = URN + ref
    if (out.get("nullable") is True or out.get("x-nullable") is True) and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out


@cache
def _load(path: str) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def load_spec_document(path: Path) -> dict[str, Any]:
    """The parsed spec (cached; treat as read-only, copy before changing)."""
    return _load(str(path))


@dataclass
class _Route:
    template: str
    regex: re.Pattern[str]
    names: list[str]
    item: dict[str, Any]


class Spec:
    """An OpenAPI 3 / Swagger 2 document, indexed for matching and validation."""

    METHODS = ("get", "put", "post", "delete", "patch", "head", "options")

    def __init__(self, document: dict[str, Any], *, greedy: Iterable[str] = ()) -> None:
        self.v3 = "openapi" in document
        self.doc = _prepare(document)
        self.registry = Registry().with_resource(URN, DRAFT4.create_resource(self.doc))
        if self.v3:
            servers = self.doc.get("servers") or [{"url": ""}]
            self.base_path = urlsplit(servers[0]["url"]).path.rstrip("/")
            self.schemes = self.doc.get("components", {}).get("securitySchemes", {})
        else:
            self.base_path = (self.doc.get("basePath") or "").rstrip("/")
            self.schemes = self.doc.get("securityDefinitions", {})
        greedy = set(greedy)
        routes = []
        for template, item in self.doc.get("paths", {}).items():
            names = re.findall(r"\{([^}]+)\}", template)
            pattern = re.sub(
                r"\\\{([^}]+)\\\}", lambda m: "(.+)" if m.group(1) in greedy else "([^/]+)", re.escape(template)
            )
            literals = sum(1 for seg in template.split("/") if seg and not seg.startswith("{"))
            key = (-literals, len(names), template)
            routes.append((key, _Route(template, re.compile(pattern), names, item)))
        self.routes = [r for _, r in sorted(routes, key=lambda kr: kr[0])]

    # -- lookup

    def deref(self, node: Any) -> Any:
        """Follow a (prepared, absolute) $ref to the object it names."""
        seen = 0
        while isinstance(node, dict) and isinstance(node.get("$ref"), str) and seen < 20:
            pointer = node["$ref"][len(URN) + 1 :]
            node = self.doc
            for token in pointer.strip("/").split("/"):
                node = node[token.replace("~1", "/").replace("~0", "~")]
            seen += 1
        return node

    def match(self, path: str) -> tuple[_Route, dict[str, str]] | None:
        for route in self.routes:
            m = route.regex.fullmatch(path)
            if m:
                return route, {n: unquote(v) for n, v in zip(route.names, m.groups(), strict=True)}
        return None

    def validator(self, schema: Any) -> jsonschema.Draft4Validator:
        return jsonschema.Draft4Validator(schema, registry=self.registry, format_checker=FORMATS)

    def schema_errors(self, schema: Any, value: Any) -> list[str]:
        errors = sorted(self.validator(schema).iter_errors(value), key=lambda e: list(e.absolute_path))
        return [f"{'/'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}"[:400] for e in errors[:5]]

    def parameters(self, item: dict[str, Any], op: dict[str, Any]) -> list[dict[str, Any]]:
        merged: dict[tuple[str, str], dict[str, Any]] = {}
        for raw in list(item.get("parameters", [])) + list(op.get("parameters", [])):
            p = self.deref(raw)
            name = p["name"].lower() if p["in"] == "header" else p["name"]
            merged[(name, p["in"])] = p
        return list(merged.values())

    def param_schema(self, p: dict[str, Any]) -> dict[str, Any]:
        if self.v3:
            return p.get("schema", {})
        keep = ("type", "format", "items", "enum", "minimum", "maximum", "pattern", "maxLength", "minLength")
        return {k: v for k, v in p.items() if k in keep and not (k == "type" and v == "file")}

    # -- validation

    def validate(self, req: Request) -> tuple[dict[str, Any] | None, list[str]]:
        """Fill in req.route/params/json/parts; return the operation and the problems."""
        found = self.match(req.path)
        if found is None:
            return None, [f"no path in the spec matches {req.path}"]
        route, params = found
        req.route, req.params = route.template, params
        op = route.item.get(req.method.lower())
        if op is None:
            allowed = [m.upper() for m in self.METHODS if m in route.item]
            return None, [f"{req.method} is not an operation of {route.template} (spec allows {allowed})"]
        problems: list[str] = []
        params_spec = self.parameters(route.item, op)
        problems += self._check_parameters(req, params_spec)
        problems += self._check_security(req, op)
        problems += self._check_body(req, op, params_spec)
        return op, problems

    def _coerce(self, values: list[str], p: dict[str, Any]) -> Any:
        schema = self.param_schema(p)
        if schema.get("type") == "array":
            if self.v3:
                items = values if p.get("explode", True) else [x for v in values for x in v.split(",")]
            else:
                fmt = p.get("collectionFormat", "csv")
                sep = {"csv": ",", "ssv": " ", "tsv": "\t", "pipes": "|"}.get(fmt)
                items = values if sep is None else [x for v in values for x in v.split(sep)]
            return [self._scalar(x, schema.get("items", {})) for x in items]
        if len(values) > 1:
            raise ValueError(f"given {len(values)} times")
        return self._scalar(values[0], schema)

    @staticmethod
    def _scalar(text: str, schema: dict[str, Any]) -> Any:
        kind = schema.get("type")
        if kind == "integer":
            if not re.fullmatch(r"-?\d+", text):
                raise ValueError(f"{text!r} is not an integer")
            return int(text)
        if kind == "number":
            return float(text)
        if kind == "boolean":
            if text not in ("true", "false"):
                raise ValueError(f"{text!r} is not a boolean")
            return text == "true"
        return text

    def _check_parameters(self, req: Request, params_spec: list[dict[str, Any]]) -> list[str]:
        problems = []
        known_query = {p["name"] for p in params_spec if p["in"] == "query"}
        known_query |= {
            s.get("name") for s in self.schemes.values() if s.get("type") == "apiKey" and s.get("in") == "query"
        }
        for p in params_spec:
            where, name = p["in"], p["name"]
            if where == "path":
                values = [req.params[name]] if name in req.params else []
            elif where == "query":
                values = req.query.get(name, [])
            elif where == "header":
                if self.v3 and name.lower() in ("accept", "content-type", "authorization"):
                    continue  # OpenAPI 3 ignores these as parameters
                value = req.header(name)
                values = [] if value is None else [value]
            else:
                continue  # body / formData / cookie: checked elsewhere
            if not values:
                if p.get("required"):
                    problems.append(f"required {where} parameter {name!r} is missing")
                continue
            try:
                value = self._coerce(values, p)
            except ValueError as exc:
                problems.append(f"{where} parameter {name!r}: {exc}")
                continue
            problems += [f"{where} parameter {name!r}: {e}" for e in self.schema_errors(self.param_schema(p), value)]
        for name in req.query:
            if name not in known_query:
                problems.append(f"query parameter {name!r} is not in the spec for this operation")
        return problems

    def _has_credential(self, scheme: dict[str, Any] | None, req: Request) -> bool:
        if scheme is None:
            return False
        auth = req.header("authorization") or ""
        kind = scheme.get("type")
        if kind in ("basic",) or (kind == "http" and scheme.get("scheme", "").lower() == "basic"):
            return auth.lower().startswith("basic ")
        if kind == "http" and scheme.get("scheme", "").lower() == "bearer":
            return auth.lower().startswith("bearer ")
        if kind in ("oauth2", "openIdConnect"):
            return auth.lower().startswith("bearer ")
        if kind == "apiKey":
            name, where = scheme.get("name", ""), scheme.get("in")
            if where == "header":
                return req.header(name) is not None
            if where == "query":
                return name in req.query
            if where == "cookie":
                return f"{name}=" in (req.header("cookie") or "")
        return False

    def _check_security(self, req: Request, op: dict[str, Any]) -> list[str]:
        requirements = op.get("security", self.doc.get("security"))
        if not requirements:
            return []
        for alternative in requirements:
            if all(self._has_credential(self.schemes.get(name), req) for name in alternative):
                return []
        names = [" + ".join(alt) or "anonymous" for alt in requirements]
        return [f"no credentials for any security requirement of the operation ({', '.join(names)})"]

    def _check_body(self, req: Request, op: dict[str, Any], params_spec: list[dict[str, Any]]) -> list[str]:
        return self._check_body_v3(req, op) if self.v3 else self._check_body_v2(req, op, params_spec)

    def _parse_payload(self, req: Request) -> list[str]:
        media = req.media_type
        if media == "application/json" or media.endswith("+json"):
            try:
                req.json = json.loads(req.body.decode("utf-8"))
            except (UnicodeDecodeError, ValueError) as exc:
                return [f"body is not valid JSON: {exc}"]
        elif media == "multipart/form-data":
            try:
                req.parts = parse_multipart(req.header("content-type") or "", req.body)
            except ValueError as exc:
                return [f"multipart body cannot be parsed: {exc}"]
            for part in req.parts:
                if part.filename is None and part.name:
                    req.form.setdefault(part.name, []).append(part.data.decode("utf-8", "replace"))
        elif media == "application/x-www-form-urlencoded":
            req.form = parse_qs(req.body.decode("utf-8", "replace"), keep_blank_values=True)
        return []

    def _check_body_v3(self, req: Request, op: dict[str, Any]) -> list[str]:
        body_spec = self.deref(op.get("requestBody")) if op.get("requestBody") else None
        if body_spec is None:
            return ["the operation takes no request body"] if req.body else []
        if not req.body:
            return ["the request body is required"] if body_spec.get("required") else []
        content = body_spec.get("content", {})
        media = req.media_type
        key = next((k for k in content if k.lower() == media), None)
        key = key or next((k for k in content if k.endswith("/*") and media.startswith(k[:-1])), None)
        key = key or ("*/*" if "*/*" in content else None)
        if key is None:
            return [f"Content-Type {media or 'none'} is not accepted (spec: {sorted(content)})"]
        problems = self._parse_payload(req)
        if problems:
            return problems
        schema = content[key].get("schema")
        if schema is None:
            return []
        if media == "multipart/form-data":
            resolved = self.deref(schema)
            if resolved.get("type") == "array":
                return [] if any(p.filename is not None for p in req.parts) else ["multipart body has no file part"]
            names = {p.name for p in req.parts}
            return [f"multipart field {n!r} is required" for n in resolved.get("required", []) if n not in names]
        if req.json is not None or media.endswith("json"):
            return self.schema_errors(schema, req.json)
        return []

    def _check_body_v2(self, req: Request, op: dict[str, Any], params_spec: list[dict[str, Any]]) -> list[str]:
        body = [p for p in params_spec if p["in"] == "body"]
        form = [p for p in params_spec if p["in"] == "formData"]
        consumes = [c.lower() for c in (op.get("consumes") or self.doc.get("consumes") or ["application/json"])]
        if not req.body:
            missing = [p["name"] for p in body + form if p.get("required")]
            return [f"required body parameter {n!r} is missing" for n in missing]
        if not body and not form:
            return ["the operation takes no request body"]
        media = req.media_type
        if media not in consumes:
            return [f"Content-Type {media or 'none'} is not accepted (spec consumes {consumes})"]
        problems = self._parse_payload(req)
        if problems:
            return problems
        if body:
            if req.json is None and media != "application/json":
                return [f"body parameter {body[0]['name']!r} must be JSON"]
            return self.schema_errors(body[0].get("schema", {}), req.json)
        files = {p.name: p for p in req.parts if p.filename is not None}
        known = {p["name"] for p in form}
        for p in form:
            name = p["name"]
            if p.get("type") == "file":
                if name not in files and p.get("required"):
                    problems.append(f"required file field {name!r} is missing")
                continue
            values = req.form.get(name, [])
            if not values:
                if p.get("required"):
                    problems.append(f"required form field {name!r} is missing")
                continue
            try:
                value = self._coerce(values, p)
            except ValueError as exc:
                problems.append(f"form field {name!r}: {exc}")
                continue
            problems += [f"form field {name!r}: {e}" for e in self.schema_errors(self.param_schema(p), value)]
        for name in list(files) + list(req.form):
            if name not in known:
                problems.append(f"form field {name!r} is not in the spec for this operation")
        return problems

    def response_schema(self, op: dict[str, Any], status: int) -> Any:
        responses = op.get("responses", {})
        spec = responses.get(str(status)) or responses.get(f"{str(status)[0]}XX") or responses.get("default")
        spec = self.deref(spec) if spec else None
        if not spec:
            return None
        if self.v3:
            content = spec.get("content", {})
            media = next((m for m in content if "json" in m), None)
            return content[media].get("schema") if media else None
        return spec.get("schema")


def _strip_nulls(value: Any) -> Any:
    # Go and Java servers serialise unset pointers as null where their specs say nothing
    # about nullability; the response check is about shape, not about that.
    if isinstance(value, dict):
        return {k: _strip_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_strip_nulls(v) for v in value]
    return value


def parse_multipart(content_type: str, body: bytes) -> list[Part]:
    """Split a multipart/form-data body byte-exactly (no line-ending rewriting)."""
    header = Message()
    header["content-type"] = content_type
    boundary = header.get_param("boundary")
    if not boundary or not isinstance(boundary, str):
        raise ValueError("no boundary in Content-Type")
    delimiter = b"--" + boundary.encode("latin-1")
    sections = body.split(delimiter)
    if len(sections) < 3 or not sections[-1].startswith(b"--"):
        raise ValueError("missing closing boundary")
    parts = []
    for section in sections[1:-1]:
        if not section.startswith(b"\r\n") or not section.endswith(b"\r\n"):
            raise ValueError("boundary not followed/preceded by CRLF")
        head, sep, data = section[2:-2].partition(b"\r\n\r\n")
        if not sep:
            raise ValueError("part without a header/body separator")
        part_headers = Message()
        for line in head.decode("utf-8", "replace").split("\r\n"):
            name, colon, value = line.partition(":")
            if not colon:
                raise ValueError(f"bad part header line {line!r}")
            part_headers[name.strip()] = value.strip()
        if part_headers.get("content-disposition") is None:
            raise ValueError("part without Content-Disposition")
        name = part_headers.get_param("name", header="content-disposition")
        parts.append(
            Part(
                name=name if isinstance(name, str) else None,
                filename=part_headers.get_filename(),
                content_type=part_headers.get("content-type"),
                data=data,
            )
        )
    return parts


# --------------------------------------------------------------------------- the server


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes: without this, Nagle's algorithm and
        # the client's delayed ACK add ~40 ms to every keep-alive answer.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _read_body(self) -> bytes:
        if (self.headers.get("Transfer-Encoding") or "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        split = urlsplit(self.path)
        req = Request(
            method=self.command,
            path=split.path,
            query=parse_qs(split.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=self._read_body(),
        )
        resp = self.server.owner.dispatch(req)
        if resp is DROP:
            self.close_connection = True
            return
        payload, content_type = resp.encode()
        if self.command == "HEAD":
            payload = b""
        try:
            self.send_response(resp.status)
            headers = {"Content-Type": content_type, **resp.headers}
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (timed out) first

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _handle

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean; SpecServer.requests has every request


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # hung handlers are released by SpecServer.close(), never joined
    owner: SpecServer


Handler = Callable[[Request], Response]


class SpecServer:
    """Serve ``spec`` on 127.0.0.1:<ephemeral> with handlers keyed by (METHOD, template).

    ``authenticate(req)`` returns a Response (401) to deny, or None to let the request in.
    ``exempt`` maps (METHOD, template) to the reason a real service deviates from its spec,
    which skips the response check for that operation.
    """

    def __init__(
        self,
        spec: Spec,
        *,
        name: str = "fake",
        authenticate: Callable[[Request], Response | None] | None = None,
        exempt: dict[tuple[str, str], str] | None = None,
    ) -> None:
        self.spec = spec
        self.name = name
        self.authenticate = authenticate
        self.exempt = dict(exempt or {})
        self.handlers: dict[tuple[str, str], Handler] = {}
        self.failures: list[str] = []
        self.requests: list[Request] = []
        self.lock = threading.RLock()  # serialises handlers, so fakes' state needs no other lock
        self._injections: list[Injection] = []
        self._closing = threading.Event()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- set-up

    def route(self, method: str, template: str, handler: Handler) -> None:
        if template not in self.spec.doc.get("paths", {}):
            raise KeyError(f"{template} is not a path of the spec")
        self.handlers[(method.upper(), template)] = handler

    def inject(
        self,
        method: str,
        pattern: str,
        *,
        status: int | None = None,
        times: int = 1,
        headers: dict[str, str] | None = None,
        body: Any = None,
        hang: float | None = None,
        drop: bool = False,
        passthrough: bool = False,
        gate: threading.Barrier | None = None,
        skip: int = 0,
    ) -> None:
        """Answer the next ``times`` requests matching METHOD and ``pattern`` (the spec's path
        template, or a regex fully matching the path below the base path) with ``status``,
        a ``hang`` of that many seconds then a dropped connection, or a ``drop``.
        With ``passthrough`` the fake handles the request first (its effect stays).
        A ``gate`` (a threading.Barrier) holds each matching request until as many have
        arrived as the barrier has parties, then lets them all be handled as usual: the way
        to make two clients' requests race for real. ``skip`` lets that many matching
        requests through untouched first."""
        if status is None and hang is None and not drop and gate is None:
            raise ValueError("inject needs a status, a hang, drop=True or a gate")
        with self.lock:
            self._injections.append(
                Injection(
                    method.upper(),
                    pattern,
                    times,
                    status,
                    dict(headers or {}),
                    body,
                    hang,
                    drop,
                    passthrough,
                    gate,
                    skip,
                )
            )

    # -- life cycle

    @property
    def url(self) -> str:
        """The origin plus the spec's base path, e.g. http://127.0.0.1:PORT/api/v1."""
        return self.origin + self.spec.base_path

    @property
    def origin(self) -> str:
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> SpecServer:
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"specserver-{self.name}",
            daemon=True,
        )
        self._thread.start()
        return self

    def close(self) -> None:
        self._closing.set()  # release hung handlers
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> SpecServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- inspection

    def clear_injections(self) -> None:
        with self.lock:
            self._injections.clear()

    def calls(self, method: str | None = None, route: str | None = None) -> list[Request]:
        with self.lock:
            return [
                r
                for r in self.requests
                if (method is None or r.method == method) and (route is None or r.route == route)
            ]

    def fail(self, req: Request, problem: str) -> None:
        """Record a failure the test must see (also used by fakes for semantic checks)."""
        with self.lock:
            self.failures.append(f"{self.name}: {req.method} {req.path}: {problem}")

    # -- dispatch

    def _take_injection(self, req: Request) -> Injection | None:
        with self.lock:
            for inj in self._injections:
                if inj.remaining > 0 and inj.matches(req):
                    if inj.skip > 0:
                        inj.skip -= 1
                        continue
                    inj.remaining -= 1
                    return inj
        return None

    def dispatch(self, req: Request) -> Response:
        base = self.spec.base_path
        if base and not (req.path == base or req.path.startswith(base + "/")):
            with self.lock:
                self.requests.append(req)
            self.fail(req, f"path is outside the spec's base path {base}")
            return Response(404, {"message": "not found"})
        req.path = req.path[len(base) :] or "/"
        with self.lock:
            self.requests.append(req)
        op, problems = self.spec.validate(req)
        if problems:
            for problem in problems:
                self.fail(req, problem)
            return Response(400, {"message": "request does not match the API spec", "problems": problems})
        injection = self._take_injection(req)
        if injection is not None and injection.gate is not None:
            injection.gate.wait(timeout=60)  # outside the lock: the other racers must get here too
            injection = None
        if injection is not None and not injection.passthrough:
            return self._injected(injection)
        if self.authenticate is not None:
            denial = self.authenticate(req)
            if denial is not None:
                return denial
        handler = self.handlers.get((req.method, req.route or ""))
        if handler is None:
            self.fail(req, f"the fake implements no handler for {req.method} {req.route}")
            return Response(501, {"message": "not implemented by the fake"})
        try:
            with self.lock:
                resp = handler(req)
        except Exception:  # a bug in the fake: make the test fail with the traceback
            self.fail(req, "fake handler raised:\n" + traceback.format_exc())
            return Response(500, {"message": "fake handler error"})
        self._check_response(req, op or {}, resp)
        if injection is not None:
            return self._injected(injection)
        return resp

    def _injected(self, injection: Injection) -> Response:
        if injection.hang is not None:
            self._closing.wait(injection.hang)
            return DROP
        if injection.drop:
            return DROP
        return injection.response()

    def _check_response(self, req: Request, op: dict[str, Any], resp: Response) -> None:
        if (req.method, req.route) in self.exempt or isinstance(resp.body, (bytes, str)) or resp.body is None:
            return
        schema = self.spec.response_schema(op, resp.status)
        if schema is None:
            return
        for problem in self.spec.schema_errors(schema, _strip_nulls(resp.body)):
            self.fail(req, f"the fake's {resp.status} response breaks the spec: {problem}")


class FakeService:
    """Base of the fake services: a SpecServer plus the service's state, used with ``with``."""

    server: SpecServer

    def __enter__(self):
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.close()

    @property
    def failures(self) -> list[str]:
        """Requests that broke the spec (each test asserts this stays empty)."""
        return self.server.failures
