"""Timeline order and sources, duration, default severity and detected-by."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from rollback_pm.errors import ConfigError
from rollback_pm.facts.timeline import build_timeline, default_detected_by, default_severity, duration_seconds
from rollback_pm.models import ContainerState, EvidenceFile, Incident, SmokeStep, TimelineEvent

DEPLOY = "d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3"
ROLLBACK = "3f9c2a1b4d5e6f708192a3b4c5d6e7f8091a2b3c"


def utc(*args: int) -> datetime:
    return datetime(2026, 5, 13, *args, tzinfo=timezone.utc)


def evidence(bundle: str, kind: str) -> EvidenceFile:
    suffix = {"log": ".log", "inspect": ".inspect.json", "manifest": ".manifest.json"}[kind]
    return EvidenceFile(
        path=f"/var/log/azaion/rollback-{bundle}{suffix}", kind=kind, sha256="0" * 64, bytes=1, bundle=bundle
    )


def incident(**changes: object) -> Incident:
    base = Incident(
        id="abc123",
        service="azaion",
        environment="production",
        deploy_sha=DEPLOY,
        rollback_sha=ROLLBACK,
        started_at=utc(8, 45, 0),
        detected_at=utc(8, 47, 21),
        mitigated_at=utc(8, 52, 5),
        detected_by="smoke test",
        smoke_steps=[
            SmokeStep(name="containers up", status="passed", step=1, ts=utc(8, 47, 1), source="/ci/smoke.jsonl"),
            SmokeStep(
                name="api health",
                status="failed",
                step=3,
                ts=utc(8, 47, 21),
                message="GET /health -> 502\nbody: upstream",
                source="/ci/smoke.jsonl",
            ),
            SmokeStep(name="db migrations", status="skipped", step=4, source="/ci/smoke.jsonl"),  # no time: left out
            SmokeStep(name="smoke-e2e", status="failed", started_at=utc(8, 48), source="woodpecker"),
        ],
        containers=[
            ContainerState(
                name="api-1",
                id="1",
                status="exited",
                exit_code=137,
                oom_killed=True,
                started_at=utc(8, 45, 2),
                finished_at=utc(8, 46, 30),
            ),
            ContainerState(
                name="web-1",
                id="2",
                status="running",
                health_status="unhealthy",
                started_at=utc(8, 45, 3),
                health_log=[
                    {
                        "Start": "2026-05-13T08:47:00.100Z",
                        "End": "2026-05-13T08:47:00.200Z",
                        "ExitCode": 1,
                        "Output": "502 Bad Gateway\n",
                    }
                ],
            ),
        ],
        evidence=[evidence("20260513T084900Z", k) for k in ("log", "inspect", "manifest")]
        + [evidence("20260513T085210Z-2", "log")],
        events=[
            TimelineEvent(utc(8, 49, 0), "evidence collected: rollback-20260513T084900Z.log", "evidence collection"),
            TimelineEvent(utc(8, 47, 21), "paged #oncall", "alertmanager"),
        ],
    )
    for key, value in changes.items():
        setattr(base, key, value)
    return base


def test_timeline_has_every_event_with_its_source_in_time_order() -> None:
    assert [(e.ts, e.text, e.source) for e in build_timeline(incident())] == [
        (utc(8, 45, 0), "deploy d4e5f6a of azaion went live in production", "pipeline"),
        (utc(8, 46, 30), "api-1 OOM-killed (exit code 137)", "container state"),
        (utc(8, 47, 0, 100000), 'web-1 first failing health probe: probe exit 1 "502 Bad Gateway"', "container state"),
        (utc(8, 47, 1), 'smoke step 1 "containers up" passed', "smoke report smoke.jsonl"),
        # ties keep the story's order: the step, then detection, then recorded events
        (utc(8, 47, 21), 'smoke step 3 "api health" failed: GET /health -> 502', "smoke report smoke.jsonl"),
        (utc(8, 47, 21), 'detected by smoke test: smoke step 3 "api health" failed', "smoke report smoke.jsonl"),
        (utc(8, 47, 21), "paged #oncall", "alertmanager"),
        (utc(8, 48, 0), 'smoke step "smoke-e2e" failed', "Woodpecker pipeline step"),
        # bundle 084900Z was recorded by the hook already: not doubled
        (utc(8, 49, 0), "evidence collected: rollback-20260513T084900Z.log", "evidence collection"),
        (utc(8, 52, 5), "mitigated: rolled back to 3f9c2a1", "pipeline"),
        (utc(8, 52, 10), "evidence collected: rollback-20260513T085210Z-2.log", "evidence collection"),
    ]


def test_timeline_of_a_bare_incident() -> None:
    bare = Incident(
        id="x", service="api", environment="staging", deploy_sha=DEPLOY, detected_at=utc(9, 0), detected_by="operator"
    )
    assert build_timeline(bare) == [TimelineEvent(utc(9, 0), "detected by operator", "operator")]
    bare.mitigated_at = utc(9, 5)
    assert build_timeline(bare)[-1] == TimelineEvent(utc(9, 5), "mitigated: rollback finished", "pipeline")


@pytest.mark.parametrize(
    ("started", "detected", "mitigated", "expected"),
    [
        (utc(8, 45, 0), utc(8, 47, 21), utc(8, 52, 5), 425.0),
        (None, utc(8, 47, 21), utc(8, 52, 5), 284.0),
        (utc(8, 45, 0), None, None, None),
        (None, None, utc(8, 52, 5), None),
        (utc(8, 53, 0), None, utc(8, 52, 5), None),  # inputs disagree: no made-up 00:00
    ],
)
def test_duration(
    started: datetime | None, detected: datetime | None, mitigated: datetime | None, expected: float | None
) -> None:
    assert duration_seconds(incident(started_at=started, detected_at=detected, mitigated_at=mitigated)) == expected


@pytest.mark.parametrize(
    ("environment", "rules", "expected"),
    [
        ("production", None, "High"),
        ("Production", None, "High"),
        ("staging", None, "Medium"),
        ("dev", None, "Medium"),
        ("", None, "Medium"),
        ("production", {"production": "critical"}, "Critical"),
        ("staging", {"production": "Critical"}, "Medium"),
        ("qa", {"*": "Low"}, "Low"),
        ("Staging", {"STAGING": "Low"}, "Low"),
    ],
)
def test_default_severity(environment: str, rules: dict[str, str] | None, expected: str) -> None:
    assert default_severity(environment, rules) == expected


def test_unknown_severity_rule_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        default_severity("production", {"production": "Sev1"})
    assert str(caught.value) == "severity rule for 'production' is 'Sev1'; use one of Critical, High, Medium, Low"


def test_default_detected_by() -> None:
    steps = incident().smoke_steps
    assert default_detected_by(steps) == "smoke test"
    assert default_detected_by(incident()) == "smoke test"
    assert default_detected_by([s for s in steps if not s.failed]) == "operator"
    assert default_detected_by([SmokeStep(name="x", status="error")]) == "smoke test"
    assert default_detected_by([]) == "operator"
