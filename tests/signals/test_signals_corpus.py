"""Real log excerpts per format (tests/signals/corpus): every signal found, nothing else.

Each ``<case>.log`` is what a program printed (``<case>.json`` says which program and
how, or marks hand-written format samples); ``<case>.json`` lists the signals expected,
in order, with their line spans, and the suspected cause. The excerpt is run alone, and
again interleaved with a chatty neighbour as in a merged bundle log, where the same
signals must come out, each citing lines that really are that container's.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rollback_pm.signals import extract
from rollback_pm.signals.traces import MAX_LINE_CHARS
from tests.signals.bundle import bundle_lines, interleave, write_bundle_log

CORPUS = Path(__file__).parent / "corpus"
CASES = sorted(CORPUS.glob("*/*.log"))


def _cut(text: str) -> str:
    return text if len(text) <= MAX_LINE_CHARS else text[: MAX_LINE_CHARS - 1] + "…"


def _expected(case: Path) -> dict:
    return json.loads(case.with_suffix(".json").read_text())


def _found(report) -> list[dict]:
    signals = sorted(report.container("svc").signals, key=lambda s: s.ref.first)
    return [
        {
            "lines": f"{s.ref.first}-{s.ref.last}",
            "kind": s.kind,
            "level": s.level,
            "format": s.format,
            "language": s.language,
            "count": s.count,
            "text": s.text,
        }
        for s in signals
    ]


def test_every_format_has_a_case():
    assert {case.parent.name for case in CASES} >= {
        "python",
        "java",
        "go",
        "node",
        "ruby",
        "postgresql",
        "nginx",
        "json",
        "logfmt",
        "plain",
    }


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.parent.name}/{c.stem}")
def test_corpus_case_alone(case, tmp_path):
    expected = _expected(case)
    lines = case.read_text().splitlines()
    log = write_bundle_log(tmp_path / "rollback-x.log", bundle_lines(("svc", line) for line in lines))

    report = extract(log, names=["svc"])

    assert _found(report) == expected["signals"]
    cause = report.suspected_cause
    assert (cause.text if cause else None) == expected["suspected_cause"]
    for signal in report.container("svc").signals:
        excerpt = signal.excerpt if not signal.elided else signal.excerpt[:1]
        assert excerpt[0] == _cut(lines[signal.ref.first - 1])


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.parent.name}/{c.stem}")
def test_corpus_case_interleaved_with_a_neighbour(case, tmp_path):
    expected = _expected(case)
    lines = case.read_text().splitlines()
    bundle = bundle_lines(interleave("svc", lines))
    log = write_bundle_log(tmp_path / "rollback-x.log", bundle)

    report = extract(log, names=["svc", "web-1"])

    found = _found(report)
    assert [{k: v for k, v in s.items() if k != "lines"} for s in found] == [
        {k: v for k, v in s.items() if k != "lines"} for s in expected["signals"]
    ]
    assert report.container("web-1").signals == []
    for signal in report.container("svc").signals:
        first, last = bundle[signal.ref.first - 1], bundle[signal.ref.last - 1]
        assert first.startswith("svc ") and last.startswith("svc ")
        assert _cut(first.split(" ", 3)[3]) == signal.excerpt[0]
        if not signal.elided:
            assert _cut(last.split(" ", 3)[3]) == signal.excerpt[-1]
