"""Smoke-test reports: JSON lines, JUnit XML and TAP, parsed into SmokeStep rows.

Every malformed input raises SmokeReportError naming the file and, wherever there is
one, the line: the reader is an on-call engineer who has to fix the pipeline step that
wrote the report, not read a traceback.

Every parser is bounded, so no report, however odd, costs more than a few MiB or a
moment: the file's size, the number of steps, step and plan numbers, the nesting of JSON
values and XML elements, durations and timestamps (2000-01-01 to now + 1 day) all have a
limit, and a report beyond one is refused with the allowed range. A TAP plan is a claim
about how many steps there were, never a list to build: unreported steps are summarised
as ranges.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from xml.parsers import expat

from rollback_pm.errors import SmokeReportError, UsageError
from rollback_pm.facts.redaction import redact_steps
from rollback_pm.models import SmokeStep
from rollback_pm.timeutil import EARLIEST, iso, parse_ts, utcnow

FORMATS = ("jsonl", "junit", "tap")
_ALIASES = {"json": "jsonl", "jsonlines": "jsonl", "ndjson": "jsonl", "xml": "junit", "junit-xml": "junit"}
_EXTENSIONS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".xml": "junit", ".tap": "tap"}
MAX_BYTES = 1024 * 1024  # a smoke report is a few KB; a MiB holds a thousand steps with long messages
MAX_STEPS = 1000  # steps in one report, and in all reports of one run
MAX_STEP_NUMBER = 1_000_000  # azaion numbers its steps 1-6; anything above this is not a step number
MAX_DEPTH = 32  # nesting of JSON values in one line, and of XML elements
MAX_JSON_CONTAINERS = 1000  # JSON objects and arrays in one line
MAX_ELEMENTS = 20_000  # XML elements in a JUnit report (a testcase brings a few)
MAX_DURATION_S = 86400.0  # a testcase's time="..." in seconds
MAX_NAME = 200  # characters of a step's name kept
MAX_MESSAGE = 1000  # characters of a step's message kept for the draft
AHEAD = timedelta(days=1)  # how far past now a clock may run

_STATUS = {
    "passed": "passed",
    "pass": "passed",
    "ok": "passed",
    "success": "passed",
    "succeeded": "passed",
    "failed": "failed",
    "fail": "failed",
    "failure": "failed",
    "skipped": "skipped",
    "skip": "skipped",
    "error": "error",
    "errored": "error",
}
# "3 - api health", "step 3: api health", "3) api health": azaion's smoke.sh numbers its steps.
_LEADING_NUMBER = re.compile(r"^\s*(?:step\s*)?(\d{1,3})\s*(?:[-:.)]\s*|\s+)(\S.*)$", re.IGNORECASE)
_EPOCH = re.compile(r"^\d+(\.\d+)?$")
_DIGITS = re.compile(r"\d+", re.ASCII)
_TS_EXAMPLE = "use ISO 8601 (2026-05-13T08:47:21Z) or epoch seconds"


def parse_reports(paths: Sequence[Path], fmt: str | None = None) -> list[SmokeStep]:
    """All steps of several reports, in the order given (``--smoke-report`` is repeatable)."""
    steps: list[SmokeStep] = []
    for path in paths:
        steps.extend(parse_report(Path(path), fmt))
        if len(steps) > MAX_STEPS:
            raise SmokeReportError(
                str(path),
                f"the {len(paths)} smoke reports hold {len(steps)} steps so far, more than the {MAX_STEPS} "
                "one run may record; pass only the smoke test's own reports",
            )
    return redact_steps(steps)  # step names and messages are published: no secret gets past here


def parse_report(path: Path, fmt: str | None = None) -> list[SmokeStep]:
    """Parse one report; ``fmt`` is jsonl, junit or tap, or None to detect it from the content."""
    path = Path(path)
    text = _read(path)
    kind = _given_format(path, fmt) if fmt else detect_format(path, text)
    return _PARSERS[kind](str(path), text)


def detect_format(path: Path, text: str) -> str:
    """The format from the first meaningful line; the extension only breaks ties."""
    by_extension = _EXTENSIONS.get(Path(path).suffix.lower())
    for lineno, line in _lines(text):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):  # comments are allowed in JSON lines and TAP
            continue
        if stripped.startswith("<"):
            return "junit"
        if stripped.startswith("{"):
            return "jsonl"
        if (
            _TAP_VERSION.match(stripped)
            or _TAP_PLAN.match(stripped)
            or _TAP_TEST.match(stripped)
            or _TAP_BAIL.match(stripped)
        ):
            return "tap"
        if by_extension:  # let that format's parser name the bad line
            return by_extension
        raise SmokeReportError(
            str(path),
            f"cannot tell the format from {_clip(stripped, 60)!r}: expected JSON lines, JUnit XML or TAP; "
            "give --smoke-format",
            lineno,
        )
    raise SmokeReportError(str(path), "is empty: no smoke steps in it; check that the smoke test wrote its report")


def _given_format(path: Path, fmt: str) -> str:
    kind = _ALIASES.get(fmt.strip().lower(), fmt.strip().lower())
    if kind not in FORMATS:
        raise SmokeReportError(str(path), f"unknown smoke report format {fmt!r}; use jsonl, junit or tap")
    return kind


def _read(path: Path) -> str:
    where = str(path)
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise SmokeReportError(where, "no such file; check the path given to --smoke-report") from None
    except IsADirectoryError:
        raise SmokeReportError(where, "is a directory, not a report file") from None
    except PermissionError:
        raise SmokeReportError(where, "permission denied; make it readable by the user running rollback-pm") from None
    except OSError as exc:
        raise SmokeReportError(where, f"cannot be read: {exc.strerror or exc}") from None
    if len(data) > MAX_BYTES:
        raise SmokeReportError(
            where, f"is larger than {MAX_BYTES // (1024 * 1024)} MiB; is this really a smoke report?"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise SmokeReportError(
            where, f"is not UTF-8 (byte 0x{data[exc.start]:02x} at column {column}); write the report as UTF-8", line
        ) from None
    return text.removeprefix("\ufeff")


def _lines(text: str) -> Iterator[tuple[int, str]]:
    """Numbered lines as an editor counts them (only \\n ends a line; \\r\\n tolerated).

    One line at a time: a list of a million short lines would cost far more than the text.
    """
    start, number = 0, 1
    while True:
        end = text.find("\n", start)
        if end < 0:
            yield number, text[start:].removesuffix("\r")
            return
        yield number, text[start:end].removesuffix("\r")
        start, number = end + 1, number + 1


def _clip(text: str, limit: int = MAX_MESSAGE) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _show(value: Any) -> str:
    return _clip(json.dumps(value, ensure_ascii=False), 60)


def _too_many_steps() -> str:
    return (
        f"more than {MAX_STEPS} steps; a smoke report holds at most {MAX_STEPS} (is this a whole test suite's report?)"
    )


def _normal_status(raw: str) -> str | None:
    return _STATUS.get(raw.strip().lower())


def _name(text: str) -> str:
    return _clip(text.strip(), MAX_NAME)


def _split_number(name: str) -> tuple[int | None, str]:
    """(3, "api health") from "3 - api health"; (None, name) when it has no leading number."""
    match = _LEADING_NUMBER.match(name[: MAX_NAME + 10])
    if not match:
        return None, name
    return int(match.group(1)), match.group(2).strip()


class BadTime(ValueError):
    """A timestamp that cannot be read, or lies outside the window; ``why`` says which."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


