"""Every tracker backend behind one small adapter: what a test needs to see of a ticket.

Jira Cloud (v3) and Data Center (v2), Gitea and Forgejo run as the spec-validated loopback
fakes (a request the API description does not allow fails the test at teardown); the file
tracker is the real one on a temp dir.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rollback_pm.trackers.base import Tracker
from rollback_pm.trackers.file import FileTracker
from rollback_pm.trackers.gitea import GiteaTracker
from rollback_pm.trackers.jira import JiraTracker
from rollback_pm.trackers.markup import adf_text
from tests.support.fake_gitea import FakeGitea
from tests.support.fake_jira import FakeJira


class Side:
    """A backend and how to look at what it holds."""

    name: str
    tracker: Tracker
    ana: str  # the tracker user "@ana" is
    zed: str | None = None  # whom "Zed Unknown" (no such user on a server) is assigned to

    def issues(self) -> list[str]: ...
    def labels(self, key: str) -> list[str]: ...
    def due(self, key: str) -> str | None: ...
    def summary(self, key: str) -> str: ...
    def assignee(self, key: str) -> str | None: ...
    def linked(self, key: str, other: str) -> bool: ...
    def close(self, key: str) -> None: ...
    def comments(self, key: str) -> list[str]: ...


class JiraSide(Side):
    def __init__(self, fake: FakeJira) -> None:
        self.fake, self.name = fake, f"jira-v{fake.api_version}"
        email = fake.email if fake.api_version == 3 else None
        self.tracker = JiraTracker(fake.url, fake.project, fake.token, email=email, api_version=fake.api_version)
        self.ana = "5b10ac8d82e05b22cc7d4ef5" if fake.api_version == 3 else "ana"

    def issues(self) -> list[str]:
        return sorted(self.fake.issues)

    def labels(self, key: str) -> list[str]:
        return self.fake.issue(key)["fields"]["labels"]

    def due(self, key: str) -> str | None:
        return self.fake.issue(key)["fields"]["duedate"]

    def summary(self, key: str) -> str:
        return self.fake.issue(key)["fields"]["summary"]

    def assignee(self, key: str) -> str | None:
        user = self.fake.issue(key)["fields"].get("assignee")
        return (user.get("accountId") or user.get("name")) if user else None

    def linked(self, key: str, other: str) -> bool:
        return ("Relates", other) in self.fake.linked(key)

    def close(self, key: str) -> None:
        self.fake.set_status(key, "Done")

    def comments(self, key: str) -> list[str]:
        bodies = [c["body"] for c in self.fake.issue(key)["comments"]]
        return [adf_text(b) if isinstance(b, dict) else b for b in bodies]


class ForgeSide(Side):
    def __init__(self, fake: FakeGitea) -> None:
        self.fake, self.name = fake, fake.kind
        self.tracker = GiteaTracker(fake.url, fake.repo, fake.token, kind=fake.kind)
        self.ana = "ana"

    @staticmethod
    def number(key: str) -> int:
        return int(key.rsplit("#", 1)[1])

    def issues(self) -> list[str]:
        return [f"{self.fake.repo}#{n}" for n in sorted(self.fake.issues)]

    def labels(self, key: str) -> list[str]:
        return self.fake.label_names(self.number(key))

    def due(self, key: str) -> str | None:
        due = self.fake.issue(self.number(key))["due_date"]
        return due[:10] if due else None

    def summary(self, key: str) -> str:
        return self.fake.issue(self.number(key))["title"]

    def assignee(self, key: str) -> str | None:
        assignees = self.fake.issue(self.number(key))["assignees"]
        return assignees[0] if assignees else None

    def linked(self, key: str, other: str) -> bool:
        """The forge's cross-references, both ways: the follow-up names the incident's issue and back."""
        a, b = self.number(key), self.number(other)
        return b in self.fake.references(a) and a in self.fake.references(b)

    def close(self, key: str) -> None:
        self.fake.close_issue(self.number(key))

    def comments(self, key: str) -> list[str]:
        return [c["body"] for c in self.fake.issue(self.number(key))["comments"]]


class FileSide(Side):
    def __init__(self, state: Path) -> None:
        self.name, self.tracker, self.ana = "file", FileTracker(state), "ana"
        self.zed = "Zed Unknown"  # the file tracker has no user list: owners are taken as written
        self.dir = state / "tickets"

    def _data(self, key: str) -> dict[str, Any]:
        path = self.dir / ("followups" if key.startswith("FU-") else "") / f"{key}.json"
        return json.loads(path.read_text())

    def issues(self) -> list[str]:
        return sorted(p.stem for p in [*self.dir.glob("*.json"), *self.dir.glob("followups/*.json")])

    def labels(self, key: str) -> list[str]:
        return self._data(key)["labels"]

    def due(self, key: str) -> str | None:
        return self._data(key).get("due_date")

    def summary(self, key: str) -> str:
        return self._data(key)["title"]

    def assignee(self, key: str) -> str | None:
        return self._data(key).get("assignee")

    def linked(self, key: str, other: str) -> bool:
        return other in self._data(key).get("links", []) and key in self._data(other).get("links", [])

    def close(self, key: str) -> None:
        path = self.dir / ("followups" if key.startswith("FU-") else "") / f"{key}.json"
        data = json.loads(path.read_text())
        data["status"] = "resolved"
        path.write_text(json.dumps(data))

    def comments(self, key: str) -> list[str]:
        return [c["body"] for c in self._data(key)["comments"]]


@pytest.fixture(params=["jira-v3", "jira-v2", "gitea", "forgejo", "file"])
def side(request, tmp_path):
    if request.param == "file":
        yield FileSide(tmp_path / "state")
        return
    fake = (
        FakeJira(api_version=int(request.param[-1]))
        if request.param.startswith("jira")
        else FakeGitea(kind=request.param)
    )
    with fake:
        yield JiraSide(fake) if isinstance(fake, FakeJira) else ForgeSide(fake)
        assert fake.failures == [], "requests broke the API spec:\n" + "\n".join(fake.failures)
