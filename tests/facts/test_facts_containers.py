"""Container state from real ``docker inspect`` documents.

fixtures/inspect-compose.json was captured from dockerd 20.10 (`docker run --network none`,
a busybox image made with `docker import`, compose labels): factsfx-api-1 exits 3,
factsfx-web-1 fails its HEALTHCHECK ("HTTP/1.1 502 Bad Gateway", exit 1), factsfx-worker-1
exits 1 under `--restart always` (caught while restarting), factsfx-db-1 is healthy,
factsfx-oom-1 ran out of its 8 MiB `--memory` (a real OOM kill, exit 137).
fixtures/image-busybox.json is that image, labelled org.opencontainers.image.revision.
"""

from __future__ import annotations

import copy
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from rollback_pm.facts.containers import container_state, notable_events, summary_lines
from rollback_pm.log import register_secret
from rollback_pm.models import ContainerState, TimelineEvent

FIXTURES = Path(__file__).parent / "fixtures"
REVISION = "3f9c2a1b4d5e6f708192a3b4c5d6e7f8091a2b3c"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


@pytest.fixture()
def docs() -> dict[str, dict]:
    loaded = json.loads((FIXTURES / "inspect-compose.json").read_text())
    return {d["Name"].lstrip("/").removeprefix("factsfx-"): d for d in loaded}


@pytest.fixture()
def image() -> dict:
    return json.loads((FIXTURES / "image-busybox.json").read_text())


def test_exited_container(docs: dict[str, dict], image: dict) -> None:
    assert container_state(docs["api-1"], image) == ContainerState(
        name="factsfx-api-1",
        id="a1a7348d95567c370f9a4372e30380fd49fbfd64e5ea79759f69ae79197808ee",
        image="factsfx-busybox:1",
        status="exited",
        exit_code=3,
        started_at=utc(2026, 11, 23, 19, 53, 19, 660684),
        finished_at=utc(2026, 11, 23, 19, 53, 20, 665879),
        image_revision=REVISION,
        created_at=utc(2026, 11, 23, 19, 53, 19, 395600),
    )


def test_unhealthy_running_container_keeps_probe_log(docs: dict[str, dict], image: dict) -> None:
    state = container_state(docs["web-1"], image)
    assert (state.status, state.exit_code, state.finished_at, state.health_status) == (
        "running",
        None,
        None,
        "unhealthy",
    )  # Docker's zero FinishedAt is None; a running ExitCode means nothing
    assert state.health_log[0] == {
        "Start": "2026-11-23T19:53:27.327Z",
        "End": "2026-11-23T19:53:27.389Z",
        "ExitCode": 1,
        "Output": "HTTP/1.1 502 Bad Gateway",
    }
    assert len(state.health_log) == 5


def test_restarting_container_keeps_its_exit_code(docs: dict[str, dict]) -> None:
    state = container_state(docs["worker-1"])
    assert (state.status, state.exit_code, state.restart_count) == ("restarting", 1, 7)
    assert state.image_revision == REVISION  # from the container's merged labels when no image doc is given


def test_oom_killed_container(docs: dict[str, dict], image: dict) -> None:
    state = container_state(docs["oom-1"], image)
    assert (state.status, state.exit_code, state.oom_killed) == ("exited", 137, True)


def test_health_output_is_masked_and_truncated(docs: dict[str, dict]) -> None:
    doc = copy.deepcopy(docs["web-1"])
    register_secret("s3cr3t-probe-token")
    doc["State"]["Health"]["Log"] = [
        {
            "Start": "2026-11-23T19:53:27.327763094Z",
            "End": "0001-01-01T00:00:00Z",
            "ExitCode": 1,
            "Output": "token=s3cr3t-probe-token " + "x" * 600,
        }
    ]
    probe = container_state(doc).health_log[0]
    assert probe["End"] is None
    assert probe["Output"].startswith("token=*** xxx")
    assert len(probe["Output"]) == 500 and probe["Output"].endswith("…")


def test_created_container_never_ran(docs: dict[str, dict]) -> None:
    doc = copy.deepcopy(docs["api-1"])
    doc["State"].update(
        Status="created", ExitCode=0, StartedAt="0001-01-01T00:00:00Z", FinishedAt="0001-01-01T00:00:00Z"
    )
    state = container_state(doc)
    assert (state.exit_code, state.started_at, state.finished_at) == (None, None, None)


def test_notable_events_from_real_states(docs: dict[str, dict], image: dict) -> None:
    states = [container_state(d, image) for d in docs.values()]
    source = "container state"
    assert notable_events(states) == [
        # a crash loop without its logs: its first run starts at its creation
        TimelineEvent(
            utc(2026, 11, 23, 19, 53, 19, 941479), "factsfx-worker-1 created: the crash loop's first run", source
        ),
        TimelineEvent(utc(2026, 11, 23, 19, 53, 20, 665879), "factsfx-api-1 exited with code 3", source),
        TimelineEvent(
            utc(2026, 11, 23, 19, 53, 20, 836995),
            "factsfx-oom-1 OOM-killed (memory limit 8 MiB, exit code 137)",
            source,
        ),
        # FailingStreak 11 at its 1s interval, 5 kept: the first failure 6 intervals before the first kept
        TimelineEvent(
            utc(2026, 11, 23, 19, 53, 21, 327000),
            'factsfx-web-1 first failing health probe: probe exit 1 "HTTP/1.1 502 Bad Gateway" '
            "(estimated: 11 failing in a row at a 1s interval, Docker keeps the last 5)",
            source,
        ),
        TimelineEvent(
            utc(2026, 11, 23, 19, 53, 28, 89233),
            "factsfx-worker-1 crash loop: last of 8 exits (restarted 7 times), exit code 1",
            source,
        ),
    ]


def test_recovered_container_that_restarted_once(docs: dict[str, dict]) -> None:
    # hand-made from the real worker: it restarted once and now runs
    doc = copy.deepcopy(docs["worker-1"])
    doc["RestartCount"] = 1
    doc["State"].update(
        Status="running", Running=True, Restarting=False, ExitCode=0, StartedAt="2026-11-23T19:54:00.5Z"
    )
    state = container_state(doc)
    assert state.exit_code is None
    assert notable_events([state]) == [
        TimelineEvent(utc(2026, 11, 23, 19, 54, 0, 500000), "factsfx-worker-1 restarted 1 time", "container state")
    ]


def test_events_without_any_time_are_left_out() -> None:
    assert notable_events([ContainerState(name="x", id="1", status="dead", exit_code=1)]) == []


def test_summary_puts_crash_loops_first_and_flags_them(docs: dict[str, dict], image: dict) -> None:
    states = [container_state(d, image) for d in docs.values()]
    assert summary_lines(states) == [
        "factsfx-worker-1 (factsfx-busybox:1): CRASH LOOP (likely root-cause lead), restarted 7 times, "
        "last exit code 1, status restarting",
        "factsfx-oom-1 (factsfx-busybox:1): OOM-killed (memory limit 8 MiB), last exit code 137, status exited",
        'factsfx-web-1 (factsfx-busybox:1): unhealthy: probe exit 1 "HTTP/1.1 502 Bad Gateway", status running',
        "factsfx-api-1 (factsfx-busybox:1): last exit code 3, status exited",
        "no trouble seen in: factsfx-db-1",
    ]


def test_summary_of_nothing_is_empty() -> None:
    assert summary_lines([]) == []
