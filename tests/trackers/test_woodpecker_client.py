"""rollback_pm.facts.woodpecker against the loopback Woodpecker (validated by its swagger)."""

import traceback
from datetime import datetime, timezone

import pytest

from rollback_pm.errors import ConfigError, WoodpeckerError
from rollback_pm.facts.woodpecker import WoodpeckerClient
from rollback_pm.models import SmokeStep

T = 1778662000  # 2026-05-13T08:46:40Z


def utc(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, timezone.utc)


@pytest.fixture
def pipeline(woodpecker):
    repo_id = woodpecker.add_repo("acme/shop")
    woodpecker.add_pipeline(
        repo_id,
        42,
        [
            {
                "name": "build",
                "steps": [
                    {"name": "clone", "state": "success", "started": T, "finished": T + 5, "type": "clone"},
                    {"name": "build", "state": "success", "started": T + 5, "finished": T + 60},
                ],
            },
            {
                "name": "deploy",
                "steps": [
                    {"name": "deploy-production", "state": "success", "started": T + 61, "finished": T + 120},
                    {"name": "smoke-api", "state": "failure", "started": T + 121, "finished": T + 150, "exit_code": 22},
                    {"name": "Smoke web", "state": "success", "started": T + 121, "finished": T + 130},
                    {"name": "smoke-worker", "state": "skipped"},
                    {"name": "rollback-deploy", "state": "running", "started": T + 151},
                ],
            },
        ],
    )
    smoke_api = woodpecker.step(repo_id, 42, "smoke-api")["id"]
    lines = [f"+ check {i}" for i in range(58)] + [
        f"curl -H 'Authorization: Bearer {woodpecker.token}' https://api.example.com/health",
        "curl: (22) The requested URL returned error: 502",
    ]
    woodpecker.add_log(repo_id, 42, smoke_api, lines, start_time=T + 121)
    return repo_id, smoke_api


def client_for(fake, clock=None, **kwargs):
    if clock is not None:
        kwargs.update(sleep=clock.sleep, clock=clock.monotonic)
    return WoodpeckerClient(fake.url, kwargs.pop("token", fake.token), timeout=2.0, **kwargs)


def test_smoke_steps_and_deploy_time(woodpecker, pipeline):
    _, smoke_api = pipeline
    steps, deployed = client_for(woodpecker).smoke_steps("acme/shop", 42)

    assert deployed == utc(T + 120)
    assert [(s.name, s.status, s.ts, s.started_at, s.message) for s in steps] == [
        ("smoke-api", "failed", utc(T + 150), utc(T + 121), "exit code 22"),
        ("Smoke web", "passed", utc(T + 130), utc(T + 121), ""),
        ("smoke-worker", "skipped", None, None, ""),
    ]
    assert all(s.source == "woodpecker" for s in steps)
    excerpt = steps[0].log_excerpt.split("\n")
    assert len(excerpt) == 50
    assert excerpt[0] == "+ check 10"
    assert excerpt[-1] == "curl: (22) The requested URL returned error: 502"
    assert excerpt[-2] == "curl -H 'Authorization: ***' https://api.example.com/health"
    assert steps[1].log_excerpt == "" and steps[0].failed
    # Only the failed step's log was fetched.
    assert [
        r.params["step_id"] for r in woodpecker.server.calls("GET") if r.route.startswith("/repos/{repo_id}/logs")
    ] == [str(smoke_api)]


def test_the_calls_and_their_paths(woodpecker, pipeline):
    repo_id, smoke_api = pipeline
    client = client_for(woodpecker)
    assert client.lookup_repo("acme/shop")["id"] == repo_id
    assert client.pipeline(repo_id, 42)["number"] == 42
    assert client.step_log(repo_id, 42, smoke_api, last_lines=2) == [
        "curl -H 'Authorization: ***' https://api.example.com/health",
        "curl: (22) The requested URL returned error: 502",
    ]
    paths = [r.path for r in woodpecker.server.requests]
    assert paths == [
        "/repos/lookup/acme/shop",
        f"/repos/{repo_id}/pipelines/42",
        f"/repos/{repo_id}/logs/42/{smoke_api}",
    ]
    assert woodpecker.server.requests[0].header("authorization") == f"Bearer {woodpecker.token}"


