"""rollback_pm.memory: glibc told to hand big freed buffers back; a no-op without glibc."""

from __future__ import annotations

import ctypes
import sys

import pytest

from rollback_pm import memory


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


@pytest.fixture
def fresh_libc():
    memory._glibc.cache_clear()
    yield
    memory._glibc.cache_clear()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc is a Linux matter")
def test_big_buffers_leave_the_process_when_freed(fresh_libc):
    assert memory.bound_heap() is True
    before = _rss_kib()
    blocks = [b"x" * (4 << 20) for _ in range(8)]  # every page written
    assert _rss_kib() - before >= 30 << 10
    del blocks  # each had a mapping of its own: gone at once, no trim needed
    assert _rss_kib() - before < 4 << 10
    memory.give_back()


def test_without_glibc_nothing_is_changed(monkeypatch, fresh_libc):
    def no_glibc(name: str, *args: object, **kwargs: object) -> None:
        raise OSError(f"{name}: cannot open shared object file")

    monkeypatch.setattr(ctypes, "CDLL", no_glibc)
    assert memory.bound_heap() is False
    memory.give_back()  # does nothing, raises nothing
