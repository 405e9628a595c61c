"""Smoke reports: JSON lines, JUnit XML, TAP; detection; every malformed case names file and line."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from rollback_pm.errors import EXIT_USAGE, SmokeReportError
from rollback_pm.facts import smoke
from rollback_pm.facts.smoke import detect_format, parse_report, parse_reports
from rollback_pm.models import SmokeStep

NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)  # the clock the timestamp window is judged by
WINDOW = "a smoke step's time must lie between 2000-01-01 and now + 1 day (2026-06-02T00:00:00Z)"


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(smoke, "utcnow", lambda: NOW)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def error_of(path: Path, fmt: str | None = None) -> SmokeReportError:
    with pytest.raises(SmokeReportError) as caught:
        parse_report(path, fmt)
    return caught.value


JSONL = """\
# azaion scripts/smoke.sh, one object per step
{"step": 1, "name": "containers up", "status": "ok", "ts": "2026-05-13T08:47:01Z"}
{"step": 2, "name": "web responds", "status": "PASS", "ts": 1778662030}

{"step": "3", "name": "api health", "status": "failure", "ts": "2026-05-13T10:47:21+02:00", "message": "GET /health -> 502"}
{"step": 4, "name": "db migrations", "status": "skip", "ts": 1778662041500, "message": {"reason": "no db"}}
{"name": "5 - queue", "status": "errored", "started_at": "2026-05-13T08:47:22.123456789Z"}
"""


def test_jsonl_normalises_status_step_and_times(tmp_path: Path) -> None:
    path = write(tmp_path, "smoke.jsonl", JSONL)
    assert parse_report(path) == [
        SmokeStep(name="containers up", status="passed", step=1, ts=utc(2026, 5, 13, 8, 47, 1), source=str(path)),
        SmokeStep(name="web responds", status="passed", step=2, ts=utc(2026, 5, 13, 8, 47, 10), source=str(path)),
        SmokeStep(
            name="api health",
            status="failed",
            step=3,
            ts=utc(2026, 5, 13, 8, 47, 21),
            message="GET /health -> 502",
            source=str(path),
        ),
        SmokeStep(
            name="db migrations",
            status="skipped",
            step=4,
            ts=utc(2026, 5, 13, 8, 47, 21, 500000),
            message='{"reason": "no db"}',
            source=str(path),
        ),
        SmokeStep(
            name="queue", status="error", step=5, started_at=utc(2026, 5, 13, 8, 47, 22, 123456), source=str(path)
        ),
    ]


JUNIT = """\
<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="smoke">
  <testsuite name="smoke.sh" tests="5" failures="1" errors="1" skipped="1" timestamp="2026-05-13T08:47:00" time="4.5">
    <testcase classname="smoke" name="1 - containers up" time="1.0"/>
    <testcase classname="smoke" name="2 - web responds" time="0.5">
      <system-out>200 OK</system-out>
    </testcase>
    <testcase classname="smoke" name="3 - api health" time="2.0">
      <failure message="GET /health returned 502" type="AssertionError">curl: (22) 502 Bad Gateway</failure>
    </testcase>
    <testcase classname="smoke" name="db migrations" time="0"><skipped message="no db in staging"/></testcase>
  </testsuite>
  <testsuite name="extra" timestamp="2026-05-13T08:48:00Z">
    <testcase name="queue" time="1"><error>connection refused</error></testcase>
  </testsuite>
</testsuites>
"""


def test_junit_steps_times_from_suite_timestamp_plus_durations(tmp_path: Path) -> None:
    path = write(tmp_path, "report.xml", JUNIT)
    src = str(path)
    assert parse_report(path) == [
        SmokeStep(
            name="containers up",
            status="passed",
            step=1,
            started_at=utc(2026, 5, 13, 8, 47, 0),
            ts=utc(2026, 5, 13, 8, 47, 1),
            source=src,
        ),
        SmokeStep(
            name="web responds",
            status="passed",
            step=2,
            started_at=utc(2026, 5, 13, 8, 47, 1),
            ts=utc(2026, 5, 13, 8, 47, 1, 500000),
            source=src,
        ),
        SmokeStep(
            name="api health",
            status="failed",
            step=3,
            started_at=utc(2026, 5, 13, 8, 47, 1, 500000),
            ts=utc(2026, 5, 13, 8, 47, 3, 500000),
            message="GET /health returned 502\ncurl: (22) 502 Bad Gateway",
            source=src,
        ),
        SmokeStep(
            name="db migrations",
            status="skipped",
            step=4,
            started_at=utc(2026, 5, 13, 8, 47, 3, 500000),
            ts=utc(2026, 5, 13, 8, 47, 3, 500000),
            message="no db in staging",
            source=src,
        ),
        SmokeStep(
            name="queue",
            status="error",
            step=5,
            started_at=utc(2026, 5, 13, 8, 48),
            ts=utc(2026, 5, 13, 8, 48, 1),
            message="connection refused",
            source=src,
        ),
    ]


def test_junit_single_testsuite_root_without_timestamps(tmp_path: Path) -> None:
    path = write(tmp_path, "junit.xml", '<testsuite name="s"><testcase name="only"/></testsuite>')
    assert parse_report(path) == [SmokeStep(name="only", status="passed", step=1, source=str(path))]


TAP = """\
TAP version 13
1..6
# smoke for azaion
ok 1 - containers up
ok 2 web responds
not ok 3 - api health
  ---
  message: "GET /health returned 502"
  ts: 2026-05-13T08:47:21Z
  data:
    got: 502
  ...
