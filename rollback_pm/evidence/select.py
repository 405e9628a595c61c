"""Which containers to collect: one list call, then exact matching in Python."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from rollback_pm.errors import NoContainersMatched, UsageError

COMPOSE_PROJECT = "com.docker.compose.project"


@dataclass
class Selection:
    labels: list[str] = field(default_factory=list)  # "K=V" (or "K" for presence), ANDed
    name_regex: str | None = None  # anchored full-name match
    compose_project: str | None = None
    containers: list[str] = field(default_factory=list)  # ids (or prefixes) or names
    all_states: bool = True

    def describe(self) -> str:
        parts = [f"label {label}" for label in self.labels]
        if self.name_regex:
            parts.append(f"name matching {self.name_regex!r}")
        if self.compose_project:
            parts.append(f"compose project {self.compose_project}")
        parts += [f"container {c}" for c in self.containers]
        scope = "" if self.all_states else " (running only)"
        return (", ".join(parts) or "everything") + scope

    def filters(self) -> dict[str, Any]:
        """Docker-side filters: labels only (exact); names are matched here, anchored."""
        labels = list(self.labels)
        if self.compose_project:
            labels.append(f"{COMPOSE_PROJECT}={self.compose_project}")
        return {"label": labels} if labels else {}


def _name(container: dict[str, Any]) -> str:
    names = container.get("Names") or [""]
    return names[0].lstrip("/")


def select_containers(client: Any, selection: Selection) -> list[dict[str, Any]]:
    """The containers matching every criterion, oldest first (the list call's summaries)."""
    for label in selection.labels:
        if not label or label.startswith("="):
            raise UsageError(f"--label {label!r} is not K=V")
    try:
        pattern = re.compile(selection.name_regex) if selection.name_regex else None
    except re.error as exc:
        raise UsageError(f"--name {selection.name_regex!r} is not a valid regex: {exc}") from None
    found = client.containers(all=selection.all_states, filters=selection.filters())
    chosen = []
    for c in found:
        name = _name(c)
        if pattern and not pattern.fullmatch(name):
            continue
        if selection.containers and not any(
            want == name or (len(want) >= 4 and c["Id"].startswith(want)) for want in selection.containers
        ):
            continue
        chosen.append(c)
    if not chosen:
        raise NoContainersMatched(
            f"no container matches {selection.describe()} ({len(found)} container(s) looked at); "
            "check `docker ps -a` and the selection flags (--label, --name, --compose-project, --container)"
        )
    return sorted(chosen, key=lambda c: (c.get("Created", 0), _name(c)))
