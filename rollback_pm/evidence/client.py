"""The Docker Engine connection, with errors that say how to fix it."""

from __future__ import annotations

import docker

from rollback_pm.errors import DockerUnavailable


def docker_client(base_url: str | None = None, timeout: float = 30.0) -> docker.APIClient:
    """A low-level APIClient (version negotiated); raises DockerUnavailable if nothing answers."""
    try:
        if base_url:
            client = docker.APIClient(base_url=base_url, version="auto", timeout=timeout)
        else:
            kwargs = docker.utils.kwargs_from_env()
            client = docker.APIClient(version="auto", timeout=timeout, **kwargs)
        client.ping()
        return client
    except Exception as exc:  # the SDK raises many kinds: socket, HTTP, TLS
        where = base_url or "the local socket (DOCKER_HOST unset)"
        raise DockerUnavailable(
            f"Docker engine not reachable at {where}: {type(exc).__name__}. Start dockerd, or set "
            "DOCKER_HOST=unix:///path/to/docker.sock (or tcp://host:2375) / --docker-host, and check "
            "that this user may use the socket (docker group)"
        ) from None
