"""rollback_pm.memory: glibc told to hand big freed buffers back; a no-op without glibc."""

from __future__ import annotations

import ctypes
import subprocess
import sys
from pathlib import Path

import pytest

from rollback_pm import memory

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def fresh_libc():
    memory._glibc.cache_clear()
    yield
    memory._glibc.cache_clear()


FRAGMENTED = """
import sys
from rollback_pm import memory

def rss_kib():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))

if sys.argv[1] == "bound":
    assert memory.bound_heap()
warm = bytearray(4 << 20)
del warm  # glibc's dynamic mmap threshold rises to 4 MiB here
before = rss_kib()
blocks, pins = [], []
for _ in range(8):
    blocks.append(b"x" * (4 << 20))  # every page written
    pins.append(bytearray(2048))  # a small live allocation after each block: the heap cannot shrink
del blocks
print(rss_kib() - before)
"""


def _kept_kib(mode: str) -> int:
    # a process of its own: the thresholds are process-wide and this one's are already moved
    run = subprocess.run([sys.executable, "-c", FRAGMENTED, mode], capture_output=True, text=True, check=True, cwd=ROOT)
    return int(run.stdout)


@pytest.mark.skipif(memory._glibc() is None, reason="glibc's malloc only: elsewhere bound_heap is a no-op")
def test_big_buffers_leave_the_process_when_freed_even_between_live_small_ones():
    # the hook's pattern: 4 MiB blocks freed while small allocations made after them live on
    assert _kept_kib("default") >= 24 << 10  # glibc's default keeps them resident
    assert _kept_kib("bound") < 4 << 10


def test_without_glibc_nothing_is_changed(monkeypatch, fresh_libc):
    def no_glibc(name: str, *args: object, **kwargs: object) -> None:
        raise OSError(f"{name}: cannot open shared object file")

    monkeypatch.setattr(ctypes, "CDLL", no_glibc)
    assert memory.bound_heap() is False
    memory.give_back()  # does nothing, raises nothing
