"""The extractor's parts on small logs: levels, templates, repeats, tails, baseline, ranking."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rollback_pm.errors import SignalsError
from rollback_pm.signals import (
    Baseline,
    ContainerContext,
    SignalReport,
    extract,
    extract_bundle,
    template,
)
from rollback_pm.signals import scan as scan_module
from rollback_pm.signals.levels import classify
from rollback_pm.signals.tail import MAX_SCAN_LINES
from tests.signals.bundle import bundle_lines, ts, write_bundle_log

TRACE = [
    "Traceback (most recent call last):",
    '  File "/app/main.py", line 3, in <module>',
    "    DATABASE_URL = os.environ['DATABASE_URL']",
    '  File "<frozen os>", line 679, in __getitem__',
    "KeyError: 'DATABASE_URL'",
]


def _log(tmp_path: Path, entries, name: str = "rollback-20260513T084721Z.log", step_ms: int = 1) -> str:
    return write_bundle_log(tmp_path / name, bundle_lines(entries, step_ms=step_ms))


# --- which lines are errors ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "level", "fmt"),
    [
        ("ERROR:root:could not connect", "error", "plain"),
        ("2026-05-13 08:47:21,123 - app - CRITICAL - disk full", "critical", "plain"),
        ("2026-05-13 08:47:21.579 UTC [1] FATAL:  could not access file", "fatal", "postgresql"),
        ("2026-05-13 08:47:21.579 UTC [1] PANIC:  could not write to file", "fatal", "postgresql"),
        ("2026/05/13 08:47:21 [emerg] 1#1: unknown directive", "fatal", "nginx"),
        ("2026/05/13 08:47:21 [crit] 1#1: *3 open() failed", "critical", "nginx"),
        ("2026/05/13 08:47:21 [alert] 1#1: worker process exited on signal 9", "critical", "nginx"),
        ('time=2026-05-13T08:47:21Z level=error msg="cache down"', "error", "logfmt"),
        ('{"level":"error","msg":"boom"}', "error", "json"),
        ('{"severity":"CRITICAL","message":"boom"}', "critical", "json"),
        ('{"lvl":"fatal","msg":"boom"}', "fatal", "json"),
        ('{"level":50,"msg":"boom"}', "error", "json"),
        ('{"level":60,"msg":"boom"}', "fatal", "json"),
        ("E0513 08:47:24.123456       1 reflector.go:138] failed to list", "error", "klog"),
        ("F, [2026-05-13T08:47:21.998298 #1] FATAL -- : cannot boot", "fatal", "ruby"),
        ("SEVERE: Health check failed", "error", "plain"),
        ("2026-05-13 08:47:21.448 ERROR [main] c.e.App - request failed", "error", "plain"),
        ("java.lang.IllegalStateException: boom", "error", "exception"),
        ("KeyError: 'DATABASE_URL'", "error", "exception"),
        ("panic: runtime error: invalid memory address", "fatal", "plain"),
    ],
)
def test_error_lines_in_each_format(text, level, fmt):
    found = classify(text)
    assert found is not None and (found.level, found.format) == (level, fmt)


@pytest.mark.parametrize(
    "text",
    [
        "INFO request done errors=0",
        "WARN retrying after ERROR in upstream",
        "2026-05-13 08:47:21,123 - app - WARNING - error budget at 90%",
        '{"level":"info","msg":"error count 0"}',
        '{"level":30,"msg":"fatal flaw fixed"}',
        'time=2026-05-13T08:47:21Z level=warning msg="retrying after error"',
        "2026/05/13 08:47:21 [warn] 1#1: an upstream response is buffered",
        "2026-05-13 08:47:21.100 UTC [7] LOG:  checkpoint complete: 0 errors",
        "    throw new Error('x');",
        "GET /api/errors 200",
    ],
)
def test_lines_that_only_mention_errors_are_not_signals(text):
    assert classify(text) is None


@pytest.mark.parametrize(
    "text",
    [
        "2026-05-13 08:47:21,123 - app.INFO_SERVICE - ERROR - boom",
        "WARNINGS=0 ERROR disk full",
        "INFO-level ERROR still an error",
        '{"level":"error","msg":"x","info":"INFO"}',
        '{"msg":"INFO error","level":"error"}',
        'time=2026-05-13T08:47:21Z level=error msg="INFO"',
        "2026-05-13 08:47:21,123 INFO request errors=0",
        '{"level":"info","msg":"request","error_count":0}',
        'level=info msg="retrying after error"',
        "2026-05-13 08:47:21.100 UTC [7] LOG:  checkpoint: 0 errors",
        "2026/05/13 08:47:21 [warn] 1#1: upstream error ignored",
    ],
)
def test_the_scanners_quick_rejection_agrees_with_classify(tmp_path, text):
    report = extract(_log(tmp_path, [("api-1", text)]), names=["api-1"])
    assert bool(report.container("api-1").signals) == (classify(text) is not None)


# --- templates --------------------------------------------------------------------------------
def test_template_masks_variable_parts():
    line = (
        "2026-05-13 08:47:21,123 ERROR cannot reach 10.0.0.7:5432 as 'app' (attempt 3/10) "
        "id=4f2a9c1e req=0c6e8f1a-2b3c-4d5e-6f70-8192a3b4c5d6 ptr=0x7ffd"
    )
    assert template(line) == "<TS> ERROR cannot reach <IP> as <STR> (attempt <NUM>/<NUM>) id=<HEX> req=<UUID> ptr=<HEX>"
    assert template('can\'t open "/etc/app.conf"') == "can't open <STR>"


# --- repeats ------------------------------------------------------------------------------------
def test_a_retry_loop_logged_10000_times_is_one_row(tmp_path):
    entries = [("worker-1", "INFO starting")]
    entries += [
        ("worker-1", f"ERROR cannot connect to 10.0.0.{i % 250}:6379 (attempt {i}), retrying in 2s")
        for i in range(10_000)
    ]
    log = _log(tmp_path, entries)

    report = extract(log, names=["worker-1"])

    [signal] = report.container("worker-1").signals
    assert signal.count == 10_000
    assert signal.template == "ERROR cannot connect to <IP> (attempt <NUM>), retrying in <NUM>s"
    assert (signal.first_ts, signal.last_ts) == (ts(1), ts(10_000))
    assert (signal.ref.first, signal.last_line) == (2, 10_001)
    assert signal.ref.cite() == "rollback-20260513T084721Z.log:2"
    assert signal.text == "ERROR cannot connect to 10.0.0.0:6379 (attempt 0), retrying in 2s"
    last = report.container("worker-1").tail.lines[-1]  # the tail walks back a bounded number of lines
    assert (
        last.last_line == 10_001
        and last.repeat == MAX_SCAN_LINES
        and last.text.endswith("(attempt 9999), retrying in 2s")
    )


# --- line numbers and blocks across read boundaries -------------------------------------------
@pytest.mark.parametrize("names", [["api-1", "web-1"], None], ids=["names-known", "names-unknown"])
def test_line_numbers_and_a_trace_across_read_blocks(tmp_path, monkeypatch, names):
    monkeypatch.setattr(scan_module, "BLOCK", 1024)  # many read blocks; the trace straddles two
    entries = [("web-1", f"INFO GET /items/{i} status=200") for i in range(40)]
    for line in TRACE:
        entries += [("api-1", line), ("web-1", "INFO GET /health status=200")]
    entries += [("web-1", f"INFO GET /items/{i} status=200") for i in range(40)]
    log = _log(tmp_path, entries)

    report = extract(log, names=names)

    [signal] = report.container("api-1").signals
    assert signal.kind == "trace" and signal.text == "KeyError: 'DATABASE_URL'"
    assert (signal.ref.first, signal.ref.last) == (41, 49)
    assert signal.excerpt == TRACE
    assert report.stats.lines == len(entries)


def test_an_unknown_container_switches_to_exact_counting(tmp_path):
    entries = [("api-1", "INFO up")] * 5 + [("zeta-1", "ERROR not in the manifest")]
    report = extract(_log(tmp_path, entries), names=["api-1"])
    [signal] = report.container("zeta-1").signals
    assert signal.ref.first == 6
    assert not report.stats.exact_lines  # its earlier lines, had it any, were not counted


def test_a_missing_log_is_a_clear_error(tmp_path):
    with pytest.raises(SignalsError, match="no bundle log at .*rollback-x.log"):
        extract(str(tmp_path / "rollback-x.log"))


def test_a_long_trace_keeps_its_head_and_its_cause(tmp_path):
    frames = [f'  File "/app/m{i}.py", line {i}, in f{i}' for i in range(300)]
    entries = [("api-1", line) for line in [TRACE[0], *frames, "RecursionError: maximum recursion depth exceeded"]]
    [signal] = extract(_log(tmp_path, entries), names=["api-1"]).container("api-1").signals
    assert (signal.ref.first, signal.ref.last, signal.elided) == (1, 302, 202)
    text = signal.excerpt_text().splitlines()
    assert text[0] == TRACE[0] and text[60] == "… 202 lines left out …"
    assert text[-1] == "RecursionError: maximum recursion depth exceeded" and len(text) == 101


def test_distinct_templates_are_capped_per_container(tmp_path):
    entries = [("api-1", f"ERROR unique failure kind{chr(97 + i % 26)}{chr(97 + i // 26 % 26)}") for i in range(600)]
    entries.append(("api-1", TRACE[0]))
    entries += [("api-1", line) for line in TRACE[1:]]
    report = extract(_log(tmp_path, entries), names=["api-1"])
    container = report.container("api-1")
    assert container.templates_dropped > 0
    assert container.signals[0].kind == "trace"  # a stronger newcomer still gets in


# --- last lines, start, state -------------------------------------------------------------
def _context(name: str, **kwargs) -> ContainerContext:
    return ContainerContext(name=name, **kwargs)


def test_last_lines_stop_at_finished_at_and_fold_repeats(tmp_path):
    entries = [("db-1", "LOG:  starting")]
    entries += [("db-1", f"LOG:  waiting for WAL segment {i}") for i in range(30)]
    entries += [("db-1", "LOG:  received fast shutdown request")]
    entries += [("db-1", "LOG:  restarted, new run")] * 3  # 200 ms after FinishedAt: the next run
    lines = bundle_lines(entries)
    lines[-3:] = [line.replace(ts(i), ts(i + 200)) for i, line in zip(range(32, 35), lines[-3:])]
    log = write_bundle_log(tmp_path / "rollback-20260513T084721Z.log", lines)
    context = _context("db-1", status="restarting", exit_code=1, restart_count=1, finished_at=ts(31))

    report = extract(log, contexts=[context], names=["db-1"])

    tail = report.container("db-1").tail
    assert tail.until == ts(81) and tail.reason == "restarting"  # FinishedAt + 50 ms
    assert [(t.line, t.repeat, t.text) for t in tail.lines] == [
        (1, 1, "LOG:  starting"),
        (2, 30, "LOG:  waiting for WAL segment 29"),
        (32, 1, "LOG:  received fast shutdown request"),
    ]
    assert tail.ref.cite() == "rollback-20260513T084721Z.log:1-32"


def test_first_signal_after_the_bad_version_started(tmp_path):
    entries = [("api-1", "ERROR old noise before the deploy"), ("api-1", "INFO deploy"), ("api-1", "ERROR new failure")]
    log = _log(tmp_path, entries)

    report = extract(log, names=["api-1"], bad_since=ts(1).replace("000Z", "Z"))

    container = report.container("api-1")
    assert container.first_signal.text == "ERROR new failure"
    old = next(s for s in container.signals if "old noise" in s.text)
    assert not old.after_start and "logged before the bad version started" in old.reasons
    assert container.signals[0].text == "ERROR new failure"
    assert report.suspected_cause.text == "ERROR new failure"


# --- new in the bad version -----------------------------------------------------------------
def test_baseline_marks_new_signals_and_ranks_noise_lower(tmp_path):
    bad = _log(
        tmp_path,
        [
            ("api-1", "ERROR metrics exporter disabled: no statsd host"),  # the good version logs it too
            ("api-1", "ERROR migration 0042 failed: column email already exists"),
        ],
    )
    baseline = Baseline.from_text(
        ["INFO started", "ERROR metrics exporter disabled: no statsd host", "INFO ready"], source="api-2 recent lines"
    )

    report = extract(bad, names=["api-1"], baseline=baseline)

    noise, new = sorted(report.container("api-1").signals, key=lambda s: s.ref.first)
    assert (noise.new, new.new) == (False, True)
    assert report.container("api-1").signals[0] is new and new.score > noise.score
    assert "also logged by the replacing version" in noise.reasons
    assert report.suspected_cause.text == "ERROR migration 0042 failed: column email already exists"
    assert report.baseline == "api-2 recent lines"


def test_baseline_from_a_bundle_log_and_from_chunks(tmp_path):
    good = _log(tmp_path, [("api-2", line) for line in TRACE], name="good.log")
    from_log = Baseline.from_log(good)
    data = Path(good).read_bytes()
    from_chunks = Baseline.from_chunks((data[i : i + 7] for i in range(0, len(data), 7)), source="chunks")
    assert from_log.keys == from_chunks.keys == {"trace:python:KeyError: <STR>"}
    assert Baseline.from_dict(json.loads(json.dumps(from_log.to_dict()))) == from_log


# --- the suspected cause -----------------------------------------------------------------------
def test_the_earliest_failure_across_containers_is_the_cause(tmp_path):
    entries = [
        ("db-1", '2026-05-13 08:47:21.000 UTC [1] FATAL:  password authentication failed for user "app"'),
        ("api-1", TRACE[0]),
        *[("api-1", line) for line in TRACE[1:-1]],
        ("api-1", "psycopg2.OperationalError: connection to server failed"),
    ]
    contexts = [_context("db-1", status="exited", exit_code=1), _context("api-1", status="exited", exit_code=1)]
    report = extract(_log(tmp_path, entries), contexts=contexts, names=["db-1", "api-1"])
    cause = report.suspected_cause
    assert cause.container == "db-1" and "FATAL:" in cause.text
    assert "first FATAL line (postgresql) logged by db-1 (exit code 1, status exited)" in cause.rationale
    assert "it came before the signals of api-1" in cause.rationale


def test_a_healthy_neighbour_does_not_take_the_cause(tmp_path):
    entries = [("web-1", "ERROR favicon missing"), ("api-1", "ERROR cannot bind :8080: address in use")]
    contexts = [_context("web-1", status="running"), _context("api-1", status="exited", exit_code=1)]
    report = extract(_log(tmp_path, entries), contexts=contexts, names=["web-1", "api-1"])
    assert report.suspected_cause.container == "api-1"


def test_an_oom_kill_without_errors_quotes_the_last_line(tmp_path):
    entries = [("etl-1", f"INFO loaded batch {i} into memory") for i in range(5)]
    context = _context(
        "etl-1", status="exited", exit_code=137, oom_killed=True, memory_limit=32 << 20, finished_at=ts(10)
    )
    report = extract(_log(tmp_path, entries), contexts=[context], names=["etl-1"])
    cause = report.suspected_cause
    assert cause.text == "INFO loaded batch 4 into memory" and cause.signal is None
    assert cause.rationale == (
        "etl-1 ended OOM-killed (memory limit 32 MiB), exit code 137, status exited: "
        "the last line it logged before the kill"
    )
    assert cause.ref.cite() == "rollback-20260513T084721Z.log:5"


# --- results as data ------------------------------------------------------------------------------
def test_report_round_trips_through_json_and_has_a_stable_signature(tmp_path):
    def report_for(folder: Path, attempt: int) -> SignalReport:
        folder.mkdir()
        entries = [("api-1", f"INFO request {attempt}")] + [("api-1", line) for line in TRACE]
        entries.append(("api-1", f"ERROR shutting down after {attempt} requests"))
        contexts = [_context("api-1", status="exited", exit_code=1, finished_at=ts(100))]
        return extract(_log(folder, entries), contexts=contexts, names=["api-1"])

    first, again = report_for(tmp_path / "a", 3), report_for(tmp_path / "b", 97)

    restored = SignalReport.from_dict(json.loads(json.dumps(first.to_dict())))
    assert restored == first
    signature = first.signature(failed_step="Step 3: api health")
    assert signature.step == "step <NUM>: api health"
    assert signature.templates == ("trace:python:KeyError: <STR>", "line::ERROR shutting down after <NUM> requests")
    assert again.signature(failed_step="step 3: API health").key == signature.key
    assert first.signature(failed_step="step 4: web health").key != signature.key


def test_extract_bundle_reads_states_and_names_beside_the_log(tmp_path):
    log = _log(tmp_path, [("api-1", "INFO up"), ("api-1", "ERROR cannot bind :8080")])
    (tmp_path / "rollback-20260513T084721Z.inspect.json").write_text(
        json.dumps(
            [
                {
                    "Name": "/api-1",
                    "Id": "a" * 64,
                    "Created": "2026-05-13T08:47:20.5Z",
                    "State": {
                        "Status": "exited",
                        "Running": False,
                        "OOMKilled": False,
                        "ExitCode": 3,
                        "StartedAt": "2026-05-13T08:47:20.9Z",
                        "FinishedAt": "2026-05-13T08:47:21.5Z",
                    },
                    "HostConfig": {"Memory": 0},
                    "Config": {"Image": "shop/api:2.14"},
                }
            ]
        )
    )
    (tmp_path / "rollback-20260513T084721Z.manifest.json").write_text(json.dumps({"containers": [{"name": "api-1"}]}))

    report = extract_bundle(log)

    container = report.container("api-1")
    assert container.context.describe() == "exit code 3, status exited"
    assert container.start == "2026-05-13T08:47:20.500000000Z"
    assert container.tail.until is None and container.tail.reason == "exited"
    assert report.suspected_cause.text == "ERROR cannot bind :8080"
