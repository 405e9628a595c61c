"""Property tests: the extractor takes any line without crashing, cites real lines, and
collapses templates the same way whatever the numbers or the read-block size."""

from __future__ import annotations

import json
import string
import tempfile
from contextlib import contextmanager
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rollback_pm.signals import extract, template
from rollback_pm.signals import scan as scan_module
from tests.signals.bundle import bundle_lines, write_bundle_log

NAMES = ["api-1", "db-1", "web-1"]
# Lines that look like logs: level words, trace heads, frames, JSON and logfmt, any text.
_WORDS = st.sampled_from(
    [
        "ERROR",
        "FATAL:  ",
        "INFO",
        "[emerg]",
        "level=error",
        '{"level":"error","msg":"x"}',
        '{"level":',
        "Traceback (most recent call last):",
        '  File "/app/x.py", line 3, in f',
        "KeyError: 'X'",
        "panic: boom",
        "goroutine 1 [running]:",
        "\tat com.example.App.main(App.java:3)",
        "    at f (/app/i.js:1:2)",
        "Caused by: java.lang.IllegalStateException: x",
        'Exception in thread "main" java.lang.Error: x',
        "app.rb:3:in `x': y (NameError)",
        "\tfrom app.rb:1:in `<main>'",
        "During handling of the above exception, another exception occurred:",
        "",
        " ",
        "Error: x",
        "E0513 08:47:24.123456       1 x.go:1] y",
    ]
)
_TEXT = st.one_of(
    _WORDS,
    st.text(alphabet=st.characters(blacklist_characters="\n\r", blacklist_categories=["Cs"]), max_size=80),
    st.lists(_WORDS, min_size=1, max_size=4).map(" ".join),
)
settings.register_profile("signals", deadline=None, suppress_health_check=[HealthCheck.too_slow])


@contextmanager
def _small_blocks(size: int):
    saved = scan_module.BLOCK
    scan_module.BLOCK = size
    try:
        yield
    finally:
        scan_module.BLOCK = saved


def _run(entries: list[tuple[str, str]], names: list[str] | None = NAMES):
    with tempfile.TemporaryDirectory() as folder:
        lines = bundle_lines(entries)
        log = write_bundle_log(Path(folder, "rollback-x.log"), lines)
        report = extract(log, names=names)
        as_data = json.loads(json.dumps(report.to_dict()).replace(json.dumps(log)[1:-1], "LOG"))
        return lines, as_data, report


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(NAMES), _TEXT), max_size=60))
def test_any_lines_never_crash_and_every_citation_is_a_real_line_of_its_container(entries):
    lines, _, report = _run(entries)
    assert report.stats.lines == len(lines)
    for container in report.containers:
        for signal in container.signals + ([container.first_signal] if container.first_signal else []):
            assert 1 <= signal.ref.first <= signal.ref.last <= len(lines)
            assert lines[signal.ref.first - 1].startswith(f"{container.name} ")
            assert lines[signal.ref.last - 1].startswith(f"{container.name} ")
            assert lines[signal.last_line - 1].startswith(f"{container.name} ")
        if container.tail:
            for entry in container.tail.lines:
                assert lines[entry.line - 1].startswith(f"{container.name} ")


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(NAMES), _TEXT), max_size=60), st.integers(64, 700))
def test_the_read_block_size_changes_nothing(entries, block):
    _, whole, _ = _run(entries)
    with _small_blocks(block):
        _, pieces, _ = _run(entries)
    for report in (whole, pieces):
        report["stats"] = {}
    assert pieces == whole


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(max_size=40), max_size=20))
def test_lines_not_in_the_bundle_format_are_skipped_not_fatal(raw):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder, "rollback-x.log")
        path.write_text("".join(line.replace("\r", " ") + "\n" for line in raw), errors="surrogateescape")
        report = extract(str(path))
    assert report.stats.malformed <= report.stats.candidates + report.stats.lines


@given(_TEXT)
def test_template_is_idempotent(text):
    assert template(template(text)) == template(text)


@given(
    st.lists(
        st.one_of(st.text(alphabet=string.ascii_letters + " :=/.'\"-[]()", max_size=8), st.integers(0, 10**12)),
        max_size=12,
    ),
    st.randoms(use_true_random=False),
)
def test_template_is_the_same_whatever_the_digits(parts, rng):
    line = "".join(str(p) for p in parts)
    other = "".join(rng.choice(string.digits) if ch.isdigit() else ch for ch in line)
    assert template(line) == template(other)
