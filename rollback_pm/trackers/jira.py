"""Jira backend: Cloud (REST v3: ADF bodies, email + API token) and Data Center / Server
(REST v2: wiki-markup bodies, bearer personal access token).

The ticket is found by the incident's unique label with JQL (Cloud: /search/jql, since the
classic /search is gone there; Data Center: /rest/api/2/search), and each hit is confirmed
by reading the issue itself, since the search lags behind writes. Creating is made safe
against lost answers and racing runners by reading issues by number
(``rollback_pm.trackers.claim``): each create carries its attempt in the ``rollback-pm``
issue property, so a lost answer is recognised for certain.
"""

from __future__ import annotations

import base64
import mimetypes
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from rollback_pm.errors import ConfigError, TrackerError, TrackerNotFoundError
from rollback_pm.log import get_logger, mask
from rollback_pm.models import TicketRef
from rollback_pm.trackers import claim, markup
from rollback_pm.trackers.base import Capabilities, ExistingTicket, FollowupSpec, NoPullRequests, TicketSpec, answers
from rollback_pm.trackers.http import (
    Confirmed,
    HttpClient,
    error_text,
    json_of,
    segment,
    strip_userinfo,
)

log = get_logger(__name__)

DEFAULT_PRIORITIES = {"Critical": "Highest", "High": "High", "Medium": "Medium", "Low": "Low"}
# Fields a project's create screen may lack (or whose value its scheme may not know): the
# ticket matters more than they do, so creation is retried once without them.
OPTIONAL_FIELDS = frozenset({"priority", "duedate", "components", "assignee"})
RELATES = "Relates"  # Jira's default link type for "relates to" (inward and outward alike)
TOKEN_HINT = "ROLLBACK_PM_TRACKER_TOKEN / --token-file"
EMAIL_HINT = "ROLLBACK_PM_JIRA_EMAIL / --jira-email"
PROPERTY = "rollback-pm"  # issue property: {"incident": id, "attempt": the create attempt that made it}


def clean_label(label: str) -> str:
    """Jira labels cannot contain spaces and are at most 255 characters."""
    return re.sub(r"\s+", "-", label.strip())[:255]


