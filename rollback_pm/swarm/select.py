"""Which Swarm services: by name or id (``--swarm-service``), or every service of a stack (``--stack``).

Names are matched exactly here (the engine's ``name`` filter matches prefixes, so ``web``
would also pick ``web-worker``); an id or a unique id prefix works too. With ``--stack``
the engine filters by the stack label, and a ``--swarm-service`` given with it may name
the service with or without the stack's prefix (``api`` or ``shop_api``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import docker

from rollback_pm.errors import NoContainersMatched, UsageError
from rollback_pm.swarm.api import STACK_LABEL, list_services

ID_PREFIX_MIN = 4


class NoServicesMatched(NoContainersMatched):
    """No Swarm service matches the selection (exit 2)."""


@dataclass
class SwarmSelection:
    """Which services to collect. ``services`` and ``stack`` together must both match."""

    services: list[str] = field(default_factory=list)  # names, ids or id prefixes
    stack: str | None = None

    def is_empty(self) -> bool:
        return not (self.services or self.stack)

    def describe(self) -> str:
        parts = [f"service {s}" for s in self.services]
        if self.stack:
            parts.append(f"stack {self.stack}")
        return ", ".join(parts) if parts else "no criteria"

    def to_dict(self) -> dict[str, Any]:
        return {
            "swarm_services": list(self.services),
            "stack": self.stack,
            "description": self.describe(),
        }


def service_name(service: dict[str, Any]) -> str:
    return str((service.get("Spec") or {}).get("Name") or service.get("ID", "")[:12])


def service_stack(service: dict[str, Any]) -> str | None:
    labels = (service.get("Spec") or {}).get("Labels") or {}
    value = labels.get(STACK_LABEL)
    return str(value) if value else None


def _matches(service: dict[str, Any], ref: str, stack: str | None) -> bool:
    name = service_name(service)
    return ref in (name, service.get("ID")) or (stack is not None and name == f"{stack}_{ref}")


def resolve_services(
    client: docker.APIClient, selection: SwarmSelection, *, timeout: float = 30.0
) -> list[dict[str, Any]]:
    """The matching services' documents (as ``docker service inspect`` gives them), sorted by name."""
    if selection.is_empty():
        raise NoServicesMatched("no Swarm service selected: give --swarm-service NAME or --stack NAME")
    for ref in selection.services:
        if not ref.strip():
            raise UsageError("--swarm-service needs a service name or id, not an empty value")
    labels = [f"{STACK_LABEL}={selection.stack}"] if selection.stack else None
    services = list_services(client, timeout=timeout, labels=labels)
    if selection.services:
        chosen: dict[str, dict[str, Any]] = {}
        missing: list[str] = []
        for ref in selection.services:
            exact = [s for s in services if _matches(s, ref, selection.stack)]
            prefix = [s for s in services if len(ref) >= ID_PREFIX_MIN and str(s.get("ID", "")).startswith(ref)]
            found = exact or prefix
            if len(found) > 1 and not exact:
                names = ", ".join(service_name(s) for s in found)
                raise UsageError(f"--swarm-service {ref!r} is ambiguous: it matches {names}; give more of the id")
            if not found:
                missing.append(ref)
            for service in found:
                chosen[service["ID"]] = service
        if missing:
            known = sorted(service_name(s) for s in services)
            shown = ", ".join(known[:20]) + (f" and {len(known) - 20} more" if len(known) > 20 else "")
            where = f" in stack {selection.stack}" if selection.stack else ""
            raise NoServicesMatched(
                f"no Swarm service {', '.join(repr(m) for m in missing)}{where}; "
                f"the manager knows: {shown or 'no services'} (`docker service ls`)"
            )
        services = list(chosen.values())
    if not services:
        raise NoServicesMatched(
            f"stack {selection.stack!r} has no services on this Swarm (`docker stack ls`; "
            f"services carry the label {STACK_LABEL}={selection.stack})"
        )
    return sorted(services, key=service_name)
