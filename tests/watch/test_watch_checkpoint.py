"""The watcher's checkpoint: forward only, shared safely, a damaged file is not fatal."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from rollback_pm.watch.checkpoint import NAME, Checkpoint, ns_of, time_of


def test_a_new_state_dir_has_no_checkpoint(tmp_path: Path) -> None:
    assert Checkpoint.load(tmp_path).since_ns is None


def test_it_moves_forward_only_and_persists(tmp_path: Path) -> None:
    checkpoint = Checkpoint.load(tmp_path)
    checkpoint.advance(1796289368853880967)
    checkpoint.advance(1796289000000000000)  # an older event replayed: no step back
    assert Checkpoint.load(tmp_path).since_ns == 1796289368853880967
    data = json.loads((tmp_path / NAME).read_text())
    assert data["since"] == "2026-12-03T09:16:08Z"
    assert oct((tmp_path / NAME).stat().st_mode & 0o777) == "0o640"


def test_two_watchers_keep_the_later_time(tmp_path: Path) -> None:
    first, second = Checkpoint.load(tmp_path), Checkpoint.load(tmp_path)
    first.advance(2_000)
    second.advance(1_000)  # behind the other one: the file keeps 2000
    assert Checkpoint.load(tmp_path).since_ns == 2_000
    assert second.since_ns == 2_000


def test_a_damaged_checkpoint_is_ignored_not_fatal(tmp_path: Path) -> None:
    for text in ("", "{", '{"since_ns": "soon"}', '{"since_ns": -5}', "[]", '{"since_ns": true}'):
        (tmp_path / NAME).write_text(text)
        assert Checkpoint.load(tmp_path).since_ns is None, text


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(timezone.utc)))
def test_nanoseconds_and_datetimes_agree(when: datetime) -> None:
    assert time_of(ns_of(when)) == when
