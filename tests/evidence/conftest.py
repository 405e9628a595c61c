"""Fixtures for the evidence tests: throwaway containers and a stalling engine proxy."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.docker_images import Containers, SilentEngine, StallingProxy


@pytest.fixture()
def containers(busybox_image: str) -> Iterator[Containers]:
    factory = Containers(busybox_image)
    try:
        yield factory
    finally:
        factory.cleanup()


@pytest.fixture()
def stalling_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StallingProxy]:
    # unix socket paths are limited to ~100 bytes: keep it short
    proxy = StallingProxy(str(tmp_path_factory.mktemp("px") / "d.sock"))
    try:
        yield proxy
    finally:
        proxy.close()


@pytest.fixture()
def silent_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SilentEngine]:
    engine = SilentEngine(str(tmp_path_factory.mktemp("se") / "d.sock"))
    try:
        yield engine
    finally:
        engine.close()
