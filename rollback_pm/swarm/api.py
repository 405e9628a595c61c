"""The Swarm half of the Engine API, as a manager answers it: services, tasks, nodes, events.

Every call is bounded by a timeout and turns the SDK's and requests' exceptions into
``DockerUnavailable`` (the engine does not answer), ``NotAManager`` (it answers, but is no
Swarm manager: only managers know services and tasks) or ``SwarmApiError`` (a refusal).
A service or task that vanished between two calls is ``Gone``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import docker
import requests

from rollback_pm.errors import DockerUnavailable, UsageError
from rollback_pm.evidence.client import engine_location, since_param

STACK_LABEL = "com.docker.stack.namespace"


class NotAManager(UsageError):
    """The engine is not a Swarm manager (exit 2: point DOCKER_HOST at a manager)."""


class SwarmApiError(Exception):
    """The manager refused or failed one call (the message is safe to record)."""


class Gone(Exception):
    """The service or task no longer exists."""


@contextmanager
def _errors(client: docker.APIClient, what: str) -> Iterator[None]:
    try:
        yield
    except docker.errors.NotFound:
        raise Gone(what) from None
    except docker.errors.APIError as exc:
        explanation = str(exc.explanation or exc)
        if "not a swarm manager" in explanation.lower():
            raise NotAManager(_not_manager_text(client, explanation)) from None
        raise SwarmApiError(f"{what}: {explanation}") from None
    except requests.exceptions.Timeout:
        raise DockerUnavailable(
            f"Docker engine at {engine_location(client)} did not answer ({what}); check that dockerd is healthy"
        ) from None
    except requests.exceptions.ConnectionError as exc:
        raise DockerUnavailable(
            f"Docker engine at {engine_location(client)} not reachable ({what}): {exc.__class__.__name__}. "
            "Start dockerd or set DOCKER_HOST to a Swarm manager."
        ) from None


def _not_manager_text(client: docker.APIClient, reason: str) -> str:
    return (
        f"the Docker engine at {engine_location(client)} is not a Swarm manager ({reason.strip().rstrip('.')}). "
        "Services, tasks and their logs are only known to managers: run rollback-pm on a manager "
        "or set DOCKER_HOST (or --docker-host) to one (`docker node ls` lists them)."
    )


def _get(client: docker.APIClient, path: str, *args: str, timeout: float, params: dict[str, Any] | None = None) -> Any:
    response = client._get(client._url(path, *args), params=params, timeout=max(0.05, timeout))
    return client._result(response, json=True)


def require_manager(client: docker.APIClient, *, timeout: float = 30.0) -> dict[str, Any]:
    """The engine's ``Swarm`` info block; NotAManager when it is not an active manager."""
    with _errors(client, "engine info"):
        info = _get(client, "/info", timeout=timeout)
    swarm = info.get("Swarm") or {}
    state = swarm.get("LocalNodeState") or "inactive"
    if state != "active":
        raise NotAManager(_not_manager_text(client, f"its Swarm state is {state!r}"))
    if not swarm.get("ControlAvailable"):
        raise NotAManager(_not_manager_text(client, "it is a worker node"))
    return dict(swarm)


def list_services(client: docker.APIClient, *, timeout: float, labels: list[str] | None = None) -> list[dict[str, Any]]:
    params: dict[str, Any] = {}
    if labels:
        params["filters"] = json.dumps({"label": labels})
    with _errors(client, "listing services"):
        return list(_get(client, "/services", timeout=timeout, params=params))


def inspect_service(client: docker.APIClient, ident: str, *, timeout: float) -> dict[str, Any]:
    with _errors(client, f"service {ident}"):
        return dict(_get(client, "/services/{0}", ident, timeout=timeout))


def list_tasks(client: docker.APIClient, service_id: str, *, timeout: float) -> list[dict[str, Any]]:
    """Every task the manager still keeps for the service: running ones and the history."""
    params = {"filters": json.dumps({"service": [service_id]})}
    with _errors(client, f"tasks of service {service_id}"):
        tasks = list(_get(client, "/tasks", timeout=timeout, params=params))
    # The filter also matches services whose name starts with the id's text: keep exact ones.
    return [t for t in tasks if t.get("ServiceID") == service_id]


def list_nodes(client: docker.APIClient, *, timeout: float) -> dict[str, dict[str, Any]]:
    """Node id -> node document."""
    with _errors(client, "listing nodes"):
        return {n.get("ID", ""): n for n in _get(client, "/nodes", timeout=timeout)}


def inspect_image(client: docker.APIClient, ref: str, *, timeout: float) -> dict[str, Any] | None:
    """The image as this engine knows it, or None when it does not have it."""
    try:
        with _errors(client, f"image {ref}"):
            return dict(_get(client, "/images/{0}/json", ref, timeout=timeout))
    except (Gone, SwarmApiError):
        return None


def service_events(
    client: docker.APIClient,
    *,
    since: datetime,
    until: datetime,
    service_id: str | None = None,
    timeout: float,
) -> list[dict[str, Any]]:
    """The service events the engine still holds between two past times (a finite read)."""
    filters: dict[str, list[str]] = {"type": ["service"]}
    if service_id:
        filters["service"] = [service_id]
    params = {"since": since_param(since), "until": since_param(until), "filters": json.dumps(filters)}
    with _errors(client, "reading events"):
        response = client._get(client._url("/events"), params=params, timeout=max(0.05, timeout))
        client._raise_for_status(response)
    events = []
    for line in response.text.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            events.append(event)
    return events
