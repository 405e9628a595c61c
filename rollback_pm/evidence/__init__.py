"""Evidence: select containers, stream their logs, inspect, redact, write the bundle."""

from rollback_pm.evidence.client import docker_client
from rollback_pm.evidence.collect import BundleResult, CollectOptions, ContainerResult, collect
from rollback_pm.evidence.select import Selection, select_containers

__all__ = ["BundleResult", "CollectOptions", "ContainerResult", "Selection", "collect", "docker_client",
           "select_containers"]
