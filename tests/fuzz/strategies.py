"""Hypothesis strategies for the inputs rollback-pm reads: JSON values, timestamps in every
shape, smoke reports (JSON lines, JUnit XML, TAP), TOML documents."""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from hypothesis import strategies as st

# numbers at and past every bound: SQLite's int64, Python's 4300-digit limit, floats' edges
big_ints = st.one_of(
    st.integers(-10, 10),
    st.integers(-(2**70), 2**70),
    st.sampled_from([2**63 - 1, 2**63, 10**23, 10**100, 999999999999, 1_000_000, 1_000_001, 946684799]),
)
floats = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([1e400, -1e400, 1e308, 5e-324])
scalars = st.none() | st.booleans() | big_ints | floats | st.text(max_size=40)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=25,
)

aware = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(timezone.utc))
timestamps = st.one_of(
    aware.map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ")),
    aware.map(lambda d: d.isoformat()),
    st.sampled_from(
        [
            "0026-05-13T08:40:00Z",
            "9999-12-31T23:59:59Z",
            "9999-12-31T23:59:59-14:00",
            "0001-01-01T00:00:00Z",
            "2026-05-13T08:47:21.123456789Z",
            "2026-13-45T00:00:00Z",
            "yesterday",
            "",
            "1e400",
            "99999999999999999999",
        ]
    ),
    big_ints,
    floats,
    st.text(max_size=30),
)


def dump(value: Any) -> str:
    return json.dumps(value, allow_nan=True)


STATUSES = ["passed", "ok", "PASS", "failed", "failure", "skip", "error", "errored", "flaky", "", "running"]
step_objects = st.fixed_dictionaries(
    {},
    optional={
        "name": st.text(max_size=60) | json_values,
        "status": st.sampled_from(STATUSES) | json_values,
        "step": big_ints | st.text(max_size=30) | floats | st.booleans() | st.from_regex(r"\A\d{1,40}\Z"),
        "ts": timestamps,
        "started_at": timestamps,
        "message": json_values,
    },
)
# mostly well-formed steps with one odd value, so the deeper checks are reached too
good_steps = st.fixed_dictionaries(
    {"name": st.text(min_size=1, max_size=40).filter(str.strip), "status": st.sampled_from(STATUSES[:9])},
    optional={
        "step": st.integers(0, 2_000_000) | st.from_regex(r"\A\d{1,9}\Z"),
        "ts": timestamps,
        "started_at": timestamps,
        "message": st.text(max_size=40) | json_values,
    },
)
jsonl_lines = st.one_of(
    good_steps.map(dump),
    good_steps.map(dump),
    good_steps.map(dump),
    step_objects.map(dump),
    json_values.map(dump),
    st.text(max_size=80),
    st.sampled_from(["", "# comment", "{", "[" * 50 + "]" * 50, '{"name": "a", "status": "ok"}']),
)
jsonl_reports = st.one_of(
    st.lists(jsonl_lines, max_size=30).map("\n".join),
    st.lists(good_steps.map(dump), min_size=1, max_size=30).map("\n".join),
)

_XML_TAGS = ["testsuites", "testsuite", "testcase", "failure", "error", "skipped", "system-out", "properties", "x"]
_XML_ATTRS = ["name", "time", "timestamp", "message", "classname", "tests"]
attr_values = st.one_of(
    st.text(max_size=20),
    timestamps.map(str),
    floats.map(repr),
    big_ints.map(str),
    st.sampled_from(["1e400", "nan", "-1", "1,234.5", "inf", "3 - api health"]),
)


def _element(children: Any) -> Any:
    return st.tuples(
        st.sampled_from(_XML_TAGS),
        st.dictionaries(st.sampled_from(_XML_ATTRS), attr_values, max_size=4),
        st.lists(children, max_size=4),
    )


xml_trees = st.recursive(st.text(max_size=30), _element, max_leaves=30)


def render_xml(node: Any) -> str:
    if isinstance(node, str):
        return escape(node)
    tag, attrs, children = node
    text = " ".join(f"{k}={quoteattr(v)}" for k, v in attrs.items())
    inner = "".join(render_xml(c) for c in children)
    return f"<{tag}{' ' + text if text else ''}>{inner}</{tag}>"


