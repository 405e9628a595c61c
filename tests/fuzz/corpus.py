"""The regression corpus: the nasty inputs of issue 15 (and what fuzzing found since), with
the outcome each must have. Parsers' tests run every case; the fuzz tests start from them.

Large inputs are built by functions, so the corpus stays readable and small on disk.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Case:
    id: str
    filename: str
    content: bytes
    # the message after "smoke report <path>", or None when the report must parse
    expected: str | None


def _jsonl(message: str) -> bytes:
    return ('{"name": "a", "status": "ok", "message": ' + message + "}\n").encode()


MIB = 1024 * 1024

SMOKE: list[Case] = [
    # issue 15: a 44-byte TAP file declaring a million steps cost 1.2 GB and 34 s
    Case(
        "tap-plan-million",
        "smoke.tap",
        b"TAP version 13\n1..1000000\nnot ok 1 - api health\n",
        ":2: plan 1..1000000 declares more steps than a smoke report may hold: plans from 1..0 to 1..1000 are read",
    ),
    # issue 15: deep nesting ended in RecursionError
    Case(
        "jsonl-deep-nesting",
        "smoke.jsonl",
        _jsonl("[" * 100_000 + "]" * 100_000),
        ":1: nested deeper than 32 levels; a smoke step is one flat JSON object",
    ),
    Case(
        "junit-deep-nesting",
        "smoke.xml",
        ("<testsuite>" * 5000 + '<testcase name="a"/>' + "</testsuite>" * 5000).encode(),
        ":1: elements nest deeper than 32 levels; JUnit needs three or four",
    ),
    # issue 15: "step": 10**23 ended in OverflowError (SQLite's integers stop at 2**63)
    Case(
        "jsonl-step-10e23",
        "smoke.jsonl",
        b'{"step": 100000000000000000000000, "name": "a", "status": "failed"}\n',
        ':1: "step" 100000000000000000000000 is out of range: use 0 to 1000000',
    ),
    Case(
        "jsonl-step-digits-string",
        "smoke.jsonl",
        b'{"step": "99999999999999999999999999", "name": "a", "status": "failed"}\n',
        ':1: "step" 99999999999999999999999… is out of range: use 0 to 1000000',
    ),
    Case(
        "jsonl-step-superscript",
        "smoke.jsonl",
        '{"step": "²", "name": "a", "status": "failed"}\n'.encode(),
        ':1: "step" must be a whole number, got "²"',
    ),
    Case(
        "jsonl-number-5000-digits",
        "smoke.jsonl",
        ('{"step": ' + "9" * 5000 + ', "name": "a", "status": "failed"}\n').encode(),
        ":1: bad JSON: a number has more than 4300 digits",
    ),
    Case(
        "tap-test-number-huge",
        "smoke.tap",
        b"1..1\nnot ok 99999999999999999999 - a\n",
        ":2: test number 99999999999999999999 is out of range: use 0 to 1000000",
    ),
    Case(
        "jsonl-ts-year-9999",
        "smoke.jsonl",
        b'{"name": "a", "status": "failed", "ts": "9999-12-31T23:59:59Z"}\n',
        ':1: bad timestamp "ts": "9999-12-31T23:59:59Z"; a smoke step\'s time must lie between 2000-01-01 '
        "and now + 1 day (2026-06-02T00:00:00Z)",
    ),
    Case(
        "jsonl-ts-year-0026",
        "smoke.jsonl",
        b'{"name": "a", "status": "failed", "ts": "0026-05-13T08:40:00Z"}\n',
        ':1: bad timestamp "ts": "0026-05-13T08:40:00Z"; a smoke step\'s time must lie between 2000-01-01 '
        "and now + 1 day (2026-06-02T00:00:00Z)",
    ),
    Case(
        "jsonl-ts-overflowing-offset",
        "smoke.jsonl",
        b'{"name": "a", "status": "failed", "ts": "9999-12-31T23:59:59-14:00"}\n',
        ':1: bad timestamp "ts": "9999-12-31T23:59:59-14:00"; use ISO 8601 (2026-05-13T08:47:21Z) or epoch seconds',
    ),
    Case(
        "jsonl-ts-infinity",
        "smoke.jsonl",
        b'{"name": "a", "status": "failed", "ts": 1e400}\n',
        ':1: bad timestamp "ts": Infinity; use ISO 8601 (2026-05-13T08:47:21Z) or epoch seconds',
    ),
    Case(
        "jsonl-ts-nan",
        "smoke.jsonl",
        b'{"name": "a", "status": "failed", "ts": NaN}\n',
        ':1: bad timestamp "ts": NaN; use ISO 8601 (2026-05-13T08:47:21Z) or epoch seconds',
    ),
    Case(
        "jsonl-ts-epoch-far-future",
        "smoke.jsonl",
        b'{"name": "a", "status": "failed", "ts": 99999999999}\n',
        ':1: bad timestamp "ts": 99999999999; a smoke step\'s time must lie between 2000-01-01 '
        "and now + 1 day (2026-06-02T00:00:00Z)",
    ),
    Case(
        "junit-time-1e400",
        "smoke.xml",
        b'<testsuite timestamp="2026-05-13T08:00:00Z">\n<testcase name="a" time="1e400"/>\n</testsuite>\n',
        ':2: bad time="1e400" on <testcase>: expected seconds from 0 to 86400',
    ),
    Case(
        "junit-timestamp-far-future",
        "smoke.xml",
        b'<testsuite timestamp="2999-01-01T00:00:00Z">\n<testcase name="a"/>\n</testsuite>\n',
        ':1: bad timestamp="2999-01-01T00:00:00Z" on <testsuite>; a smoke step\'s time must lie between '
        "2000-01-01 and now + 1 day (2026-06-02T00:00:00Z)",
    ),
    Case(
        "jsonl-1001-steps",
        "smoke.jsonl",
        b'{"name": "a", "status": "ok"}\n' * 1001,
        ":1001: more than 1000 steps; a smoke report holds at most 1000 (is this a whole test suite's report?)",
    ),
    Case(
        "tap-1001-steps",
        "smoke.tap",
        b"ok - a\n" * 1001,
        ":1001: more than 1000 steps; a smoke report holds at most 1000 (is this a whole test suite's report?)",
    ),
    Case(
        "junit-1001-testcases",
        "smoke.xml",
        b"<testsuite>\n" + b'<testcase name="a"/>\n' * 1001 + b"</testsuite>\n",
        ":1002: more than 1000 steps; a smoke report holds at most 1000 (is this a whole test suite's report?)",
    ),
    Case(
        "junit-too-many-elements",
        "smoke.xml",
        b'<testsuite><testcase name="a">' + b"<x/>" * 25_000 + b"</testcase></testsuite>\n",
        ":1: has more than 20000 XML elements; a smoke report needs a few per step",
    ),
    Case(
        "jsonl-wide-containers",
        "smoke.jsonl",
        _jsonl("[" + ",".join(["{}"] * 200_000) + "]"),
        ":1: holds more than 1000 JSON objects and arrays; a smoke step is one flat object",
    ),
    Case(
        "junit-billion-laughs",
        "smoke.xml",
        b'<?xml version="1.0"?>\n<!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>\n'
        b"<testsuite>&b;</testsuite>\n",
        ":2: has a DOCTYPE declaration; JUnit reports need none, and its entities could expand without bound, "
        "so it is refused",
    ),
    Case(
        "over-one-mib",
        "smoke.jsonl",
        b'{"name": "a", "status": "ok"}\n' + b" " * MIB,
        ": is larger than 1 MiB; is this really a smoke report?",
    ),
    # inputs under every bound that still must parse within the memory budget
    Case(
        "tap-plan-1000-one-reported",
        "smoke.tap",
        b"1..1000\nok 1 - up\n",
        None,
    ),
    Case(
        "jsonl-wide-strings",
        "smoke.jsonl",
        _jsonl("[" + ",".join(['"ab"'] * 200_000) + "]"),
        None,
    ),
    Case(
        "jsonl-long-name",
        "smoke.jsonl",
        ('{"name": "3 ' + "x" * 1_000_000 + '", "status": "failed"}\n').encode(),
        None,
    ),
    Case(
        "jsonl-name-padded-with-spaces",
        "smoke.jsonl",
        ('{"name": "1' + " " * 900_000 + 'x", "status": "failed"}\n').encode(),
        None,
    ),
    Case("many-blank-lines", "smoke.tap", b"\n" * (MIB - 10) + b"ok 1 - a\n", None),
    Case(
        "tap-yaml-block-of-a-mib",
        "smoke.tap",
        b"not ok 1 - a\n  ---\n" + b"  k: v\n" * 140_000 + b"  ...\n",
        None,
    ),
    Case(
        "tap-diagnostics-of-a-mib",
        "smoke.tap",
        b"not ok 1 - a\n" + b"# x\n" * 250_000,
        None,
    ),
    Case(
        "junit-failure-text-of-a-mib",
        "smoke.xml",
        b'<testsuite><testcase name="a"><failure message="m">'
        + b"y" * (MIB - 200)
        + b"</failure></testcase></testsuite>",
        None,
    ),
    Case(
        "astral-characters",
        "smoke.jsonl",
        ('{"name": "a", "status": "failed", "message": "' + "\U0001f600" * 200_000 + '"}\n').encode(),
        None,
    ),
]


# issue 15's config files (the values' ranges belong to the typed Settings, the file's shape here)
CONFIG: list[Case] = [
    Case("environments-not-a-table", "config.toml", b"[environments]\nstaging = 5\n", "environments"),
    Case("deadline-hours-1e400", "config.toml", b"deadline_hours = 1e400\n", "deadline_hours"),
    Case("min-free-mb-inf", "config.toml", b"min_free_mb = inf\n", "min_free_mb"),
    Case("timeout-nan", "config.toml", b"timeout = nan\n", "timeout"),
    Case("deep-array", "config.toml", b"timeout = " + b"[" * 5000 + b"]" * 5000 + b"\n", "nests"),
    Case("5000-digits", "config.toml", b"min_free_mb = " + b"9" * 5000 + b"\n", "4300 digits"),
    Case("env-table-bad-key", "config.toml", b"[environments.staging]\nbogus = 1\n", "bogus"),
    Case("env-table-value-list", "config.toml", b"[environments.staging]\ndeadline_hours = [1]\n", "deadline_hours"),
]


# issue 15's ticket files: each must be a typed error naming the file, never a KeyError
TICKETS: list[Case] = [
    Case("key-5", "PM-0123456789ab.json", b'{"key": 5}', "is not a ticket"),
    Case("garbage", "PM-0123456789ab.json", b"garbage", "is not valid JSON"),
    Case("empty", "PM-0123456789ab.json", b"", "is not valid JSON"),
    Case("a-list", "PM-0123456789ab.json", b"[]", "is not a ticket"),
    Case("null", "PM-0123456789ab.json", b"null", "is not a ticket"),
    Case("deep", "PM-0123456789ab.json", b"[" * 5000 + b"]" * 5000, "is not valid JSON"),
]


@dataclass(frozen=True)
class CliCase:
    id: str
    command: str  # which fuzz test starts from it: hook | config show
    settings: tuple[tuple[str, str, bool], ...]  # (option, value, given as a flag (else its env variable))
    refused: bool = True  # exit 2 naming what to fix, nothing written to the ledger; else it runs (0 or 3)


# issue 15's flags and variables, and what fuzzing the CLI found since
CLI: list[CliCase] = [
    CliCase("deployed-at-year-typo", "hook", (("deployed_at", "0026-05-13T08:40:00Z", True),)),
    CliCase("mitigated-at-9999", "hook", (("mitigated_at", "9999-12-31T23:59:59Z", True),)),
    CliCase("mitigated-at-9999-env", "hook", (("mitigated_at", "9999-12-31T23:59:59Z", False),)),
    CliCase("deadline-hours-1e400", "hook", (("deadline_hours", "1e400", True),)),
    CliCase("deadline-hours-nan-env", "hook", (("deadline_hours", "nan", False),)),
    CliCase("rollback-sha-short", "hook", (("rollback_sha", "abc123", True),)),
    # found by fuzzing: bytes that are not UTF-8 (surrogate-escaped by Python) ended in an
    # internal UnicodeEncodeError at the hook lock, the ledger or the log
    CliCase("service-undecodable-bytes", "hook", (("service", "api\udcff\udcfe", True),)),
    CliCase("owner-undecodable-bytes-env", "hook", (("owner", "\udc80", False),)),
    # text, however odd: stored, and escaped where it is shown
    CliCase("owner-right-to-left", "hook", (("owner", "\u202egnp.exe", True),), refused=False),
    CliCase("smoke-report-a-directory", "hook", (("smoke_report", "/", True),)),
    # found by fuzzing: a NEL, a newline or an escape sequence in a path reached the terminal raw
    CliCase("smoke-report-control-characters-env", "hook", (("smoke_report", "0\x850\n\x1b[31m", False),)),
    # found by fuzzing: a template name longer than a file name can be ended in an internal OSError
    CliCase("template-name-too-long-env", "hook", (("template", "9" * 5000, False),)),
    CliCase("tracker-jira-without-url", "hook", (("tracker", "jira", True),)),
    # found by fuzzing: URLs urllib cannot take apart ended in an internal ValueError
    CliCase("tracker-url-broken-ipv6-env", "hook", (("tracker_url", "http://[::1", False),)),
    CliCase(
        "webhook-url-port-out-of-range-env", "hook", (("webhook_url", "https://u:pw@hooks.example:99999/x", False),)
    ),
    CliCase("pipeline-url-bracketed-name", "hook", (("pipeline_url", "http://[x]/", True),)),
    CliCase("deploy-ticket-broken-ipv6", "hook", (("deploy_ticket", "http://[::1", True),), refused=False),
    CliCase("tracker-timeout-zero-env", "hook", (("tracker_timeout", "0", False),)),
    CliCase("timeout-inf-env", "config show", (("timeout", "inf", False),)),
    # found by fuzzing: accepted here, then refused by the collection naming only --timeout
    CliCase("timeout-zero-env", "config show", (("timeout", "0", False),)),
    CliCase("since-999999999d-env", "config show", (("since", "999999999d", False),)),
    CliCase("min-free-mb-5000-digits-env", "config show", (("min_free_mb", "9" * 5000, False),)),
    CliCase("max-total-bytes-1e400-env", "config show", (("max_total_bytes", "1e400GiB", False),)),
    CliCase("jira-priorities-garbage-env", "config show", (("jira_priorities", "==,=x,", False),)),
    CliCase("log-level-bogus-env", "config show", (("log_level", "verbose", False),)),
]