def test_pattern_and_no_deploy_step(woodpecker):
    repo_id = woodpecker.add_repo("acme/api", repo_id=9)
    woodpecker.add_pipeline(
        repo_id,
        3,
        [
            {
                "name": "ci",
                "steps": [
                    {"name": "e2e", "state": "error", "error": "image pull failed", "started": T, "finished": T + 1}
                ],
            }
        ],
    )
    steps, deployed = client_for(woodpecker).smoke_steps("acme/api", 3, pattern="^e2e$")
    assert steps == [
        SmokeStep(
            name="e2e",
            status="error",
            ts=utc(T + 1),
            started_at=utc(T),
            message="image pull failed",
            source="woodpecker",
        )
    ]
    assert deployed is None


def test_missing_log_leaves_the_step(woodpecker, pipeline, logs):
    woodpecker.logs.clear()
    steps, _ = client_for(woodpecker).smoke_steps("acme/shop", 42)
    assert steps[0].status == "failed" and steps[0].log_excerpt == ""
    assert "woodpecker step log unavailable" in logs.getvalue()


def test_unknown_repo_and_pipeline(woodpecker, pipeline):
    client = client_for(woodpecker)
    with pytest.raises(WoodpeckerError, match="acme/nope is activated in Woodpecker"):
        client.smoke_steps("acme/nope", 42)
    with pytest.raises(WoodpeckerError, match="pipeline 77 of repository id 7"):
        client.smoke_steps("acme/shop", 77)


def test_bad_token_names_the_setting_and_never_shows_it(woodpecker, pipeline, logs):
    client = client_for(woodpecker, token="wp-wrong-secret")
    with pytest.raises(WoodpeckerError, match="ROLLBACK_PM_WOODPECKER_TOKEN / --woodpecker-token") as info:
        client.smoke_steps("acme/shop", 42)
    text = str(info.value) + repr(info.value) + "".join(traceback.format_exception(info.value)) + logs.getvalue()
    assert "wp-wrong-secret" not in text


def test_down_server_is_an_error_within_the_budget(woodpecker, pipeline, clock):
    woodpecker.server.inject("GET", ".*", status=503, headers={"Retry-After": "2"}, times=100)
    with pytest.raises(WoodpeckerError, match="unavailable.*3 attempts"):
        client_for(woodpecker, clock).smoke_steps("acme/shop", 42)
    assert clock.sleeps == [2.0, 2.0]


def test_settings_are_required():
    with pytest.raises(ConfigError, match="ROLLBACK_PM_WOODPECKER_URL"):
        WoodpeckerClient("", "token-value")
    with pytest.raises(ConfigError, match="ROLLBACK_PM_WOODPECKER_TOKEN"):
        WoodpeckerClient("https://ci.example.com", "")
    assert WoodpeckerClient("https://ci.example.com/api/", "token-value").http.base_url == "https://ci.example.com/api"


def test_step_logs_and_errors_are_redacted(woodpecker):
    from tests.support.canaries import canaries

    planted = canaries("W")
    repo_id = woodpecker.add_repo("acme/canary")
    woodpecker.add_pipeline(
        repo_id,
        7,
        [
            {
                "name": "deploy",
                "steps": [
                    {
                        "name": "smoke-api",
                        "state": "failure",
                        "started": T,
                        "finished": T + 5,
                        "error": f"exit 1: {planted[0].text} {planted[4].text}",
                    }
                ],
            }
        ],
    )
    step_id = woodpecker.step(repo_id, 7, "smoke-api")["id"]
    lines = [line for c in planted for line in c.text.split("\n")]
    woodpecker.add_log(repo_id, 7, step_id, ["+ ./smoke.sh", *lines, "HTTP 502"], start_time=T)
    [step], _ = client_for(woodpecker).smoke_steps("acme/canary", 7)
    text = step.name + step.message + step.log_excerpt
    for canary in planted:
        assert canary.secret not in text, canary.fmt
    assert step.log_excerpt.startswith("+ ./smoke.sh\n") and step.log_excerpt.endswith("\nHTTP 502")
    assert "-----BEGIN RSA PRIVATE KEY-----\n[REDACTED]\n[REDACTED]\n-----END RSA PRIVATE KEY-----" in step.log_excerpt