_cases = st.tuples(
    st.just("testcase"),
    st.fixed_dictionaries(
        {"name": st.text(min_size=1, max_size=20).filter(str.strip)},
        optional={"time": attr_values, "timestamp": attr_values, "classname": st.text(max_size=10)},
    ),
    st.lists(
        st.tuples(
            st.sampled_from(["failure", "error", "skipped", "system-out"]),
            st.dictionaries(st.just("message"), st.text(max_size=20), max_size=1),
            st.lists(st.text(max_size=30), max_size=2),
        ),
        max_size=2,
    ),
)
_suites = st.tuples(
    st.just("testsuite"),
    st.dictionaries(st.sampled_from(["name", "timestamp", "tests"]), attr_values, max_size=2),
    st.lists(_cases | xml_trees, min_size=1, max_size=8),
)
junit_reports = st.one_of(
    _suites.map(render_xml),
    st.lists(_suites, min_size=1, max_size=3).map(lambda suites: render_xml(("testsuites", {}, suites))),
    xml_trees.map(render_xml),
    st.tuples(st.sampled_from(["", '<?xml version="1.0"?>\n']), xml_trees.map(render_xml)).map("".join),
    st.text(max_size=200).map(lambda t: "<testsuite>" + t),
)

numbers = big_ints.map(str) | st.from_regex(r"\A\d{1,40}\Z")
tap_lines = st.one_of(
    st.builds(lambda n, t: f"ok {n} - {t}", numbers, st.text(max_size=20)),
    st.builds(lambda n, t: f"not ok {n} {t}", numbers, st.text(max_size=20)),
    st.builds(lambda t, r: f"ok - {t} # SKIP {r}", st.text(max_size=10), st.text(max_size=10)),
    st.builds(lambda t: f"not ok {t} # TODO later", st.text(max_size=10)),
    st.builds(lambda n: f"1..{n}", numbers),
    st.builds(lambda t: f"# {t}", st.text(max_size=20)),
    st.sampled_from(["  ---", "  ...", "TAP version 14", "pragma +strict", "", "    ok 1 - sub", "  message: |"]),
    st.builds(lambda t: f"  message: {t}", st.text(max_size=20)),
    st.builds(lambda t: f"  ts: {t}", timestamps.map(str)),
    st.builds(lambda t: f"Bail out! {t}", st.text(max_size=20)),
    st.text(max_size=40),
)
tap_reports = st.lists(tap_lines, max_size=40).map("\n".join)


# --- TOML


def toml_key(name: str) -> str:
    return name if name.replace("_", "").replace("-", "").isalnum() and name.isascii() else json.dumps(name)


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    return json.dumps(str(value))


toml_scalars = st.one_of(
    st.booleans(),
    big_ints,
    floats,
    st.text(max_size=30),
    st.sampled_from(["90s", "15m", "4h", "1d", "64MiB", "1e400", "-1", "inf", "999999999d", "file", "jira"]),
)
toml_values = st.recursive(
    toml_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)
# the real option names, so values reach the converters; a few unknown keys besides
OPTION_NAMES = [
    "state_dir",
    "evidence_dir",
    "timeout",
    "deadline_hours",
    "warn_before",
    "min_free_mb",
    "max_bytes_per_container",
    "max_total_bytes",
    "tracker",
    "tracker_timeout",
    "tracker_retry_budget",
    "jira_api",
    "jira_priorities",
    "label",
    "all_states",
    "since",
    "deployed_at",
    "mitigated_at",
    "severity",
    "log_level",
    "smoke_format",
    "token_file",
    "environment",
    "bogus",
]
environment_tables = st.dictionaries(
    st.sampled_from(["staging", "production", "x y"]),
    toml_scalars | st.dictionaries(st.sampled_from(OPTION_NAMES), toml_values, max_size=3),
    max_size=2,
)
toml_documents = st.fixed_dictionaries(
    {}, optional=dict.fromkeys(OPTION_NAMES, toml_values) | {"environments": environment_tables | toml_scalars}
).map(lambda doc: "\n".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in doc.items()))
