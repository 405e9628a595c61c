"""Fuzz the Woodpecker answers, through the parse functions and over real HTTP through the
loopback Woodpecker: every answer gives smoke steps or a WoodpeckerError naming what was
wrong; nothing else."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from rollback_pm.errors import WoodpeckerError
from rollback_pm.facts import woodpecker as wp
from rollback_pm.facts.woodpecker import WoodpeckerClient
from tests.fuzz.strategies import big_ints, floats, json_values, timestamps
from tests.fuzz.tally import TALLY, is_error
from tests.support.fake_woodpecker import FakeWoodpecker

T = 1778662000

fields = st.one_of(big_ints, floats, st.text(max_size=20), st.none(), st.booleans(), json_values)
steps = st.fixed_dictionaries(
    {},
    optional={
        "id": st.integers(0, 10**6) | fields,
        "name": st.sampled_from(["smoke-api", "deploy", "rollback-deploy", "Smoke web"]) | fields,
        "state": st.sampled_from(["success", "failure", "killed", "error", "skipped", "running"]) | fields,
        "started": st.integers(T - 100, T) | fields | timestamps,
        "finished": st.integers(T, T + 100) | fields | timestamps,
        "exit_code": st.integers(0, 255) | fields,
        "error": st.text(max_size=30) | fields,
    },
)
workflows = st.fixed_dictionaries({}, optional={"children": st.lists(steps, max_size=6) | fields, "name": fields})
pipelines = st.one_of(
    st.fixed_dictionaries({}, optional={"workflows": st.lists(workflows | fields, max_size=4) | fields}),
    json_values,
)
log_entries = st.one_of(
    st.lists(
        st.fixed_dictionaries(
            {},
            optional={
                "id": big_ints | fields,
                "line": big_ints | fields,
                "type": st.integers(0, 4) | fields,
                "data": st.text(max_size=30)
                | st.binary(max_size=30).map(lambda b: __import__("base64").b64encode(b).decode())
                | st.lists(st.integers(-5, 300), max_size=10)
                | fields,
            },
        )
        | fields,
        max_size=20,
    ),
    json_values,
)


def parse_pipeline(pipeline: Any) -> list:
    found = wp.pipeline_steps(pipeline, 42)
    result = [wp.smoke_step(s) for s in found if "smoke" in wp.step_name(s).lower()]
    wp.deploy_finished(found)
    return result


def check(target: str, call) -> None:
    outcome = TALLY.run(target, call, WoodpeckerError)
    if is_error(outcome):
        assert str(outcome).startswith("woodpecker"), str(outcome)


@given(pipelines)
def test_fuzz_pipeline_answers(pipeline: Any) -> None:
    check("woodpecker pipeline", lambda: parse_pipeline(pipeline))


@given(log_entries, st.integers(-2, 60))
def test_fuzz_log_answers(entries: Any, last: int) -> None:
    check("woodpecker log", lambda: wp.log_lines(entries, last))


@given(json_values | st.fixed_dictionaries({"id": fields}))
def test_fuzz_repo_answers(repo: Any) -> None:
    check("woodpecker repo", lambda: wp.repo_id(repo, "acme/shop"))


def test_fuzz_over_http_through_the_loopback_woodpecker() -> None:
    """The same answers sent by a real server, read by the real client (fewer cases: HTTP)."""
    with FakeWoodpecker() as fake:
        repo_id = fake.add_repo("acme/shop")
        fake.add_pipeline(
            repo_id, 42, [{"name": "deploy", "steps": [{"name": "smoke-api", "state": "failure", "started": T}]}]
        )
        client = WoodpeckerClient(fake.url, fake.token, timeout=2.0, max_attempts=1)

        @settings(max_examples=max(10, settings.default.max_examples // 4))
        @given(pipelines, log_entries)
        def send(pipeline: Any, entries: Any) -> None:
            fake.server.clear_injections()
            fake.server.inject("GET", "/repos/{repo_id}/pipelines/{pipeline_number}", status=200, body=pipeline)
            fake.server.inject("GET", "/repos/{repo_id}/logs/{pipeline_number}/{step_id}", status=200, body=entries)
            check("woodpecker http", lambda: client.smoke_steps("acme/shop", 42))

        send()
        assert fake.failures == []