def _window() -> str:
    return f"a smoke step's time must lie between {EARLIEST.date()} and now + 1 day ({iso(utcnow() + AHEAD)})"


def _epoch(value: float) -> datetime:
    if not math.isfinite(value):
        raise BadTime(_TS_EXAMPLE)
    # 13-digit epochs are milliseconds (as seconds they would be past the year 5000)
    seconds = value / 1000 if abs(value) >= 1e11 else value
    if not EARLIEST.timestamp() <= seconds <= (utcnow() + AHEAD).timestamp():
        raise BadTime(_window())
    return datetime.fromtimestamp(seconds, timezone.utc)


def _timestamp(value: Any) -> datetime | None:
    """ISO 8601 or epoch seconds (number or digits) inside the window; BadTime otherwise."""
    if value is None or value == "":
        return None
    parsed: datetime | None
    try:
        if isinstance(value, bool):
            raise BadTime(_TS_EXAMPLE)
        if isinstance(value, (int, float)):
            return _epoch(value)
        if not isinstance(value, str):
            raise BadTime(_TS_EXAMPLE)
        text = value.strip()
        if _EPOCH.match(text):
            return _epoch(float(text))
        parsed = parse_ts(text)  # naive times are taken as UTC; Docker's zero time is "none"
    except BadTime:
        raise
    except (UsageError, OverflowError, OSError, ValueError):
        raise BadTime(_TS_EXAMPLE) from None
    if parsed is not None and not EARLIEST <= parsed <= utcnow() + AHEAD:
        raise BadTime(_window())
    return parsed


