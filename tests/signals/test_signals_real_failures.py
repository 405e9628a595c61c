"""Real software failing for real, collected by the real collector, read by the extractor.

The six failures of issue 16, each in a container of the Debian test image on the real
engine (``--network none``): a Python service's KeyError at start-up, PostgreSQL
refusing a misspelled ``shared_preload_libraries``, nginx rejecting an unknown
directive, an OOM kill under ``--memory 32m``, a crash loop under ``--restart
on-failure:3`` and a service whose health probe fails because its cache is down. All
six start at once (module fixture); each test collects its container into its own
bundle and asserts that the line saying why is the suspected cause, cited where it is.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rollback_pm.evidence import CollectOptions, Selection, collect
from rollback_pm.signals import Baseline, extract_bundle
from tests.signals.apps import (
    CRASH_APP,
    HEALTH_APP,
    KEYERROR_APP,
    NGINX_BAD_CONF,
    OOM_APP,
    PG_BAD_PRELOAD,
    PROBE,
    SECOND,
    exited,
)

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def started(failing):
    failing.start("keyerror", KEYERROR_APP)
    failing.start("postgres", PG_BAD_PRELOAD, user="postgres")
    failing.start("nginx", NGINX_BAD_CONF)
    failing.start("oom", OOM_APP, mem_limit="32m", memswap_limit="32m")
    failing.start("crashloop", CRASH_APP, restart_policy={"Name": "on-failure", "MaximumRetryCount": 3})
    failing.start(
        "unhealthy",
        HEALTH_APP,
        healthcheck={"test": ["CMD", "python3", "-c", PROBE], "interval": SECOND, "timeout": 3 * SECOND, "retries": 2},
    )
    return failing


def _collect(failing, name: str, tmp_path: Path):
    result = collect(
        Selection(containers=[failing.ids[name]]), CollectOptions(evidence_dir=tmp_path / "evidence", timeout=60)
    )
    assert not result.degraded, result.errors
    log = result.file("log").path
    return extract_bundle(log), Path(log).read_text().splitlines()


def _cited(lines: list[str], ref) -> list[str]:
    return [line.split(" ", 3)[3] for line in lines[ref.first - 1 : ref.last]]


def test_python_keyerror_at_startup(started, tmp_path):
    doc = started.wait_until("keyerror", exited, "exited")
    assert doc["State"]["ExitCode"] == 1

    report, lines = _collect(started, "keyerror", tmp_path)

    cause = report.suspected_cause
    assert cause.text == "KeyError: 'DATABASE_URL'"
    assert cause.signal.kind == "trace" and cause.signal.language == "python"
    cited = _cited(lines, cause.ref)
    assert cited[0] == "Traceback (most recent call last):" and cited[-1] == "KeyError: 'DATABASE_URL'"
    assert cause.signal.excerpt == cited
    assert "exit code 1" in cause.rationale and "its last line names the exception" in cause.rationale
    [container] = report.containers
    assert container.tail.lines[-1].text == "KeyError: 'DATABASE_URL'"


def test_keyerror_is_new_against_the_version_that_replaced_it(started, tmp_path):
    started.wait_until("keyerror", exited, "exited")
    good = started.start("keyerror-good", f"export DATABASE_URL=postgres://app@db/shop; {KEYERROR_APP}")
    started.wait_until("keyerror-good", exited, "exited")
    good_bundle = collect(Selection(containers=[good]), CollectOptions(evidence_dir=tmp_path / "good", timeout=60))
    baseline = Baseline.from_log(good_bundle.file("log").path)

    report, _ = _collect(started, "keyerror", tmp_path)
    report = extract_bundle(report.log, baseline=baseline)

    by_text = {s.text: s for s in report.containers[0].signals}
    assert by_text["KeyError: 'DATABASE_URL'"].new is True
    assert by_text["ERROR:root:statsd host not set, metrics disabled"].new is False
    assert report.containers[0].signals[0].text == "KeyError: 'DATABASE_URL'"
    assert report.suspected_cause.rationale.startswith("the first new python stack trace")


def test_postgresql_refuses_a_misspelled_preload_library(started, tmp_path):
    started.wait_until("postgres", exited, "exited")

    report, lines = _collect(started, "postgres", tmp_path)

    cause = report.suspected_cause
    assert cause.text.endswith('FATAL:  could not access file "pg_stat_statments": No such file or directory')
    assert cause.signal.level == "fatal" and cause.signal.format == "postgresql"
    assert _cited(lines, cause.ref) == [cause.text]


def test_nginx_rejects_an_unknown_directive(started, tmp_path):
    started.wait_until("nginx", exited, "exited")

    report, lines = _collect(started, "nginx", tmp_path)

    cause = report.suspected_cause
    assert cause.text.endswith('[emerg] 1#1: unknown directive "proxy_passs" in /etc/nginx/conf.d/app.conf:4')
    assert cause.signal.level == "fatal" and cause.signal.format == "nginx"
    assert _cited(lines, cause.ref) == [cause.text]


def test_an_oom_kill_quotes_what_the_process_was_doing(started, tmp_path):
    doc = started.wait_until("oom", exited, "exited")
    assert doc["State"]["OOMKilled"] and doc["State"]["ExitCode"] == 137

    report, lines = _collect(started, "oom", tmp_path)

    cause = report.suspected_cause
    last_logged = lines[-1].split(" ", 3)[3]
    assert last_logged.startswith("loaded chunk ")
    assert cause.signal is None and cause.text == last_logged
    assert cause.ref.first == cause.ref.last == len(lines)
    assert "OOM-killed (memory limit 32 MiB)" in cause.rationale
    assert cause.rationale.endswith("the last line it logged before the kill")


def test_a_crash_loop_is_one_signal_with_its_count(started, tmp_path):
    doc = started.wait_until("crashloop", lambda d: exited(d) and d["RestartCount"] == 3, "gave up restarting")
    assert doc["State"]["ExitCode"] == 1

    report, lines = _collect(started, "crashloop", tmp_path)

    cause = report.suspected_cause
    assert cause.text == "FileNotFoundError: [Errno 2] No such file or directory: '/etc/worker/queue.conf'"
    assert cause.signal.kind == "trace" and cause.signal.count == 4  # the first run and three restarts
    assert _cited(lines, cause.ref)[-1] == cause.text
    [container] = report.containers
    assert container.context.restart_count == 3
    assert "restarted 3 times" in cause.rationale


def test_a_failing_health_probe_behind_the_services_own_error(started, tmp_path):
    def unhealthy_twice(doc: dict) -> bool:  # and its own error logged by two probes at least
        health = (doc["State"].get("Health") or {}).get("Status")
        return health == "unhealthy" and started.client.logs(doc["Id"]).count(b" ERROR ") >= 2

    started.wait_until("unhealthy", unhealthy_twice, "became unhealthy with two errors logged")

    report, lines = _collect(started, "unhealthy", tmp_path)

    cause = report.suspected_cause
    assert " ERROR [catalog.health] health check failed: cache 127.0.0.1:6379 unreachable: " in cause.text
    assert "Connection refused" in cause.text
    assert cause.signal.count == sum(" ERROR " in line for line in lines) >= 2  # one per probe, one template
    assert _cited(lines, cause.ref) == [cause.text]
    [container] = report.containers
    assert container.context.health_status == "unhealthy" and "unhealthy" in cause.rationale
