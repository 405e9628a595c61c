"""One read of what the manager knows about the selected services, shared by evidence and facts.

Reading it once means the bundle's documents and the incident's facts describe the same
moment. A snapshot holds, per service: its document (Spec, PreviousSpec, UpdateStatus), every
task the manager still keeps for it (the running ones and the history, failed tasks of the
bad version included: ``docker service ps --no-trunc``), the nodes, and the images the
specs name, as this manager has them (None when it does not).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import docker

from rollback_pm.swarm import api
from rollback_pm.swarm.select import service_name, service_stack

# Task states that ended badly: their logs come first, the deadline permitting.
FAILED_STATES = ("failed", "rejected", "orphaned")


@dataclass
class ServiceSnapshot:
    service: dict[str, Any]
    tasks: list[dict[str, Any]]  # newest first
    nodes: dict[str, dict[str, Any]]  # node id -> node document (shared by the snapshots)
    images: dict[str, dict[str, Any] | None] = field(default_factory=dict)  # image reference -> inspect

    @property
    def id(self) -> str:
        return str(self.service.get("ID", ""))

    @property
    def name(self) -> str:
        return service_name(self.service)

    @property
    def stack(self) -> str | None:
        return service_stack(self.service)

    def hostname(self, node_id: str) -> str:
        node = self.nodes.get(node_id) or {}
        return str((node.get("Description") or {}).get("Hostname") or node_id[:12] or "unassigned")

    def node_down(self, node_id: str) -> bool:
        node = self.nodes.get(node_id)
        return node is not None and ((node.get("Status") or {}).get("State") or "") == "down"


def task_label(snapshot: ServiceSnapshot, task: dict[str, Any]) -> str:
    """``<service>.<slot>.<task id>@<node>``: the name Swarm gives the task's container, and its node.

    A global service's tasks have no slot; Swarm puts the node id there, and so do we.
    """
    slot = task.get("Slot") or task.get("NodeID") or "0"
    return f"{snapshot.name}.{slot}.{task.get('ID', '')}@{snapshot.hostname(str(task.get('NodeID') or ''))}"


def task_slot(snapshot: ServiceSnapshot, task: dict[str, Any]) -> str:
    """``<service>.<slot>`` as `docker service ps` shows it."""
    return f"{snapshot.name}.{task.get('Slot') or str(task.get('NodeID') or '')[:12] or '?'}"


def task_state(task: dict[str, Any]) -> str:
    return str((task.get("Status") or {}).get("State") or "")


def task_image(task: dict[str, Any]) -> str:
    return str(((task.get("Spec") or {}).get("ContainerSpec") or {}).get("Image") or "")


def container_id(task: dict[str, Any]) -> str:
    return str(((task.get("Status") or {}).get("ContainerStatus") or {}).get("ContainerID") or "")


def spec_image(spec: dict[str, Any] | None) -> str:
    return str((((spec or {}).get("TaskTemplate") or {}).get("ContainerSpec") or {}).get("Image") or "")


def _newest_first(task: dict[str, Any]) -> str:
    return str((task.get("Status") or {}).get("Timestamp") or task.get("CreatedAt") or "")


def take(client: docker.APIClient, services: list[dict[str, Any]], *, timeout: float) -> list[ServiceSnapshot]:
    """Tasks, nodes and images for each service document (from ``select.resolve_services``)."""
    nodes = api.list_nodes(client, timeout=timeout)
    snapshots = []
    images: dict[str, dict[str, Any] | None] = {}
    for service in services:
        tasks = sorted(api.list_tasks(client, str(service["ID"]), timeout=timeout), key=_newest_first, reverse=True)
        refs = [spec_image(service.get("Spec")), spec_image(service.get("PreviousSpec"))]
        refs += [task_image(t) for t in tasks]
        for ref in dict.fromkeys(r for r in refs if r):
            if ref not in images:
                images[ref] = api.inspect_image(client, ref, timeout=timeout)
        snapshot = ServiceSnapshot(service=service, tasks=tasks, nodes=nodes)
        snapshot.images = {ref: images[ref] for ref in refs if ref}
        snapshots.append(snapshot)
    return snapshots