def _number(src: str, what: str, digits: str, lineno: int | None, limit: int = MAX_STEP_NUMBER) -> int:
    """A whole number from 0 to ``limit``, from ASCII digits (never a 4300-digit int)."""
    significant = digits.lstrip("0") or "0"
    if len(significant) > len(str(limit)) or int(significant) > limit:
        raise SmokeReportError(src, f"{what} {_clip(digits, 24)} is out of range: use 0 to {limit}", lineno)
    return int(significant)


def _json_too_big(line: str) -> str | None:
    """Why a JSON line is refused before it is parsed (nested too deep, too many containers)."""
    depth = containers = 0
    for token in _JSON_STRUCTURE.finditer(line):
        mark = token.group()
        if mark in "[{":
            depth += 1
            containers += 1
            if depth > MAX_DEPTH:
                return f"nested deeper than {MAX_DEPTH} levels; a smoke step is one flat JSON object"
            if containers > MAX_JSON_CONTAINERS:
                return f"holds more than {MAX_JSON_CONTAINERS} JSON objects and arrays; a smoke step is one flat object"
        elif mark in "]}":
            depth -= 1
    return None


# strings (skipped whole, so brackets inside them do not count) and brackets
_JSON_STRUCTURE = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')


# --- JSON lines ----------------------------------------------------------------------------


def _parse_jsonl(src: str, text: str) -> list[SmokeStep]:
    steps: list[SmokeStep] = []
    for lineno, line in _lines(text):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        refused = _json_too_big(stripped)
        if refused:
            raise SmokeReportError(src, refused, lineno)
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SmokeReportError(src, f"bad JSON: {exc.msg} at column {exc.colno}", lineno) from None
        except ValueError:  # Python reads no integer of more than 4300 digits
            raise SmokeReportError(src, "bad JSON: a number has more than 4300 digits", lineno) from None
        except RecursionError:  # _json_too_big keeps this from happening; a message all the same
            raise SmokeReportError(src, f"nested deeper than {MAX_DEPTH} levels", lineno) from None
        if not isinstance(obj, dict):
            raise SmokeReportError(
                src, f"expected one JSON object per line, got {type(obj).__name__} {_show(obj)}", lineno
            )
        if len(steps) >= MAX_STEPS:
            raise SmokeReportError(src, _too_many_steps(), lineno)
        steps.append(_jsonl_step(src, obj, lineno))
    if not steps:
        raise SmokeReportError(src, "is empty: no smoke steps in it; check that the smoke test wrote its report")
    return steps


def _jsonl_step(src: str, obj: dict[str, Any], lineno: int) -> SmokeStep:
    for key in ("name", "status"):
        if obj.get(key) is None:
            raise SmokeReportError(src, f'missing "{key}" (every step needs "name" and "status")', lineno)
        if not isinstance(obj[key], str) or not obj[key].strip():
            raise SmokeReportError(src, f'"{key}" must be a non-empty string, got {_show(obj[key])}', lineno)
    status = _normal_status(obj["status"])
    if status is None:
        raise SmokeReportError(
            src, f"unknown status {_show(obj['status'])}; use passed, failed, skipped or error", lineno
        )
    name = _name(obj["name"])
    step = obj.get("step")
    if step is None or step == "":
        step, name = _split_number(name)
    elif isinstance(step, str) and _DIGITS.fullmatch(step.strip()):
        step = _number(src, '"step"', step.strip(), lineno)
    elif isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise SmokeReportError(src, f'"step" must be a whole number, got {_show(step)}', lineno)
    else:
        step = _number(src, '"step"', str(step), lineno)
    times: dict[str, datetime | None] = {}
    for key in ("ts", "started_at"):
        try:
            times[key] = _timestamp(obj.get(key))
        except BadTime as exc:
            raise SmokeReportError(src, f'bad timestamp "{key}": {_show(obj[key])}; {exc.why}', lineno) from None
    message = obj.get("message")
    if message is None:
        message = ""
    elif not isinstance(message, str):
        message = json.dumps(message, ensure_ascii=False)
    return SmokeStep(
        name=name,
        status=status,
        step=step,
        ts=times["ts"],
        started_at=times["started_at"],
        message=_clip(message.strip()),
        source=src,
    )