def one_line(title: str, limit: int = 255) -> str:
    """Jira summaries are one line of at most 255 characters."""
    text = " ".join(title.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _jql_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class JiraTracker(NoPullRequests):
    """Tickets as Jira issues. ``api_version`` None means 3 for ``*.atlassian.net``, else 2."""

    name = "jira"
    capabilities = Capabilities(links=True)

    def __init__(
        self,
        url: str,
        project: str,
        token: str,
        email: str | None = None,
        api_version: int | None = None,
        issue_type: str = "Task",
        priority_map: dict[str, str] | None = None,
        components: tuple[str, ...] | list[str] = (),
        timeout: float = 10.0,
        retry_budget_s: float = 60.0,
        *,
        max_attempts: int = 5,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not url or not project:
            raise ConfigError(
                "the jira tracker needs ROLLBACK_PM_TRACKER_URL / --tracker-url and "
                "ROLLBACK_PM_JIRA_PROJECT / --jira-project"
            )
        if not token:
            raise ConfigError(f"the jira tracker needs a token: set {TOKEN_HINT}")
        self.base_url = strip_userinfo(url).rstrip("/")
        self.cloud = (urlsplit(self.base_url).hostname or "").endswith(".atlassian.net")
        self.api_version = int(api_version) if api_version else (3 if self.cloud else 2)
        if self.api_version not in (2, 3):
            raise ConfigError(
                f"jira API version must be 2 or 3, not {api_version!r}: fix ROLLBACK_PM_JIRA_API / --jira-api"
            )
        if self.api_version == 3 and not email:
            raise ConfigError(
                f"Jira Cloud (REST v3) signs in with the account email and an API token: set {EMAIL_HINT}"
            )
        self.project = project
        self.issue_type = issue_type or "Task"
        self.priority_map = dict(DEFAULT_PRIORITIES if priority_map is None else priority_map)
        self.components = tuple(components)
        self.api = f"/rest/api/{self.api_version}"
        # Cloud's classic /search is gone; Data Center has no /search/jql.
        self.search_path = f"{self.api}/search/jql" if self.cloud or self.api_version == 3 else f"{self.api}/search"
        if email:
            credentials = base64.b64encode(f"{email}:{token}".encode()).decode()
            authorization, auth_hint = f"Basic {credentials}", f"{TOKEN_HINT} and {EMAIL_HINT}"
        else:
            authorization, auth_hint = f"Bearer {token}", f"{TOKEN_HINT} (a Data Center personal access token)"
        self.project_hint = (
            f"the Jira URL (ROLLBACK_PM_TRACKER_URL / --tracker-url, now {self.base_url}) and the "
            f"project key (ROLLBACK_PM_JIRA_PROJECT / --jira-project, now {project})"
        )
        self.http = HttpClient(
            self.base_url,
            service="jira",
            authorization=authorization,
            secrets=(token,),
            timeout=timeout,
            retry_budget_s=retry_budget_s,
            max_attempts=max_attempts,
            auth_hint=auth_hint,
            not_found_hint=self.project_hint,
            sleep=sleep,
            clock=clock,
        )
        self.last_warnings: list[str] = []  # what create() could not do (attachments, link, fields)
        self._link_type: dict[str, str] | None = None  # the "Relates" link type, once asked
        self._users: dict[str, str | None] = {}  # owner -> user, once asked per run

    def __repr__(self) -> str:
        return f"JiraTracker({self.base_url} project={self.project} api=v{self.api_version})"

    # -- helpers

    def _rich(self, doc: markup.Doc) -> Any:
        render = markup.to_adf if self.api_version == 3 else markup.to_wiki
        return render(markup.truncate(doc, render))

    def _plain(self, body: Any) -> str:
        return markup.adf_text(body) if isinstance(body, dict) else " ".join(str(body or "").split())

    def _issue_path(self, ticket: TicketRef) -> str:
        return f"{self.api}/issue/{segment(ticket.key)}"

    def _ticket_hint(self, ticket: TicketRef) -> str:
        return f"that issue {ticket.key} still exists and the account can see it ({self.project_hint})"

    def _ref(self, issue: dict[str, Any]) -> TicketRef:
        key = issue["key"]
        return TicketRef(
            tracker=self.name, key=key, url=f"{self.base_url}/browse/{key}", status=_status(issue.get("fields", {}))
        )

    def _warn(self, message: str) -> None:
        message = mask(message)
        self.last_warnings.append(message)
        log.warning("jira ticket incomplete", detail=message)

    # -- Tracker protocol

    def _search(self, jql: str, fields: str, limit: int) -> list[dict[str, Any]]:
        params = {"jql": jql, "fields": fields, "maxResults": limit}
        resp = self.http.request("GET", self.search_path, params=params, allow=(400,))
        if resp.status_code == 400:
            detail = error_text(resp)
            if "project" in detail.lower():
                raise TrackerNotFoundError(
                    mask(f"jira cannot search project {self.project}: {detail}. Check {self.project_hint}")
                )
            raise TrackerError(mask(f"jira rejected the search {jql!r}: {detail}"))
        data = self.http.decode(resp, "GET", self.search_path) or {}
        return list(data.get("issues") or [])

    def find(self, unique_label: str) -> TicketRef | None:
        """The lowest-numbered issue with the label. The search only suggests (it lags, and may
        still show a label a duplicate had); reading the issue itself confirms."""
        label = clean_label(unique_label)
        jql = f"project = {_jql_string(self.project)} AND labels = {_jql_string(label)} ORDER BY created ASC"
        hits = [
            issue["key"]
            for issue in self._search(jql, "status,labels", 10)
            if answers(label, (issue.get("fields") or {}).get("labels") or [])
        ]
        for key in sorted(hits, key=_key_number):
            seen = self._read(key, _key_number(key))
            if seen is not None and seen.answers(label):
                return seen.ref
        return None

    def _newest(self) -> int:
        """The highest issue number the search shows in the project (0: none); lower than the
        truth while the search lags, which is safe (claim.tail reads on from it)."""
        issues = self._search(f"project = {_jql_string(self.project)} ORDER BY key DESC", "key", 1)
        return _key_number(issues[0]["key"]) if issues else 0

    def _read(self, key: str, number: int) -> claim.Seen | None:
        """Issue ``key`` read directly (consistent), or None when there is none."""
        path = f"{self.api}/issue/{segment(key)}"
        resp = self.http.request("GET", path, params={"fields": "status,labels", "properties": PROPERTY}, allow=(404,))
        if resp.status_code == 404:
            return None
        issue = self.http.decode(resp, "GET", path) or {}
        marker = ((issue.get("properties") or {}).get(PROPERTY)) or {}
        return claim.Seen(
            number=number,
            ref=self._ref(issue),
            labels=frozenset((issue.get("fields") or {}).get("labels") or []),
            attempt=marker.get("attempt") if isinstance(marker, dict) else None,
        )

    def _read_number(self, number: int) -> claim.Seen | None:
        return self._read(f"{self.project}-{number}", number)

    def _fields(self, spec: TicketSpec | FollowupSpec) -> dict[str, Any]:
        """The fields an incident's ticket and a follow-up share: project, summary, type,
        labels (the unique one included), description, due date and components."""
        labels = list(dict.fromkeys(clean_label(x) for x in [*spec.labels, spec.unique_label] if x.strip()))
        fields: dict[str, Any] = {
            "project": {"key": self.project},
            "summary": one_line(spec.title),
            "issuetype": {"name": self.issue_type},
            "labels": labels,
            "description": self._rich(spec.body),
        }
        if spec.due_date:
            fields["duedate"] = spec.due_date.isoformat()
        if self.components:
            fields["components"] = [{"name": c} for c in self.components]
        return fields

    def create(self, spec: TicketSpec) -> TicketRef:
        self.last_warnings = []
        label, fields = clean_label(spec.unique_label), self._fields(spec)
        priority = self.priority_map.get(spec.severity or "")
        if priority:
            fields["priority"] = {"name": priority}
        with self.http.budget():
            mark = self._newest()
            found = claim.tail(self._read_number, label, mark, service="jira")
            if found:
                log.info("jira issue found by its number; not created again", key=found[0].ref.key)
                return ExistingTicket(**asdict(found[0].ref))
            attempt = uuid.uuid4().hex
            mine, ours = self._create_issue(fields, label, mark, {"incident": spec.incident_id, "attempt": attempt})
            ticket, new = claim.settle(
                self._read_number,
                label,
                mine,
                ours=ours,
                after=mark,
                retire=lambda loser, winner: self._retire(loser, winner, label),
            )
            if not new:
                return ExistingTicket(**asdict(ticket))
            log.info("jira issue created", key=ticket.key)
            if spec.pipeline_url:
                try:
                    self.link(ticket, spec.pipeline_url)
                except TrackerError as exc:
                    self._warn(f"{ticket.key}: the pipeline link was not added: {exc}")
            for path in spec.attachments:
                try:
                    self.attach(ticket, Path(path))
                except TrackerError as exc:
                    self._warn(f"{ticket.key}: {Path(path).name} was not attached: {exc}")
        return ticket

    def _create_issue(
        self, fields: dict[str, Any], label: str, mark: int, marker: dict[str, str]
    ) -> tuple[claim.Seen, bool]:
        """(the issue, whether this call made it): a lost answer is settled by reading issues
        by number (never by the lagging search) before the create is ever sent again."""
        path = f"{self.api}/issue"

        def landed() -> tuple[claim.Seen, bool] | None:
            return claim.after_lost_answer(self._read_number, label, mark, marker["attempt"], service="jira")

        for _ in range(2):
            body = {"fields": fields, "properties": [{"key": PROPERTY, "value": marker}]}
            resp = self.http.request("POST", path, json=body, allow=(400,), confirm=landed)
            if isinstance(resp, Confirmed):
                seen, ours = resp.value
                return seen, ours
            if resp.status_code != 400:
                key = (self.http.decode(resp, "POST", path) or {}).get("key")
                if not key:
                    raise TrackerError(f"jira answered {resp.status_code} to POST {path} without an issue key")
                ref = TicketRef(tracker=self.name, key=key, url=f"{self.base_url}/browse/{key}", status="open")
                return claim.Seen(_key_number(key), ref, frozenset(fields["labels"]), marker["attempt"]), True
            self._drop_refused_fields(resp, fields)
        raise TrackerError(f"jira refused to create the issue in {self.project}")

    def _drop_refused_fields(self, resp: Any, fields: dict[str, Any]) -> None:
        """A create answered 400: raise what cannot be fixed here; drop the optional fields
        the project refuses (priority, components, ...) from ``fields``, saying so, for one retry."""
        errors = (json_of(resp) or {}).get("errors") or {}
        detail = error_text(resp)
        if "project" in errors:
            raise TrackerNotFoundError(
                mask(f"jira rejected project {self.project}: {detail}. Check {self.project_hint}")
            )
        if "issuetype" in errors:
            raise TrackerNotFoundError(
                mask(
                    f"jira has no issue type {self.issue_type!r} in project "
                    f"{self.project}: {detail}. Fix ROLLBACK_PM_JIRA_ISSUE_TYPE / "
                    "--jira-issue-type"
                )
            )
        dropped = _drop_optional(errors, fields, f"jira refused to create the issue in {self.project}: {detail}")
        self._warn(
            f"project {self.project} does not accept {', '.join(sorted(dropped))} ({detail}); "
            f"created the issue without {_it_or_them(dropped)} (check the priority map / components settings)"
        )

    def _create_followup_issue(self, fields: dict[str, Any], label: str) -> TicketRef:
        """A follow-up's create: a lost answer is confirmed by its own row label."""
        path = f"{self.api}/issue"
        for _ in range(2):
            resp = self.http.request(
                "POST", path, json={"fields": fields}, allow=(400,), confirm=lambda: self.find(label)
            )
            if isinstance(resp, Confirmed):
                return resp.value
            if resp.status_code != 400:
                key = (self.http.decode(resp, "POST", path) or {}).get("key")
                if not key:
                    raise TrackerError(f"jira answered {resp.status_code} to POST {path} without an issue key")
                return TicketRef(tracker=self.name, key=key, url=f"{self.base_url}/browse/{key}", status="open")
            self._drop_refused_fields(resp, fields)
        raise TrackerError(f"jira refused to create the issue in {self.project}")

    def comment(self, ticket: TicketRef, text: markup.Doc | str) -> None:
        body = self._rich(markup.plain_doc(text))
        expected = self._plain(body)

        def posted() -> bool | None:
            page = (
                self.http.get_json(
                    f"{self._issue_path(ticket)}/comment", params={"orderBy": "-created", "maxResults": 20}
                )
                or {}
            )
            return True if any(self._plain(c.get("body")) == expected for c in page.get("comments", [])) else None

        self.http.request(
            "POST",
            f"{self._issue_path(ticket)}/comment",
            json={"body": body},
            confirm=posted,
            not_found_hint=self._ticket_hint(ticket),
        )

    def add_label(self, ticket: TicketRef, label: str) -> None:
        self.http.request(
            "PUT",
            self._issue_path(ticket),
            json={"update": {"labels": [{"add": clean_label(label)}]}},
            not_found_hint=self._ticket_hint(ticket),
        )

    def attach(self, ticket: TicketRef, path: Path) -> None:
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise TrackerError(f"cannot attach {path}: {exc.strerror}") from None
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"

        def uploaded() -> bool | None:
            issue = self.http.get_json(self._issue_path(ticket), params={"fields": "attachment"}) or {}
            found = any(
                a.get("filename") == path.name and a.get("size") == len(data)
                for a in (issue.get("fields") or {}).get("attachment") or []
            )
            return True if found else None

        self.http.request(
            "POST",
            f"{self._issue_path(ticket)}/attachments",
            files={"file": (path.name, data, content_type)},
            headers={"X-Atlassian-Token": "no-check"},
            confirm=uploaded,
            not_found_hint=self._ticket_hint(ticket),
        )

    def status(self, ticket: TicketRef) -> str:
        issue = (
            self.http.get_json(
                self._issue_path(ticket), params={"fields": "status"}, not_found_hint=self._ticket_hint(ticket)
            )
            or {}
        )
        return _status(issue.get("fields") or {})

    # -- follow-ups

    def _assignee(self, user: str) -> dict[str, str]:
        """Cloud names a user by account id; Data Center by user name."""
        return {"accountId": user} if self.api_version == 3 else {"name": user}

    def create_followup(self, spec: FollowupSpec) -> TicketRef:
        self.last_warnings = []
        label, fields = clean_label(spec.unique_label), self._fields(spec)
        if spec.assignee:
            fields["assignee"] = self._assignee(spec.assignee)
        with self.http.budget():
            ticket = self._create_followup_issue(fields, label)
            log.info("jira follow-up created", key=ticket.key, parent=spec.parent.key)
            try:
                self.relate(ticket, spec.parent, markup.Doc())
            except TrackerError as exc:
                self._warn(f"{ticket.key}: not linked to {spec.parent.key}: {exc}")
        return ticket

    def update_followup(self, ticket: TicketRef, *, title: str, due_date: date | None, assignee: str | None) -> None:
        """The summary always; the due date and assignee unless the edit screen refuses them
        (then the rest is saved and ``last_warnings`` says what was left out)."""
        self.last_warnings = []
        fields: dict[str, Any] = {
            "summary": one_line(title),
            "duedate": due_date.isoformat() if due_date else None,
        }
        if assignee:
            fields["assignee"] = self._assignee(assignee)
        path = self._issue_path(ticket)
        with self.http.budget():
            while True:  # each refusal drops at least one optional field, or raises
                resp = self.http.request(
                    "PUT", path, json={"fields": fields}, allow=(400,), not_found_hint=self._ticket_hint(ticket)
                )
                if resp.status_code != 400:
                    return
                errors = (json_of(resp) or {}).get("errors") or {}
                detail = error_text(resp)
                dropped = _drop_optional(errors, fields, f"jira refused to update {ticket.key}: {detail}")
                self._warn(
                    f"{ticket.key}: jira does not accept {', '.join(sorted(dropped))} ({detail}); "
                    f"updated the follow-up without {_it_or_them(dropped)}"
                )

    def link_type(self) -> dict[str, str]:
        """The site's "Relates" issue link type (by name, else by its "relates to" wording)."""
        if self._link_type is None:
            data = self.http.get_json(f"{self.api}/issueLinkType") or {}
            types = data.get("issueLinkTypes") or []
            found = next((t for t in types if str(t.get("name", "")).lower() == RELATES.lower()), None)
            found = found or next(
                (
                    t
                    for t in types
                    if "relates to" in (str(t.get("inward", "")).lower(), str(t.get("outward", "")).lower())
                ),
                None,
            )
            if found is None:
                names = ", ".join(str(t.get("name")) for t in types) or "none"
                raise TrackerError(
                    f"jira at {self.base_url} has no {RELATES!r} issue link type (it has: {names}); "
                    "ask a Jira admin to restore it"
                )
            self._link_type = {"name": str(found["name"])}
        return self._link_type

    def relate(self, ticket: TicketRef, other: TicketRef, note: markup.Doc) -> None:
        """A "Relates" issue link (Jira answers a duplicate as created: safe to repeat)."""
        payload = {"type": self.link_type(), "inwardIssue": {"key": other.key}, "outwardIssue": {"key": ticket.key}}
        self.http.request(
            "POST",
            f"{self.api}/issueLink",
            json=payload,
            idempotent=True,
            not_found_hint=f"that issues {ticket.key} and {other.key} exist and the account may link them "
            f"({self.project_hint})",
        )

    def find_user(self, owner: str) -> str | None:
        """The one assignable user of the project whose email, display name, user name or
        account id is ``owner`` (without a leading @), case aside; None otherwise."""
        wanted = owner.strip().lstrip("@").strip()
        if not wanted:
            return None
        if wanted not in self._users:
            key = "query" if self.api_version == 3 else "username"
            users = (
                self.http.get_json(
                    f"{self.api}/user/assignable/search",
                    params={"project": self.project, key: wanted, "maxResults": 50},
                )
                or []
            )
            id_field = "accountId" if self.api_version == 3 else "name"
            matches = {
                str(u[id_field])
                for u in users
                if isinstance(u, dict) and u.get(id_field) and u.get("active", True) and _names_user(wanted, u)
            }
            self._users[wanted] = matches.pop() if len(matches) == 1 else None
        return self._users[wanted]

    # -- a duplicate from a race

    def _retire(self, loser: claim.Seen, winner: claim.Seen, label: str) -> None:
        """Our issue lost the race to ``winner``: marked, unlabelled, linked, closed. Each step
        that fails is a warning; the winner is the ticket either way."""
        key, winner_key = loser.ref.key, winner.ref.key
        doc = markup.Doc().paragraph(
            "Duplicate of ",
            markup.code(winner_key),
            ": rollback-pm opened both for the same rollback at the same moment (two runners, or a create "
            "whose answer was lost), and the lower number wins. This one is closed; follow ",
            markup.code(winner_key),
            ".",
        )
        steps: list[tuple[str, Callable[[], object]]] = [
            (
                "relabelled",
                lambda: self.http.request(
                    "PUT",
                    self._issue_path(loser.ref),
                    json={"update": {"labels": [{"add": claim.DUPLICATE_LABEL}, {"remove": label}]}},
                ),
            ),
            # Jira's REST quirk: the inwardIssue reads the type's outward description, so this
            # says "<loser> duplicates <winner>". The comment says it in words as well.
            (
                "linked",
                lambda: self.http.request(
                    "POST",
                    f"{self.api}/issueLink",
                    json={
                        "type": {"name": "Duplicate"},
                        "inwardIssue": {"key": key},
                        "outwardIssue": {"key": winner_key},
                    },
                    idempotent=True,  # Jira answers a repeated link as created and changes nothing
                ),
            ),
            ("commented", lambda: self.comment(loser.ref, doc)),
            ("closed", lambda: self._close(loser.ref)),
        ]
        for done, step in steps:
            try:
                step()
            except TrackerError as exc:
                self._warn(f"{key}, a duplicate of {winner_key}, was not {done}: {exc}; do it by hand")

    def _close(self, ticket: TicketRef) -> None:
        """Move the issue to a status of the done category, by whichever transition leads there."""
        path = f"{self._issue_path(ticket)}/transitions"
        available = (self.http.get_json(path) or {}).get("transitions") or []
        done = [t for t in available if ((t.get("to") or {}).get("statusCategory") or {}).get("key") == "done"]
        if not done:
            raise TrackerError(f"no transition of {ticket.key} leads to a done status")

        def closed() -> bool | None:
            return True if self.status(ticket) == "resolved" else None

        self.http.request("POST", path, json={"transition": {"id": done[0]["id"]}}, confirm=closed)

    # -- extra

    def link(self, ticket: TicketRef, url: str, title: str = "Woodpecker pipeline") -> None:
        """A remote link to the pipeline (idempotent: keyed by a global id)."""
        payload = {
            "globalId": f"rollback-pm:pipeline:{url}",
            "application": {"type": "org.woodpecker-ci", "name": "Woodpecker CI"},
            "relationship": "rolled back by",
            "object": {"url": url, "title": title, "summary": "The pipeline whose deploy was rolled back"},
        }
        self.http.request(
            "POST",
            f"{self._issue_path(ticket)}/remotelink",
            json=payload,
            idempotent=True,
            not_found_hint=self._ticket_hint(ticket),
        )


def _key_number(key: str) -> int:
    """12 of OPS-12 (0 when the key has no number: it then sorts first and is read like any)."""
    tail = key.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def _status(fields: dict[str, Any]) -> str:
    category = ((fields.get("status") or {}).get("statusCategory") or {}).get("key")
    return "resolved" if category == "done" else "open"


def _names_user(wanted: str, user: dict[str, Any]) -> bool:
    """Does an owner cell's text name this Jira user exactly (case aside)?"""
    want = wanted.casefold()
    email = str(user.get("emailAddress") or "").casefold()
    names = {str(user.get(k) or "").casefold() for k in ("displayName", "name", "key", "accountId")}
    return want in names or (bool(email) and want in (email, email.split("@", 1)[0]))


def _drop_optional(errors: dict[str, Any], fields: dict[str, Any], refusal: str) -> set[str]:
    """The optional fields (priority, components, ...) a 400 names, removed from ``fields`` for
    one more try; a 400 about anything else raises ``refusal``."""
    dropped = set(errors) & set(fields) & OPTIONAL_FIELDS
    if not errors or set(errors) - OPTIONAL_FIELDS or not dropped:
        raise TrackerError(mask(refusal))
    for name in dropped:
        fields.pop(name)
    return dropped


def _it_or_them(names: set[str]) -> str:
    return "it" if len(names) == 1 else "them"