ok 4 - db migrations # SKIP no db in staging
not ok 5 - feature flag \\# 12 # TODO not shipped yet
not ok 6 - queue
# expected: consumer connected
#      got: connection refused
"""


def test_tap_with_yaml_diagnostics_directives_and_comments(tmp_path: Path) -> None:
    path = write(tmp_path, "smoke.tap", TAP)
    src = str(path)
    assert parse_report(path) == [
        SmokeStep(name="containers up", status="passed", step=1, source=src),
        SmokeStep(name="web responds", status="passed", step=2, source=src),
        SmokeStep(
            name="api health",
            status="failed",
            step=3,
            ts=utc(2026, 5, 13, 8, 47, 21),
            message="GET /health returned 502",
            source=src,
        ),
        SmokeStep(name="db migrations", status="skipped", step=4, message="SKIP: no db in staging", source=src),
        SmokeStep(name="feature flag # 12", status="skipped", step=5, message="TODO: not shipped yet", source=src),
        SmokeStep(
            name="queue",
            status="failed",
            step=6,
            message="expected: consumer connected\ngot: connection refused",
            source=src,
        ),
    ]


def test_tap_plan_with_missing_steps_marks_where_the_run_stopped(tmp_path: Path) -> None:
    path = write(tmp_path, "smoke.tap", "1..4\nok 1 - up\nok 2 - web\n")
    src = str(path)
    assert parse_report(path)[2:] == [
        SmokeStep(
            name="step 3 (not reported)",
            status="error",
            step=3,
            message="planned but never reported: the smoke run stopped before reporting it",
            source=src,
        ),
        SmokeStep(
            name="step 4 (not reported)",
            status="skipped",
            step=4,
            message="not run: the smoke run stopped at an earlier step",
            source=src,
        ),
    ]


def test_tap_bail_out_without_plan_is_an_error_step(tmp_path: Path) -> None:
    path = write(tmp_path, "smoke.tap", "ok 1 - up\nBail out! database unreachable\nok 2 - ignored\n")
    assert parse_report(path) == [
        SmokeStep(name="up", status="passed", step=1, source=str(path)),
        SmokeStep(
            name="step 2 (not reported)",
            status="error",
            step=2,
            message="planned but never reported: Bail out! database unreachable",
            source=str(path),
        ),
    ]


def test_tap_missing_steps_after_a_failure_are_only_skipped(tmp_path: Path) -> None:
    path = write(tmp_path, "smoke.tap", "1..3\nok 1 - up\nnot ok 2 - web\n")
    assert [(s.step, s.status) for s in parse_report(path)] == [(1, "passed"), (2, "failed"), (3, "skipped")]


def test_tap_subtests_are_summarised_by_their_parent(tmp_path: Path) -> None:
    content = (
        "TAP version 14\n# Subtest: api\n    ok 1 - ping\n    not ok 2 - health\n      ---\n"
        "      message: inner\n      ...\n    1..2\nnot ok 1 - api\n1..1\n"
    )
    path = write(tmp_path, "smoke.tap", content)
    assert parse_report(path) == [SmokeStep(name="api", status="failed", step=1, source=str(path))]


def test_tap_yaml_block_scalar_message(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "s.tap",
        "not ok 1 - api\n  ---\n  message: |\n    line one\n    line two\n  timestamp: '1778662041'\n  ...\n",
    )
    assert parse_report(path) == [
        SmokeStep(
            name="api",
            status="failed",
            step=1,
            ts=utc(2026, 5, 13, 8, 47, 21),
            message="line one\nline two",
            source=str(path),
        )
    ]


def test_tap_empty_plan_is_valid_and_has_no_steps(tmp_path: Path) -> None:
    assert parse_report(write(tmp_path, "s.tap", "1..0 # SKIP no smoke tests here\n")) == []


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("report", '\n# c\n{"name": "a", "status": "ok"}\n', "jsonl"),
        ("report", '  <?xml version="1.0"?>\n<testsuite/>', "junit"),
        ("report", "TAP version 13\n", "tap"),
        ("report", "# header\n1..3\n", "tap"),
        ("report", "not ok 1\n", "tap"),
        ("report", "Bail out!\n", "tap"),
        ("smoke.json", "<testsuite/>", "junit"),  # content beats a misleading extension
        ("smoke.xml", "ok 1 - x\n", "tap"),
        ("smoke.tap", "garbage\n", "tap"),  # undecidable content: the extension decides
        ("smoke.jsonl", "garbage\n", "jsonl"),
    ],
)
def test_detect_format(tmp_path: Path, name: str, content: str, expected: str) -> None:
    assert detect_format(Path(name), content) == expected


def test_detected_format_is_used_whatever_the_extension(tmp_path: Path) -> None:
    path = write(tmp_path, "smoke.txt", "ok 1 - up\n")
    assert parse_report(path) == [SmokeStep(name="up", status="passed", step=1, source=str(path))]


def test_explicit_format_and_aliases(tmp_path: Path) -> None:
    path = write(tmp_path, "smoke.log", '{"name": "a", "status": "ok"}\n')
    assert (
        parse_report(path, "json")
        == parse_report(path, "jsonl")
        == [SmokeStep(name="a", status="passed", source=str(path))]
    )
    assert str(error_of(path, "tap")) == (
        f'smoke report {path}:1: not a TAP line: \'{{"name": "a", "status": "ok"}}\' (expected \'ok N - name\', '
        "'not ok N - name', a plan '1..N', a '#' comment or an indented YAML block)"
    )
    assert (
        str(error_of(path, "yaml"))
        == f"smoke report {path}: unknown smoke report format 'yaml'; use jsonl, junit or tap"
    )


def test_parse_reports_concatenates_in_order(tmp_path: Path) -> None:
    first = write(tmp_path, "a.jsonl", '{"step": 1, "name": "a", "status": "ok"}\n')
    second = write(tmp_path, "b.tap", "not ok 2 - b\n")
    assert parse_reports([first, second]) == [
        SmokeStep(name="a", status="passed", step=1, source=str(first)),
        SmokeStep(name="b", status="failed", step=2, source=str(second)),
    ]


# Every malformed input: (file name, content, expected message after "smoke report <path>")
MALFORMED = [
    (
        "s.jsonl",
        '{"name": "a", "status": "ok"}\n{"name": "b", "status": "ok",}\n',
        ":2: bad JSON: Expecting property name enclosed in double quotes at column 30",
    ),
    ("s.jsonl", '{"name": "a", "status": "ok"}\n   {"name": \n', ":2: bad JSON: Expecting value at column 13"),
    ("s.jsonl", '["a", "ok"]\n', ':1: expected one JSON object per line, got list ["a", "ok"]'),
    ("s.jsonl", '# c\n{"status": "ok"}\n', ':2: missing "name" (every step needs "name" and "status")'),
    ("s.jsonl", '{"name": "a"}\n', ':1: missing "status" (every step needs "name" and "status")'),
    ("s.jsonl", '{"name": "", "status": "ok"}\n', ':1: "name" must be a non-empty string, got ""'),
    ("s.jsonl", '{"name": "a", "status": 1}\n', ':1: "status" must be a non-empty string, got 1'),
    (
        "s.jsonl",
        '{"name": "a", "status": "flaky"}\n',
        ':1: unknown status "flaky"; use passed, failed, skipped or error',
    ),
    ("s.jsonl", '{"name": "a", "status": "ok", "step": "three"}\n', ':1: "step" must be a whole number, got "three"'),
    ("s.jsonl", '{"name": "a", "status": "ok", "step": true}\n', ':1: "step" must be a whole number, got true'),
    (
        "s.jsonl",
        '\n\n{"name": "a", "status": "ok", "ts": "yesterday"}\n',
        ':3: bad timestamp "ts": "yesterday"; use ISO 8601 (2026-05-13T08:47:21Z) or epoch seconds',
    ),
    (
        "s.jsonl",
        '{"name": "a", "status": "ok", "ts": 0}\n',
        f':1: bad timestamp "ts": 0; {WINDOW}',
    ),
    (
        "s.jsonl",
        '{"name": "a", "status": "ok", "started_at": "2026-13-45T00:00:00Z"}\n',
        ':1: bad timestamp "started_at": "2026-13-45T00:00:00Z"; use ISO 8601 (2026-05-13T08:47:21Z) or epoch seconds',
    ),
    ("s.jsonl", "# only a comment\n\n", ": is empty: no smoke steps in it; check that the smoke test wrote its report"),
    ("s.xml", '<testsuite>\n  <testcase name="a">\n</testsuite>\n', ":3: malformed XML: mismatched tag at column 3"),
    ("s.xml", "<testsuite>\n<testcase name='a'/>\n", ":3: malformed XML: no element found at column 1"),
    (
        "s.xml",
        '<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">]>\n<testsuite>&lol;</testsuite>\n',
        ":2: has a DOCTYPE declaration; JUnit reports need none, and its entities could expand without bound, "
        "so it is refused",
    ),
    (
        "s.xml",
        '<report>\n<testcase name="a"/></report>\n',
        ":1: root element <report> is not <testsuites> or <testsuite>",
    ),
    ("s.xml", "<testsuites>\n<testsuite/>\n</testsuites>\n", ":1: has no <testcase> elements: no smoke steps in it"),
    ("s.xml", '<testsuite>\n  <testcase time="1"/>\n</testsuite>\n', ":2: <testcase> has no name attribute"),
    (
        "s.xml",
        '<testsuite>\n  <testcase name="a" time="fast"/>\n</testsuite>\n',
        ':2: bad time="fast" on <testcase>: expected seconds from 0 to 86400',
    ),
    (
        "s.xml",
        '<testsuites>\n <testsuite timestamp="last tuesday">\n  <testcase name="a"/>\n </testsuite>\n</testsuites>',
        ':2: bad timestamp="last tuesday" on <testsuite>; use ISO 8601 (2026-05-13T08:47:21Z) or epoch seconds',
    ),
    (
        "s.tap",
        "TAP version 13\nok 1 - a\nokay 2 - b\n",
        ":3: not a TAP line: 'okay 2 - b' (expected 'ok N - name', 'not ok N - name', a plan '1..N', "
        "a '#' comment or an indented YAML block)",
    ),
    (
        "s.tap",
        "ok 1 - a\n    whatever\n",
        ":2: not a TAP line: 'whatever' (expected 'ok N - name', 'not ok N - name', a plan '1..N', "
        "a '#' comment or an indented YAML block)",
    ),
    ("s.tap", "ok 1 - a\nnot ok 2 - b\n  ---\n  message: x\n", ":3: YAML block is not closed with '...'"),
    (
        "s.tap",
        "not ok 1 - a\n  ---\n  message: x\n  ts: soon\n  ...\n",
        ":4: bad timestamp ts: 'soon'; use ISO 8601 (2026-05-13T08:47:21Z) or epoch seconds",
    ),
    ("s.tap", "TAP version 13\n", ": is empty: no smoke steps in it; check that the smoke test wrote its report"),
    (
        "report",
        "hello\n",
        ":1: cannot tell the format from 'hello': expected JSON lines, JUnit XML or TAP; give --smoke-format",
    ),
    ("report", "\n \n", ": is empty: no smoke steps in it; check that the smoke test wrote its report"),
]


@pytest.mark.parametrize(("name", "content", "expected"), MALFORMED)
def test_malformed_reports_name_file_and_line(tmp_path: Path, name: str, content: str, expected: str) -> None:
    path = write(tmp_path, name, content)
    error = error_of(path)
    assert str(error) == f"smoke report {path}{expected}"
    assert error.path == str(path)
    assert error.exit_code == EXIT_USAGE


def test_not_utf8_names_line_and_byte(tmp_path: Path) -> None:
    path = write(tmp_path, "s.jsonl", b'{"name": "a", "status": "ok"}\n{"name": "caf\xe9", "status": "ok"}\n')
    error = error_of(path)
    assert str(error) == f"smoke report {path}:2: is not UTF-8 (byte 0xe9 at column 14); write the report as UTF-8"
    assert error.line == 2


def test_utf8_bom_and_crlf_are_accepted(tmp_path: Path) -> None:
    path = write(tmp_path, "s.jsonl", b'\xef\xbb\xbf{"name": "caf\xc3\xa9", "status": "ok"}\r\n')
    assert parse_report(path) == [SmokeStep(name="café", status="passed", source=str(path))]


def test_missing_file_and_directory(tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    assert str(error_of(missing)) == f"smoke report {missing}: no such file; check the path given to --smoke-report"
    assert str(error_of(tmp_path)) == f"smoke report {tmp_path}: is a directory, not a report file"


def test_unreadable_path(tmp_path: Path) -> None:
    path = write(tmp_path, "s.jsonl", '{"name": "a", "status": "ok"}\n') / "child"
    assert str(error_of(path)) == f"smoke report {path}: cannot be read: Not a directory"
