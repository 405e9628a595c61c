"""Gitea / Forgejo backend: the issue on the forge Woodpecker builds from.

Both forges share the API (Forgejo forked Gitea): ``Authorization: token …``, labels that
must exist in the repository and are passed by id when an issue is created, ``due_date``,
issue assets for attachments. Optionally the draft is committed to ``postmortem/<id>`` and
a pull request opened, so the on-call engineer edits it in place.

Searching by label has a trap: both forges drop label names they do not know from the
filter, so a search for a label that does not exist yet returns *every* issue. Results are
therefore always checked for the label before one is taken as the incident's ticket, by
reading the issue itself: the list can lag behind writes (an issue indexer, a replica).
Creating is made safe against lost answers and racing runners by reading issues by number
(``rollback_pm.trackers.claim``); each create carries its attempt in a hidden comment at the
end of the issue's body, so a lost answer is recognised for certain.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import Any

from rollback_pm.errors import ConfigError, TrackerError
from rollback_pm.log import get_logger, mask
from rollback_pm.models import TicketRef
from rollback_pm.trackers import claim
from rollback_pm.trackers.base import Capabilities, ExistingTicket, FollowupSpec, TicketSpec, answers
from rollback_pm.trackers.http import (
    Confirmed,
    HttpClient,
    error_text,
    json_of,
    segment,
    strip_userinfo,
)
from rollback_pm.trackers.markup import Doc, inert, issue_ref, plain_doc, text, to_markdown

log = get_logger(__name__)

PAGE = 50  # the forges' maximum page size (API.MAX_RESPONSE_ITEMS default)
MAX_PAGES = 200
LABEL_COLORS = {"postmortem": "#b60205", "rollback": "#d93f0b"}
TOKEN_HINT = "ROLLBACK_PM_TRACKER_TOKEN / --token-file"
_ATTEMPT = re.compile(r"<!-- rollback-pm attempt=([0-9a-f]{32}) -->")


def due_date_value(day: date) -> str:
    """RFC 3339. The forges show the date in the server's time zone: midday UTC is the same
    calendar day from UTC-11 to UTC+11 (23:59Z would show the next day east of Greenwich)."""
    return f"{day.isoformat()}T12:00:00Z"


def label_color(name: str) -> str:
    """A stable colour per label name (fixed ones for the common labels)."""
    return LABEL_COLORS.get(name) or "#" + hashlib.sha256(name.encode()).hexdigest()[:6]


class GiteaTracker:
    """Tickets as issues on a Gitea or Forgejo repository (``repo`` is owner/name)."""

    capabilities = Capabilities(pull_requests=True)

    def __init__(
        self,
        url: str,
        repo: str,
        token: str,
        kind: str = "gitea",
        assignees: tuple[str, ...] | list[str] = (),
        timeout: float = 10.0,
        retry_budget_s: float = 60.0,
        *,
        max_attempts: int = 5,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if kind not in ("gitea", "forgejo"):
            raise ConfigError(f"forge type must be gitea or forgejo, not {kind!r}: fix ROLLBACK_PM_TRACKER / --tracker")
        owner, _, name = (repo or "").strip().strip("/").partition("/")
        if not owner or not name or "/" in name:
            raise ConfigError(
                f"the forge repository must be owner/name, not {repo!r}: fix ROLLBACK_PM_FORGE_REPO / "
                "--forge-repo (default: CI_REPO)"
            )
        if not url:
            raise ConfigError(
                f"the {kind} tracker needs the forge URL: set ROLLBACK_PM_TRACKER_URL / --tracker-url "
                "(default: CI_FORGE_URL)"
            )
        if not token:
            raise ConfigError(f"the {kind} tracker needs a token: set {TOKEN_HINT}")
        self.name = kind
        self.repo = f"{owner}/{name}"
        base = strip_userinfo(url).rstrip("/")
        if base.endswith("/api/v1"):
            base = base[: -len("/api/v1")]
        self.web_url = base
        self.assignees = list(assignees)
        self.repo_hint = (
            f"the repository (ROLLBACK_PM_FORGE_REPO / --forge-repo, now {self.repo}; default CI_REPO) "
            f"and the forge URL (ROLLBACK_PM_TRACKER_URL / --tracker-url, now {base}; default "
            "CI_FORGE_URL)"
        )
        self.http = HttpClient(
            base + "/api/v1",
            service=kind,
            authorization=f"token {token}",
            secrets=(token,),
            timeout=timeout,
            retry_budget_s=retry_budget_s,
            max_attempts=max_attempts,
            auth_hint=f"{TOKEN_HINT} (a {kind} access token with issue and repository write scope)",
            not_found_hint=self.repo_hint,
            sleep=sleep,
            clock=clock,
        )
        self.repo_path = f"/repos/{segment(owner)}/{segment(name)}"
        self.last_warnings: list[str] = []
        self._assignable: list[dict[str, Any]] | None = None  # the repository's assignees, once asked

    def __repr__(self) -> str:
        return f"GiteaTracker({self.name} {self.web_url} repo={self.repo})"

    # -- helpers

    def _number(self, ticket: TicketRef) -> int:
        try:
            return int(ticket.key.rsplit("#", 1)[-1])
        except ValueError:
            raise TrackerError(f"{ticket.key!r} is not a {self.name} issue key (owner/name#number)") from None

    def _issue_path(self, ticket: TicketRef) -> str:
        return f"{self.repo_path}/issues/{self._number(ticket)}"

    def _ticket_hint(self, ticket: TicketRef) -> str:
        return f"that issue {ticket.key} still exists ({self.repo_hint})"

    def _ref(self, issue: dict[str, Any]) -> TicketRef:
        number = issue["number"]
        url = issue.get("html_url") or f"{self.web_url}/{self.repo}/issues/{number}"
        return TicketRef(
            tracker=self.name,
            key=f"{self.repo}#{number}",
            url=url,
            status="resolved" if issue.get("state") == "closed" else "open",
        )

    def _warn(self, message: str) -> None:
        message = mask(message)
        self.last_warnings.append(message)
        log.warning(f"{self.name} ticket incomplete", detail=message)

    def _labels(self) -> dict[str, int]:
        """Every label of the repository, name -> id (paged)."""
        labels: dict[str, int] = {}
        for page in range(1, MAX_PAGES + 1):
            batch = self.http.get_json(f"{self.repo_path}/labels", params={"page": page, "limit": PAGE}) or []
            for item in batch:
                labels.setdefault(item["name"], item["id"])
            if len(batch) < PAGE:
                break
        return labels

    def label_ids(self, names: list[str]) -> list[int]:
        """Ids for these label names, creating the missing ones."""
        wanted = list(dict.fromkeys(n.strip() for n in names if n.strip()))
        known = self._labels()
        ids = []
        for name in wanted:
            if name not in known:

                def created(name: str = name) -> int | None:
                    return self._labels().get(name)

                resp = self.http.request(
                    "POST", f"{self.repo_path}/labels", json={"name": name, "color": label_color(name)}, confirm=created
                )
                known[name] = (
                    resp.value
                    if isinstance(resp, Confirmed)
                    else self.http.decode(resp, "POST", f"{self.repo_path}/labels")["id"]
                )
            ids.append(known[name])
        return ids

    # -- Tracker protocol

    def find(self, unique_label: str) -> TicketRef | None:
        """The lowest-numbered issue with the label. The list only suggests (it may lag, and
        show a label a duplicate had); reading the issue itself confirms."""
        label = unique_label.strip()
        issues = (
            self.http.get_json(
                f"{self.repo_path}/issues", params={"state": "all", "type": "issues", "labels": label, "limit": PAGE}
            )
            or []
        )
        # Unknown label names are dropped from the forge's filter: check every hit.
        mine = [i["number"] for i in issues if answers(label, [lab.get("name") or "" for lab in i.get("labels") or []])]
        for number in sorted(mine):
            seen = self._read_number(number)
            if seen is not None and seen.answers(label):
                return seen.ref
        return None

    def _newest(self) -> int:
        """The highest issue number the list shows (0: none); lower than the truth while the
        list lags, which is safe (claim.tail reads on from it). Newest first is both forges'
        order (Forgejo also takes sort=latest; Gitea's list has no sort parameter)."""
        params: dict[str, Any] = {"state": "all", "type": "issues", "limit": 1}
        if self.name == "forgejo":
            params["sort"] = "latest"
        issues = self.http.get_json(f"{self.repo_path}/issues", params=params) or []
        return max((int(i["number"]) for i in issues), default=0)

    def _read_number(self, number: int) -> claim.Seen | None:
        """Issue ``number`` read directly (consistent), or None when there is none. A pull
        request shares the numbers and is answered too: it is never the ticket."""
        path = f"{self.repo_path}/issues/{number}"
        resp = self.http.request("GET", path, allow=(404,))
        if resp.status_code == 404:
            return None
        issue = self.http.decode(resp, "GET", path) or {}
        marker = _ATTEMPT.search(issue.get("body") or "")
        return claim.Seen(
            number=number,
            ref=self._ref(issue),
            labels=frozenset(lab.get("name") for lab in issue.get("labels") or []),
            attempt=marker.group(1) if marker else None,
            is_ticket=not issue.get("pull_request"),
        )

    def create(self, spec: TicketSpec) -> TicketRef:
        self.last_warnings = []
        label = spec.unique_label.strip()
        with self.http.budget():
            mark = self._newest()
            found = claim.tail(self._read_number, label, mark, service=self.name)
            if found:
                log.info(f"{self.name} issue found by its number; not created again", key=found[0].ref.key)
                return ExistingTicket(**asdict(found[0].ref))
            attempt = uuid.uuid4().hex
            payload: dict[str, Any] = {
                # Titles are not Markdown, but the forges find references and mentions in them.
                "title": inert(" ".join(spec.title.split()))[:255],
                "body": f"{to_markdown(spec.body)}\n\n<!-- rollback-pm attempt={attempt} -->\n",
                "labels": self.label_ids([*spec.labels, label]),
            }
            if spec.due_date:
                payload["due_date"] = due_date_value(spec.due_date)
            if self.assignees:
                payload["assignees"] = self.assignees
            mine, ours = self._create_issue(payload, label, mark, attempt)
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
            log.info(f"{self.name} issue created", key=ticket.key)
            for path in spec.attachments:
                try:
                    self.attach(ticket, Path(path))
                except TrackerError as exc:
                    self._warn(f"{ticket.key}: {Path(path).name} was not attached: {exc}")
        return ticket

    def _create_issue(self, payload: dict[str, Any], label: str, mark: int, attempt: str) -> tuple[claim.Seen, bool]:
        """(the issue, whether this call made it): a lost answer is settled by reading issues
        by number (never by the lagging list) before the create is ever sent again."""
        path = f"{self.repo_path}/issues"

        def landed() -> tuple[claim.Seen, bool] | None:
            return claim.after_lost_answer(self._read_number, label, mark, attempt, service=self.name)

        resp = self.http.request("POST", path, json=payload, allow=(422,), confirm=landed)
        if not isinstance(resp, Confirmed) and resp.status_code == 422 and "assignees" in payload:
            self._warn(
                f"{self.repo}: assignees {', '.join(payload['assignees'])} were refused ({error_text(resp)}); "
                "created the issue unassigned (check the assignees and follow-up owners settings)"
            )
            payload = {k: v for k, v in payload.items() if k != "assignees"}
            resp = self.http.request("POST", path, json=payload, allow=(422,), confirm=landed)
        if isinstance(resp, Confirmed):
            seen, ours = resp.value
            return seen, ours
        if resp.status_code == 422:
            raise TrackerError(mask(f"{self.name} refused to create the issue in {self.repo}: {error_text(resp)}"))
        issue = self.http.decode(resp, "POST", path)
        labels = frozenset(lab.get("name") for lab in issue.get("labels") or []) or frozenset([label])
        return claim.Seen(int(issue["number"]), self._ref(issue), labels, attempt), True

    # -- a duplicate from a race

    def _retire(self, loser: claim.Seen, winner: claim.Seen, label: str) -> None:
        """Our issue lost the race to ``winner``: marked, unlabelled, referenced, closed. Each
        step that fails is a warning; the winner is the ticket either way."""
        issue_path = f"{self.repo_path}/issues/{loser.number}"
        # Our own words, not a Doc: "#n" must stay a reference (the forges link both issues).
        text = (
            f"Duplicate of #{winner.number}: rollback-pm opened both for the same rollback at the same moment "
            "(two runners, or a create whose answer was lost), and the lower number wins. "
            f"This one is closed; follow #{winner.number}."
        )

        def unlabel() -> None:
            current = self.http.get_json(issue_path) or {}
            for lab in current.get("labels") or []:
                if lab.get("name") == label:
                    self.http.request("DELETE", f"{issue_path}/labels/{int(lab['id'])}", allow=(404,))

        def commented() -> bool | None:
            comments = self.http.get_json(f"{issue_path}/comments") or []
            return True if any((c.get("body") or "").strip() == text for c in comments) else None

        steps: list[tuple[str, Callable[[], object]]] = [
            ("labelled", lambda: self.add_label(loser.ref, claim.DUPLICATE_LABEL)),
            ("unlabelled", unlabel),
            (
                "commented",
                lambda: self.http.request("POST", f"{issue_path}/comments", json={"body": text}, confirm=commented),
            ),
            ("closed", lambda: self.http.request("PATCH", issue_path, json={"state": "closed"}, idempotent=True)),
        ]
        for done, step in steps:
            try:
                step()
            except TrackerError as exc:
                self._warn(f"{loser.ref.key}, a duplicate of {winner.ref.key}, was not {done}: {exc}; do it by hand")

    def comment(self, ticket: TicketRef, text: Doc | str) -> None:
        path = f"{self._issue_path(ticket)}/comments"
        text = to_markdown(plain_doc(text))

        def posted() -> bool | None:
            comments = self.http.get_json(path) or []
            return True if any((c.get("body") or "").strip() == text.strip() for c in comments) else None

        self.http.request("POST", path, json={"body": text}, confirm=posted, not_found_hint=self._ticket_hint(ticket))

    def add_label(self, ticket: TicketRef, label: str) -> None:
        with self.http.budget():
            ids = self.label_ids([label])
            # Adding labels is naturally idempotent: safe to resend.
            self.http.request(
                "POST",
                f"{self._issue_path(ticket)}/labels",
                json={"labels": ids},
                idempotent=True,
                not_found_hint=self._ticket_hint(ticket),
            )

    def attach(self, ticket: TicketRef, path: Path) -> None:
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise TrackerError(f"cannot attach {path}: {exc.strerror}") from None
        assets = f"{self._issue_path(ticket)}/assets"

        def uploaded() -> bool | None:
            found = any(
                a.get("name") == path.name and a.get("size") == len(data) for a in self.http.get_json(assets) or []
            )
            return True if found else None

        resp = self.http.request(
            "POST",
            assets,
            params={"name": path.name},
            files={"attachment": (path.name, data, "application/octet-stream")},
            confirm=uploaded,
            allow=(400, 413, 422),
            not_found_hint=self._ticket_hint(ticket),
        )
        if not isinstance(resp, Confirmed) and resp.status_code >= 400:
            raise TrackerError(
                mask(f"{self.name} refused the attachment {path.name} ({resp.status_code}): {error_text(resp)}")
            )

    def status(self, ticket: TicketRef) -> str:
        issue = self.http.get_json(self._issue_path(ticket), not_found_hint=self._ticket_hint(ticket)) or {}
        return "resolved" if issue.get("state") == "closed" else "open"

    # -- follow-ups

    def create_followup(self, spec: FollowupSpec) -> TicketRef:
        """An issue whose body references the incident's issue (the forge cross-references
        it), and a comment on the incident's issue naming the new one."""
        self.last_warnings = []
        label = spec.unique_label.strip()
        with self.http.budget():
            payload: dict[str, Any] = {
                "title": inert(" ".join(spec.title.split()))[:255],
                "body": to_markdown(spec.body),
                "labels": self.label_ids([*spec.labels, label]),
            }
            if spec.due_date:
                payload["due_date"] = due_date_value(spec.due_date)
            if spec.assignee:
                payload["assignees"] = [spec.assignee]
            ticket = self._create_followup_issue(payload, label)
            log.info(f"{self.name} follow-up created", key=ticket.key, parent=spec.parent.key)
            note = Doc().paragraph("Follow-up opened: ", issue_ref(self.reference(ticket)), " ", text(spec.title))
            try:
                self.relate(spec.parent, ticket, note)
            except TrackerError as exc:
                self._warn(f"{spec.parent.key}: the follow-up {ticket.key} was not mentioned there: {exc}")
        return ticket

    def _create_followup_issue(self, payload: dict[str, Any], label: str) -> TicketRef:
        """A follow-up's create: a lost answer is confirmed by its own row label."""
        path = f"{self.repo_path}/issues"
        resp = self.http.request("POST", path, json=payload, allow=(422,), confirm=lambda: self.find(label))
        if isinstance(resp, Confirmed):
            return resp.value
        if resp.status_code == 422 and "assignees" in payload:
            self._warn(
                f"{self.repo}: assignees {', '.join(payload['assignees'])} were refused ({error_text(resp)}); "
                "created the issue unassigned (check the assignees and follow-up owners settings)"
            )
            payload = {k: v for k, v in payload.items() if k != "assignees"}
            resp = self.http.request("POST", path, json=payload, allow=(422,), confirm=lambda: self.find(label))
            if isinstance(resp, Confirmed):
                return resp.value
        if resp.status_code == 422:
            raise TrackerError(mask(f"{self.name} refused to create the issue in {self.repo}: {error_text(resp)}"))
        return self._ref(self.http.decode(resp, "POST", path))

    def update_followup(self, ticket: TicketRef, *, title: str, due_date: date | None, assignee: str | None) -> None:
        payload: dict[str, Any] = {"title": inert(" ".join(title.split()))[:255]}
        if due_date:
            payload["due_date"] = due_date_value(due_date)
        else:
            payload["unset_due_date"] = True
        if assignee:
            payload["assignees"] = [assignee]
        self.last_warnings = []
        path, hint = self._issue_path(ticket), self._ticket_hint(ticket)
        with self.http.budget():
            resp = self.http.request("PATCH", path, json=payload, idempotent=True, allow=(422,), not_found_hint=hint)
            if resp.status_code == 422 and "assignees" in payload:
                self._warn(
                    f"{ticket.key}: assignee {assignee} was refused ({error_text(resp)}); "
                    "updated the follow-up without it (check the follow-up owners setting)"
                )
                payload.pop("assignees")
                resp = self.http.request(
                    "PATCH", path, json=payload, idempotent=True, allow=(422,), not_found_hint=hint
                )
            if resp.status_code == 422:
                raise TrackerError(mask(f"{self.name} refused to update {ticket.key}: {error_text(resp)}"))

    def reference(self, ticket: TicketRef) -> str:
        """How an issue body names ``ticket`` so the forge links it: ``#12`` in this
        repository, ``owner/name#12`` in another."""
        repo, _, number = ticket.key.rpartition("#")
        return f"#{number}" if repo == self.repo else ticket.key

    def relate(self, ticket: TicketRef, other: TicketRef, note: Doc) -> None:
        """The forges have no "relates to" link: a comment on ``ticket`` that references
        ``other`` makes the forge show the cross-reference on both issues."""
        self.comment(ticket, note)

    def find_user(self, owner: str) -> str | None:
        """The one user who may be assigned issues in the repository whose login, full name
        or email is ``owner`` (a leading @ dropped, case aside); None otherwise."""
        wanted = owner.strip().lstrip("@").strip().casefold()
        if not wanted:
            return None
        if self._assignable is None:
            self._assignable = [
                u for u in self.http.get_json(f"{self.repo_path}/assignees") or [] if isinstance(u, dict)
            ]
        matches = {
            str(u["login"])
            for u in self._assignable
            if u.get("login")
            and wanted
            in (
                str(u.get("login") or "").casefold(),
                str(u.get("full_name") or "").casefold(),
                str(u.get("email") or "").casefold(),
            )
        }
        return matches.pop() if len(matches) == 1 else None

    # -- --open-pr

    def open_pr(self, branch: str, path: str, content: str, title: str, body: str) -> str:
        """Commit ``content`` to ``path`` on ``branch`` (made from the default branch) and
        open a pull request; returns its URL. A re-run finds the branch, file and pull request
        it made before and never overwrites edits already pushed to the branch."""
        with self.http.budget():
            repo = self.http.get_json(self.repo_path) or {}
            base = repo.get("default_branch") or "main"
            pr_path = f"{self.repo_path}/pulls/{segment(base)}/{segment(branch, '/')}"
            existing = self.http.request("GET", pr_path, allow=(404,))
            if existing.status_code == 200:
                return (json_of(existing) or {}).get("html_url", "")
            file_path = f"{self.repo_path}/contents/{segment(path.lstrip('/'), '/')}"
            encoded = base64.b64encode(content.encode("utf-8")).decode()
            branch_exists = (
                self.http.request("GET", f"{self.repo_path}/branches/{segment(branch, '/')}", allow=(404,)).status_code
                == 200
            )

            def committed() -> bool | None:
                resp = self.http.request("GET", file_path, params={"ref": branch}, allow=(404,))
                return True if resp.status_code == 200 else None

            if not branch_exists:
                self.http.request(
                    "POST",
                    file_path,
                    confirm=committed,
                    json={"content": encoded, "message": title, "branch": base, "new_branch": branch},
                )
            elif committed() is None:
                self.http.request(
                    "POST", file_path, confirm=committed, json={"content": encoded, "message": title, "branch": branch}
                )

            def opened() -> dict[str, Any] | None:
                resp = self.http.request("GET", pr_path, allow=(404,))
                return json_of(resp) if resp.status_code == 200 else None

            resp = self.http.request(
                "POST",
                f"{self.repo_path}/pulls",
                allow=(409,),
                confirm=opened,
                json={"base": base, "head": branch, "title": title, "body": body},
            )
            if isinstance(resp, Confirmed):
                return resp.value.get("html_url", "")
            if resp.status_code == 409:
                found = opened()
                if found is None:
                    raise TrackerError(
                        mask(f"{self.name} refused the pull request {branch} -> {base}: {error_text(resp)}")
                    )
                return found.get("html_url", "")
            return (json_of(resp) or {}).get("html_url", "")
