"""Container selection: one list call, then exact matching here.

Labels and the compose project go to the engine as label filters (ANDed there). The
name regex is matched here against the whole name (Docker's ``name`` filter is a
substring/regex search, so ``web`` would also pick ``web-worker``), and ``--container``
accepts a full name, a full id or a unique id prefix.
"""

from __future__ import annotations

import re
from typing import Any

import docker

from rollback_pm.errors import NoContainersMatched, UsageError
from rollback_pm.evidence.client import list_containers
from rollback_pm.evidence.types import Selection

COMPOSE_PROJECT_LABEL = "com.docker.compose.project"


def container_name(summary: dict[str, Any]) -> str:
    names = summary.get("Names") or []
    return (names[0] if names else summary.get("Id", "")[:12]).lstrip("/")


def _label_filters(selection: Selection) -> list[str]:
    filters = []
    for label in selection.labels:
        key = label.split("=", 1)[0]
        if not key:
            raise UsageError(f"label selector {label!r} has no key; use --label KEY=VALUE (or KEY)")
        filters.append(label)
    if selection.compose_project:
        filters.append(f"{COMPOSE_PROJECT_LABEL}={selection.compose_project}")
    return filters


def _matches_exact(summary: dict[str, Any], ref: str) -> bool:
    names = [n.lstrip("/") for n in summary.get("Names") or []]
    return ref.lstrip("/") in names or summary.get("Id") == ref


def resolve(
    client: docker.APIClient, selection: Selection, timeout: float = 30.0
) -> tuple[list[dict[str, Any]], list[str]]:
    """(matching container summaries sorted by name, --container references that matched nothing)."""
    if selection.is_empty():
        raise NoContainersMatched(
            "no container selection given: pass --label K=V, --name REGEX, --compose-project P or --container ID "
            "(the hook needs one of them to know which containers failed)"
        )
    try:
        pattern = re.compile(selection.name_regex) if selection.name_regex else None
    except re.error as exc:
        raise UsageError(f"--name {selection.name_regex!r} is not a valid regular expression: {exc}") from None
    summaries = list_containers(
        client, all_states=selection.all_states, label_filters=_label_filters(selection), timeout=timeout
    )
    missing = []
    if selection.containers:
        chosen: set[str] = set()
        for ref in selection.containers:
            exact = [s["Id"] for s in summaries if _matches_exact(s, ref)]
            prefix = [s for s in summaries if len(ref) >= 4 and s.get("Id", "").startswith(ref)]
            if exact:
                chosen.update(exact)
            elif len(prefix) > 1:
                raise UsageError(
                    f"--container {ref!r} is ambiguous: it matches {', '.join(container_name(s) for s in prefix)}; give more of the id"
                )
            elif prefix:
                chosen.add(prefix[0]["Id"])
            else:
                missing.append(ref)
        summaries = [s for s in summaries if s.get("Id") in chosen]
    if pattern is not None:
        summaries = [s for s in summaries if any(pattern.fullmatch(n.lstrip("/")) for n in s.get("Names") or [])]
    summaries.sort(key=container_name)
    if not summaries:
        states = "" if selection.all_states else " among running containers (exited ones were excluded)"
        raise NoContainersMatched(
            f"no container matches {selection.describe()}{states}. "
            "Check with `docker ps -a --format '{{.Names}} {{.Labels}}'`; --name must match the whole name "
            "(use --name 'web.*' for a prefix), labels are KEY=VALUE and all must match."
        )
    return summaries, missing


def select_containers(client: docker.APIClient, selection: Selection) -> list[dict[str, Any]]:
    """The container summaries (``docker ps -a`` entries) matching ``selection``; one list call."""
    return resolve(client, selection)[0]