# --- JUnit XML -----------------------------------------------------------------------------


@dataclass
class _Node:
    tag: str
    attrs: dict[str, str]
    line: int
    children: list[_Node] = field(default_factory=list)
    text_parts: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(self.text_parts)


class _Refused(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


def _parse_xml(src: str, text: str) -> _Node:
    """A small element tree with the line of every element, straight from expat.

    ElementTree drops line numbers, and errors must name the line. A DOCTYPE is refused
    before expat reads its internal subset, so no entity is ever declared or expanded
    (no "billion laughs", no external entity); JUnit reports never carry one.
    """
    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    stack: list[_Node] = []
    roots: list[_Node] = []
    counts = {"elements": 0, "testcases": 0}

    def start(tag: str, attrs: dict[str, str]) -> None:
        line = parser.CurrentLineNumber
        counts["elements"] += 1
        if len(stack) >= MAX_DEPTH:
            raise _Refused(line, f"elements nest deeper than {MAX_DEPTH} levels; JUnit needs three or four")
        if counts["elements"] > MAX_ELEMENTS:
            raise _Refused(line, f"has more than {MAX_ELEMENTS} XML elements; a smoke report needs a few per step")
        if tag == "testcase":
            counts["testcases"] += 1
            if counts["testcases"] > MAX_STEPS:
                raise _Refused(line, _too_many_steps())
        node = _Node(tag, attrs, line)
        (stack[-1].children if stack else roots).append(node)
        stack.append(node)

    def end(_tag: str) -> None:
        stack.pop()

    def chars(data: str) -> None:
        if stack:
            stack[-1].text_parts.append(data)

    def doctype(*_args: Any) -> None:
        raise _Refused(
            parser.CurrentLineNumber,
            "has a DOCTYPE declaration; JUnit reports need none, and its "
            "entities could expand without bound, so it is refused",
        )

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = chars
    parser.StartDoctypeDeclHandler = doctype
    try:
        parser.Parse(text, True)
    except _Refused as exc:
        raise SmokeReportError(src, exc.message, exc.line) from None
    except expat.ExpatError as exc:
        raise SmokeReportError(
            src, f"malformed XML: {expat.ErrorString(exc.code)} at column {exc.offset + 1}", exc.lineno
        ) from None
    return roots[0]


def _parse_junit(src: str, text: str) -> list[SmokeStep]:
    root = _parse_xml(src, text)
    if root.tag not in ("testsuites", "testsuite"):
        raise SmokeReportError(src, f"root element <{root.tag}> is not <testsuites> or <testsuite>", root.line)
    steps: list[SmokeStep] = []
    _junit_suite(src, root, None, steps)
    if not steps:
        raise SmokeReportError(src, "has no <testcase> elements: no smoke steps in it", root.line)
    return steps


def _xml_time(src: str, node: _Node, attr: str) -> datetime | None:
    value = node.attrs.get(attr)
    try:
        return _timestamp(value)
    except BadTime as exc:
        raise SmokeReportError(
            src, f'bad {attr}="{_clip(value or "", 60)}" on <{node.tag}>; {exc.why}', node.line
        ) from None


def _junit_suite(src: str, suite: _Node, clock: datetime | None, steps: list[SmokeStep]) -> datetime | None:
    """Walk a suite in document order; the clock is the suite's timestamp plus the times so far."""
    clock = _xml_time(src, suite, "timestamp") or clock
    for child in suite.children:
        if child.tag == "testsuite":
            clock = _junit_suite(src, child, clock, steps)
        elif child.tag == "testcase":
            step = _junit_case(src, child, clock, len(steps) + 1)
            steps.append(step)
            clock = step.ts or clock
    return clock


def _junit_case(src: str, case: _Node, clock: datetime | None, order: int) -> SmokeStep:
    raw_name = _name(case.attrs.get("name") or "")
    if not raw_name:
        raise SmokeReportError(src, "<testcase> has no name attribute", case.line)
    duration = None
    if case.attrs.get("time", "").strip():
        try:
            duration = float(case.attrs["time"].replace(",", ""))
            if not 0 <= duration <= MAX_DURATION_S:  # NaN and infinities too
                raise ValueError
        except ValueError:
            raise SmokeReportError(
                src,
                f'bad time="{_clip(case.attrs["time"], 60)}" on <testcase>: expected seconds from 0 to {MAX_DURATION_S:g}',
                case.line,
            ) from None
    started = _xml_time(src, case, "timestamp") or clock
    finished = started + timedelta(seconds=duration) if started and duration is not None else started
    if finished is not None and finished > utcnow() + AHEAD:
        raise SmokeReportError(
            src,
            f"<testcase> ends at {iso(finished)} (its suite's timestamp plus the times so far); {_window()}",
            case.line,
        )
    status, message = "passed", ""
    for child in case.children:
        kind = {"failure": "failed", "error": "error", "skipped": "skipped"}.get(child.tag)
        if kind:
            status = kind
            # the message attribute is the summary, the text often the curl output or traceback
            parts = [child.attrs.get("message", "").strip(), child.text.strip()]
            message = "\n".join(dict.fromkeys(p for p in parts if p))
            break
    number, name = _split_number(raw_name)
    return SmokeStep(
        name=name,
        status=status,
        step=number if number is not None else order,
        ts=finished,
        started_at=started,
        message=_clip(message),
        source=src,
    )


# --- TAP -----------------------------------------------------------------------------------

_TAP_VERSION = re.compile(r"^TAP version \d+$", re.IGNORECASE)
_TAP_PLAN = re.compile(r"^1\.\.(\d+)\s*(?:#.*)?$")
_TAP_TEST = re.compile(r"^(not ok|ok)\b(?:\s+(\d+))?(.*)$")
_TAP_BAIL = re.compile(r"^Bail out!\s*(.*)$")
_TAP_PRAGMA = re.compile(r"^pragma [+-]\w+$")
_TAP_DIRECTIVE = re.compile(r"^(skip\w*|todo)\b:?\s*(.*)$", re.IGNORECASE)
_UNESCAPED_HASH = re.compile(r"(?<!\\)#")
_YAML_KEY = re.compile(r"^([A-Za-z_][\w.-]*):(?:\s+(.*))?$")
_YAML_LINES = 200  # lines of a TAP YAML block kept
_DIAGNOSTIC_LINES = 50  # '#' lines kept under a failed test


@dataclass
class _TapState:
    steps: list[SmokeStep] = field(default_factory=list)
    plan: int | None = None
    bail: str | None = None
    diagnostics: list[str] = field(default_factory=list)  # '#' lines after a failed test
    last: SmokeStep | None = None  # the latest top-level test: '#' diagnostics belong to it
    yaml_owner: SmokeStep | None = None  # set only on the line right after a top-level test


def _parse_tap(src: str, text: str) -> list[SmokeStep]:
    state = _TapState()
    lines = _lines(text)  # one pass; a YAML block reads on from the same iterator
    for lineno, line in lines:
        stripped = line.strip()
        indented = line[:1] in (" ", "\t")
        owner, state.yaml_owner = state.yaml_owner, None
        if not stripped:
            state.yaml_owner = owner
            continue
        if stripped == "---":
            _tap_yaml(src, lines, lineno, owner)
            continue
        if indented:  # TAP 14 subtests: their parent's line summarises them
            if not (stripped.startswith("#") or _TAP_TEST.match(stripped) or _TAP_PLAN.match(stripped)):
                raise SmokeReportError(src, _not_tap(stripped), lineno)
            continue
        if _TAP_VERSION.match(stripped) or _TAP_PRAGMA.match(stripped):
            continue
        if stripped.startswith("#"):
            if state.last is not None and state.last.failed and len(state.diagnostics) < _DIAGNOSTIC_LINES:
                state.diagnostics.append(_clip(stripped.lstrip("#").strip()))
            continue
        _close_diagnostics(state)
        plan = _TAP_PLAN.match(stripped)
        test = _TAP_TEST.match(stripped)
        bail = _TAP_BAIL.match(stripped)
        if plan:
            state.plan = _plan(src, plan.group(1), lineno)
        elif test:
            if len(state.steps) >= MAX_STEPS:
                raise SmokeReportError(src, _too_many_steps(), lineno)
            state.last = state.yaml_owner = _tap_step(src, test, len(state.steps) + 1, lineno)
            state.steps.append(state.last)
        elif bail:
            state.bail = bail.group(1).strip() or "no reason given"
            break
        else:
            raise SmokeReportError(src, _not_tap(stripped), lineno)
    _close_diagnostics(state)
    _tap_unreported(state)
    if not state.steps and state.plan != 0:
        raise SmokeReportError(src, "is empty: no smoke steps in it; check that the smoke test wrote its report")
    for step in state.steps:
        step.source = src
    return state.steps


def _plan(src: str, digits: str, lineno: int) -> int:
    significant = digits.lstrip("0") or "0"
    if len(significant) > len(str(MAX_STEPS)) or int(significant) > MAX_STEPS:
        raise SmokeReportError(
            src,
            f"plan 1..{_clip(digits, 24)} declares more steps than a smoke report may hold: "
            f"plans from 1..0 to 1..{MAX_STEPS} are read",
            lineno,
        )
    return int(significant)


def _not_tap(line: str) -> str:
    return (
        f"not a TAP line: {_clip(line, 60)!r} (expected 'ok N - name', 'not ok N - name', a plan '1..N', "
        "a '#' comment or an indented YAML block)"
    )


def _tap_step(src: str, match: re.Match[str], order: int, lineno: int) -> SmokeStep:
    ok = match.group(1) == "ok"
    rest = match.group(3)
    description, directive, reason = rest, None, ""
    hashed = _UNESCAPED_HASH.search(rest)
    if hashed:
        description = rest[: hashed.start()]
        found = _TAP_DIRECTIVE.match(rest[hashed.end() :].strip())
        if found:
            directive = "skip" if found.group(1).lower().startswith("skip") else "todo"
            reason = _clip(found.group(2).strip())
    name = _name(description.strip().removeprefix("-").strip().replace("\\#", "#"))
    if directive == "skip":
        status = "skipped"
    elif directive == "todo":  # a failing TODO test is expected to fail: not the cause of a rollback
        status = "passed" if ok else "skipped"
    else:
        status = "passed" if ok else "failed"
    message = f"{directive.upper()}: {reason}" if directive and reason else (directive or "").upper()
    number = _number(src, "test number", match.group(2), lineno) if match.group(2) else None
    if number is None:
        number, name = _split_number(name)
    return SmokeStep(
        name=name or f"step {number or order}",
        status=status,
        step=number if number is not None else order,
        message=message,
        source=src,
    )


def _tap_yaml(src: str, lines: Iterator[tuple[int, str]], opened: int, owner: SmokeStep | None) -> None:
    """Read a YAML diagnostics block up to its '...'; its message and ts go to the owning test.

    Only its first lines are kept: the message is clipped anyway, and a block that runs on
    for a megabyte must not be held in memory line by line.
    """
    block: list[tuple[int, str]] = []
    for lineno, line in lines:
        if line.strip() == "...":
            break
        if len(block) < _YAML_LINES:
            block.append((lineno, line))
    else:
        raise SmokeReportError(src, "YAML block is not closed with '...'", opened)
    if owner is None:
        return  # a subtest's block, or one with no test right before it: nothing to attach it to
    fields = _yaml_fields(block)
    if "message" in fields:
        owner.message = _clip(fields["message"][0].strip())
    for key in ("ts", "timestamp", "datetime"):
        if key in fields:
            value, lineno = fields[key]
            try:
                owner.ts = _timestamp(value)
            except BadTime as exc:
                raise SmokeReportError(src, f"bad timestamp {key}: {_clip(value, 60)!r}; {exc.why}", lineno) from None
            break


def _yaml_fields(block: list[tuple[int, str]]) -> dict[str, tuple[str, int]]:
    """Top-level ``key: scalar`` pairs of a TAP YAML block (block scalars | and > too).

    TAP producers write flat diagnostics; nested mappings are skipped, so no YAML
    library (and none of its surprises) is needed.
    """
    content = [(n, text) for n, text in block if text.strip() and not text.strip().startswith("#")]
    if not content:
        return {}
    base = min(len(text) - len(text.lstrip()) for _, text in content)
    fields: dict[str, tuple[str, int]] = {}
    position = 0
    while position < len(content):
        lineno, line = content[position]
        position += 1
        match = _YAML_KEY.match(line[base:]) if len(line) - len(line.lstrip()) == base else None
        if not match:
            continue
        key, value = match.group(1), (match.group(2) or "").strip()
        if value[:1] in ("|", ">"):
            body: list[str] = []
            while position < len(content) and len(content[position][1]) - len(content[position][1].lstrip()) > base:
                body.append(content[position][1].strip())
                position += 1
            value = ("\n" if value[0] == "|" else " ").join(body)
        elif len(value) >= 2 and value[0] == value[-1] == "'":
            value = value[1:-1].replace("''", "'")
        elif len(value) >= 2 and value[0] == value[-1] == '"':
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                value = value[1:-1]
        fields.setdefault(key, (value, lineno))
    return fields


def _close_diagnostics(state: _TapState) -> None:
    """Perl-style '# ...' lines under a failed test explain it when it has no YAML message."""
    if state.diagnostics and state.last is not None and not state.last.message:
        state.last.message = _clip("\n".join(d for d in state.diagnostics if d))
    state.diagnostics = []


def _tap_unreported(state: _TapState) -> None:
    """Planned steps that never reported: the run stopped there (a crash or a bail out).

    The first one is where the run stopped (an error, unless a step had failed already);
    the rest are summarised one row per run of consecutive numbers, so a plan of 1..1000
    with two steps reported adds two rows, not 998.
    """
    reported = {s.step for s in state.steps}
    if state.plan is not None:
        runs = _missing_runs(reported, state.plan)
    elif state.bail is not None:
        first = max((s.step or 0 for s in state.steps), default=0) + 1
        runs = [(first, first)] if first <= MAX_STEP_NUMBER else []
    else:
        return
    why = f"Bail out! {state.bail}" if state.bail else "the smoke run stopped before reporting it"
    already_failed = any(s.failed for s in state.steps)
    if not runs and state.bail is not None and not already_failed:  # bailed out after the largest number
        state.steps.append(
            SmokeStep(name="the next step (not reported)", status="error", message=f"never reported: {why}")
        )
    if runs and not already_failed:
        first, last = runs[0]
        state.steps.append(
            SmokeStep(
                name=f"step {first} (not reported)",
                status="error",
                step=first,
                message=f"planned but never reported: {why}",
            )
        )
        runs[0] = (first + 1, last)
    for first, last in runs:
        if first > last:
            continue
        state.steps.append(
            SmokeStep(
                name=f"step {first} (not reported)" if first == last else f"steps {first}-{last} (not reported)",
                status="skipped",
                step=first,
                message="not run: the smoke run stopped at an earlier step",
            )
        )


def _missing_runs(reported: set[int | None], plan: int) -> list[tuple[int, int]]:
    """(first, last) of each run of numbers in 1..plan that no step reported."""
    runs: list[tuple[int, int]] = []
    start = 1
    for number in sorted(n for n in reported if n is not None and 1 <= n <= plan):
        if number > start:
            runs.append((start, number - 1))
        start = number + 1
    if start <= plan:
        runs.append((start, plan))
    return runs


_PARSERS: dict[str, Callable[[str, str], list[SmokeStep]]] = {
    "jsonl": _parse_jsonl,
    "junit": _parse_junit,
    "tap": _parse_tap,
}
