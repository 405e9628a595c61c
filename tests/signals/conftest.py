"""Fixtures for the signal tests: the Debian image with real software, and its containers."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import docker
import pytest

from tests.support.debian_image import debian_image  # noqa: F401  (a session fixture, used by the docker tests)
from tests.support.docker_images import TEST_LABEL


class Failing:
    """Real containers of the Debian image, each failing its own way; removed at the end."""

    def __init__(self, image: str) -> None:
        self.client = docker.APIClient(version="auto", timeout=120)
        self.image = image
        self.prefix = f"rpm-sig-{uuid.uuid4().hex[:6]}-"
        self.ids: dict[str, str] = {}

    def start(self, name: str, script: str, *, user: str = "", healthcheck: dict | None = None, **host: Any) -> str:
        host_config = self.client.create_host_config(network_mode="none", **host)
        container = self.client.create_container(
            self.image,
            command=["sh", "-c", script],
            name=self.prefix + name,
            user=user,
            labels={TEST_LABEL: self.prefix.rstrip("-")},
            host_config=host_config,
            healthcheck=healthcheck,
        )
        self.ids[name] = container["Id"]
        self.client.start(container["Id"])
        return container["Id"]

    def wait_until(self, name: str, done, what: str, timeout: float = 90.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            doc = self.client.inspect_container(self.ids[name])
            if done(doc):
                return doc
            if time.monotonic() > deadline:
                raise AssertionError(f"{name} never {what}: state {doc['State']}, restarts {doc['RestartCount']}")
            time.sleep(0.2)

    def cleanup(self) -> None:
        for ident in self.ids.values():
            try:
                self.client.remove_container(ident, force=True)
            except docker.errors.NotFound:
                pass
        self.client.close()


@pytest.fixture(scope="module")
def failing(debian_image: str) -> Iterator[Failing]:  # noqa: F811
    containers = Failing(debian_image)
    try:
        yield containers
    finally:
        containers.cleanup()
