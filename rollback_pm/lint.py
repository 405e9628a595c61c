"""Is a postmortem finished? Findings with line numbers, for the on-call engineer, CI and cron.

Each template declares, in ``SPECS`` below, its required sections, header fields, the
sections where the root cause is written and those that hold action items. Guidance is
quoted (``> ...``) in our templates, so quotes, HTML comments and ``log`` code blocks
(verbatim evidence) are never read as answers.

Rules: placeholder, seed-placeholder, missing-section, empty-section, header-field,
human-error, action-ticket, action-date, overdue (only while other findings remain: a
complete postmortem handed in late is still complete).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from rollback_pm.errors import UsageError
from rollback_pm.markdown import PLACEHOLDER_RE
from rollback_pm.timeutil import iso, parse_ts

__all__ = [
    "SPECS",
    "ActionRow",
    "Finding",
    "TemplateSpec",
    "action_rows",
    "cell_spans",
    "date_in",
    "detect_template",
    "has_placeholder",
    "lint_file",
    "lint_text",
]


@dataclass
class Finding:
    path: str
    line: int
    rule: str
    message: str


@dataclass(frozen=True)
class TemplateSpec:
    """What a template requires. Section names are matched after ``_norm`` (lower case,
    numbering and trailing punctuation dropped); ``"timeline"`` also matches
    ``"Timeline (UTC)"`` and ``"appendix"`` matches ``"Appendix: evidence links"``."""

    name: str
    required_sections: tuple[str, ...]
    header_fields: tuple[str, ...]
    root_cause_sections: tuple[str, ...]
    action_sections: tuple[str, ...]


SPECS: dict[str, TemplateSpec] = {
    "azaion": TemplateSpec(
        "azaion",
        required_sections=(
            "header",
            "timeline",
            "detection",
            "impact",
            "root cause",
            "repair",
            "detection gaps",
            "prevention",
            "what went well",
            "what was lucky",
            "appendix",
        ),
        header_fields=(
            "Incident date",
            "Detection time (UTC)",
            "Mitigation time (UTC)",
            "Duration (user-impacting)",
            "Affected environment",
            "Detected by",
            "Severity",
            "Deploy SHA at incident start",
            "Rollback SHA (if rolled back)",
        ),
        root_cause_sections=("root cause",),
        action_sections=("prevention",),
    ),
    "blameless": TemplateSpec(
        "blameless",
        required_sections=(
            "metadata",
            "summary",
            "impact",
            "timeline",
            "root cause",
            "what went right",
            "what went wrong",
            "action items",
            "lessons",
            "related artefacts",
        ),
        header_fields=(
            "Incident ID",
            "Date / Time (UTC)",
            "Duration",
            "Severity",
            "Affected tenants",
            "Affected regions",
            "On-call primary",
            "On-call secondary",
            "Incident commander",
            "Recorder",
        ),
        root_cause_sections=("root cause",),
        action_sections=("action items",),
    ),
    "sev": TemplateSpec(
        "sev",
        required_sections=(
            "summary",
            "one-line summary",
            "impact",
            "timeline",
            "what happened",
            "why it happened",
            "trigger",
            "detection",
            "detection gaps",
            "what went well",
            "what didn't go well",
            "where we got lucky",
            "immediate fix",
            "verification",
            "action items",
            "how do we prevent recurrence",
            "how do we detect faster",
            "how do we recover faster",
            "key takeaways",
        ),
        header_fields=(
            "Incident ID",
            "Date",
            "Duration",
            "Severity",
            "Status",
            "Author",
            "Incident Commander",
            "Reviewers",
        ),
        root_cause_sections=("what happened", "why it happened", "trigger"),
        action_sections=("action items",),
    ),
    "finance": TemplateSpec(
        "finance",
        required_sections=(
            "executive summary",
            "impact summary",
            "timeline",
            "what happened technically",
            "why it happened",
            "what went well",
            "what went poorly",
            "action items",
            "technical lessons",
            "process lessons",
        ),
        header_fields=(
            "Post-Mortem Date",
            "Incident Date",
            "Incident Reference",
            "Facilitator",
            "Attendees",
            "Duration of post-mortem session",
            "GDPR breach notification required",
        ),
        root_cause_sections=("what happened technically", "why it happened"),
        action_sections=("action items",),
    ),
}

_MARKER = re.compile(r"<!--\s*rollback-pm\b([^>]*)-->")
_RULE_ORDER = {
    r: i
    for i, r in enumerate(
        (
            "overdue",
            "missing-section",
            "empty-section",
            "header-field",
            "placeholder",
            "seed-placeholder",
            "human-error",
            "action-ticket",
            "action-date",
        )
    )
}


# --------------------------------------------------------------------------- document model


@dataclass
class _Line:
    no: int  # 1-based
    raw: str
    kind: str  # text | quote | heading | comment | fence | code | log


@dataclass
class _Section:
    level: int
    name: str  # normalised
    line: int  # index of the heading in lines
    end: int  # index after the last line of the section (subsections included)


_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})\s*([^`\s]*)")
_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)[ \t]*#*[ \t]*$")
_QUOTE = re.compile(r"^ {0,3}>")


def _parse(text: str) -> list[_Line]:
    lines: list[_Line] = []
    fence: str | None = None
    fence_kind = "code"
    in_comment = False
    for no, raw in enumerate(text.splitlines(), 1):
        if fence is not None:
            stripped = raw.strip()
            if stripped.startswith(fence) and set(stripped) == {fence[0]}:
                lines.append(_Line(no, raw, "fence"))
                fence = None
            else:
                lines.append(_Line(no, raw, fence_kind))
            continue
        if in_comment:
            lines.append(_Line(no, raw, "comment"))
            in_comment = "-->" not in raw
            continue
        match = _FENCE.match(raw)
        if match:
            fence = match.group(1)
            # verbatim evidence (the log excerpt) is not the author's text
            fence_kind = "log" if match.group(2).lower() == "log" else "code"
            lines.append(_Line(no, raw, "fence"))
        elif raw.lstrip().startswith("<!--"):
            lines.append(_Line(no, raw, "comment"))
            in_comment = "-->" not in raw
        elif _HEADING.match(raw):
            lines.append(_Line(no, raw, "heading"))
        elif _QUOTE.match(raw):
            lines.append(_Line(no, raw, "quote"))
        else:
            lines.append(_Line(no, raw, "text"))
    return lines


def _norm(heading: str) -> str:
    text = re.sub(r"[*_`¶]", "", heading).strip().lower()
    text = re.sub(r"^\d+(\.\d+)*\.?\s+", "", text)  # "4. Root Cause Analysis"
    text = re.sub(r"\s+", " ", text)
    return text.rstrip(" :?.")


def _sections(lines: list[_Line]) -> list[_Section]:
    heads = []
    for i, line in enumerate(lines):
        if line.kind == "heading":
            match = _HEADING.match(line.raw)
            assert match is not None
            heads.append((i, len(match.group(1)), _norm(match.group(2))))
    sections = []
    for n, (i, level, name) in enumerate(heads):
        end = next((j for j, lvl, _ in heads[n + 1 :] if lvl <= level), len(lines))
        sections.append(_Section(level, name, i, end))
    return sections


def _find(sections: list[_Section], name: str) -> _Section | None:
    for s in sections:
        if s.name == name or s.name.startswith((name + " (", name + ":", name + " —", name + " -")):
            return s
    return None


# --------------------------------------------------------------------------- placeholders


_SEED_PATTERNS = [
    re.compile(r"YYYY-MM-DD(?:THH:MM(?::SS)?Z?)?"),
    re.compile(r"\bHH:MM(?::SS)?\b"),
    re.compile(r"\bmm:ss\b"),
    re.compile(r"@(?:…|\.\.\.)"),
    re.compile(r"\bX (?:hours?|minutes?|min)\b"),
    re.compile(r"[€$]X\b"),
    re.compile(r"^\s*(?:[-*+]\s+|\d+[.)]\s+)?(?:…|\.\.\.)\s*$"),
    re.compile(r"(?<!\\)\|\s*(?:…|\.\.\.)\s*(?=\|)"),
    re.compile(
        r"(?i)staging / production|alert / smoke test / user report / operator|critical / high / medium"
        r"|\bP0 \| P1 \| P2\b|\bSEV1 \| SEV2 \| SEV3 \| SEV4\b|draft \| in review \| complete|\byes ?/ ?no\b"
    ),
]
_HTML_TAGS = {
    "a",
    "b",
    "br",
    "code",
    "details",
    "div",
    "em",
    "hr",
    "i",
    "img",
    "kbd",
    "li",
    "ol",
    "p",
    "pre",
    "span",
    "strong",
    "sub",
    "summary",
    "sup",
    "table",
    "td",
    "th",
    "tr",
    "u",
    "ul",
}
_ANGLE = re.compile(r"(\\?)<(?=\S)([^<>\n]{1,80})(?<!\\)>")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")
_LINK = re.compile(r"!?\[(?:\\.|[^\]\\])*\](?:\((?:<[^>]*>|[^)]*)\)|\[[^\]]*\])")
_BRACKET = re.compile(r"(?<![\\\]])\[([^\[\]\n]{1,120})\](?![(\[:])")


def _seed_placeholders(text: str) -> list[str]:
    """The seed templates' own placeholders: YYYY-MM-DD, HH:MM, @…, <full sha>, [Name], choice lists."""
    text = PLACEHOLDER_RE.sub(" ", text).replace("\\|", "|")
    found = [m.group(0).strip() for p in _SEED_PATTERNS for m in p.finditer(text)]
    for m in _ANGLE.finditer(text):
        body = m.group(2).strip()
        tag = re.match(r"/?([a-zA-Z][a-zA-Z0-9]*)\b", body)
        if m.group(1):  # \<name> (seed 002 style)
            found.append(m.group(0))
        elif "=" in body or (("://" in body or "@" in body or body.startswith("mailto:")) and " " not in body):
            continue  # HTML with attributes, autolinks
        elif tag and tag.group(1).lower() in _HTML_TAGS and tag.group(0) == body.rstrip("/ ").strip():
            continue
        else:
            found.append(m.group(0))
    outside = _LINK.sub(" ", _CODE_SPAN.sub(" ", text))
    for m in _BRACKET.finditer(outside):
        body = m.group(1).strip()
        if body in ("", "x", "X") or body.isdigit() or body.startswith("^"):
            continue  # checkbox, citation, footnote
        found.append(m.group(0))
    unique = list(dict.fromkeys(found))
    return [f for f in unique if not any(f != g and f in g for g in unique)]  # "YYYY-MM-DD" in "<YYYY-MM-DD>"


def _has_placeholder(text: str) -> bool:
    return bool(PLACEHOLDER_RE.search(text) or _seed_placeholders(text))


def _summarise(items: list[str]) -> str:
    shown = ", ".join(i if len(i) <= 60 else i[:57] + "...]" for i in items[:2])
    return shown + (f" (+{len(items) - 2} more)" if len(items) > 2 else "")


# --------------------------------------------------------------------------- tables


_SEPARATOR = re.compile(r"^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$")


def cell_spans(row: str) -> list[tuple[int, int]]:
    """Where each cell of a GFM table row is: (start, end) offsets into ``row``, the
    surrounding pipes and an empty first or last part (the row's edge pipes) left out."""
    bounds, start = [], 0
    for pipe in re.finditer(r"(?<!\\)\|", row):
        bounds.append((start, pipe.start()))
        start = pipe.end()
    bounds.append((start, len(row)))
    if bounds and not row[bounds[0][0] : bounds[0][1]].strip():
        bounds = bounds[1:]
    if bounds and not row[bounds[-1][0] : bounds[-1][1]].strip():
        bounds = bounds[:-1]
    return bounds


def _cells(row: str) -> list[str]:
    return [row[a:b].strip() for a, b in cell_spans(row)]


def _tables(lines: list[_Line], start: int, end: int) -> list[tuple[list[str], list[_Line]]]:
    """(header cells, body rows) of each GFM table in lines[start:end]."""
    tables = []
    i = start
    while i < end - 1:
        line, nxt = lines[i], lines[i + 1]
        if (
            line.kind == "text"
            and "|" in line.raw
            and nxt.kind == "text"
            and _SEPARATOR.match(nxt.raw)
            and "-" in nxt.raw
        ):
            header = [_norm(c) for c in _cells(line.raw)]
            body = []
            j = i + 2
            while j < end and lines[j].kind == "text" and lines[j].raw.strip().startswith("|"):
                body.append(lines[j])
                j += 1
            tables.append((header, body))
            i = j
        else:
            i += 1
    return tables


def _is_table_chrome(lines: list[_Line], i: int) -> bool:
    """A table's header or separator row: structure, not content."""
    if _SEPARATOR.match(lines[i].raw) and "-" in lines[i].raw:
        return True
    return (
        i + 1 < len(lines)
        and bool(_SEPARATOR.match(lines[i + 1].raw))
        and "-" in lines[i + 1].raw
        and "|" in lines[i].raw
    )


# --------------------------------------------------------------------------- rules


_TICKET_COLUMNS = ("ticket", "issue", "tracker", "beads issue", "tracking issue", "jira")
_DUE_COLUMNS = ("target date", "due", "due date", "target", "by")
_DONE = re.compile(r"(?i)\b(done|closed|complete|completed|resolved|fixed|won't do)\b")
TRACKER_KEY = re.compile(
    r"\b[A-Z][A-Z0-9_]+-\d+\b"  # Jira ABC-123
    r"|(?<![\w&])#\d+\b"  # forge #12
    r"|https?://\S+/(?:issues|pulls?|browse|tickets?|work_packages|-/issues)/[\w-]+"  # forge / Jira URL
)
_DATE = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
_HUMAN_ERROR = re.compile(r"(?i)\bhuman[\s_-]*error")
# The machine-suggested cause the drafts quote from the logs: never the author's answer,
# quoted or not (a human who unquotes it has still not written the root cause).
_SUGGESTED = re.compile(r"(?i)\bsuspected cause \(verify\)")


def _field_value(line: str, field: str) -> str | None:
    """The value of ``field`` on this line, as a table row, list item or bold label; else None."""
    name = re.escape(field)
    table = re.match(rf"(?i)^\s*\|\s*(?:\*\*)?{name}(?:\*\*)?\s*(?<!\\)\|(.*)$", line)
    if table:
        rest = _cells("|" + table.group(1))
        return rest[0] if rest else ""
    label = re.match(rf"(?i)^\s*(?:[-*+]\s+)?(?:\*\*{name}:\*\*|\*\*{name}\*\*\s*:|{name}\s*:)(.*)$", line)
    return label.group(1).strip() if label else None


def _content(text: str) -> bool:
    """Does this line say something beyond markup, placeholders, unanswered labels and the
    machine-suggested cause?"""
    if _SUGGESTED.search(text):
        return False
    text = PLACEHOLDER_RE.sub(" ", text)
    for seed in _seed_placeholders(text):
        text = text.replace(seed, " ")
    text = re.sub(r"^\s*(?:[-*+]\s+(?:\[[ xX]\]\s*)?|\d+[.)]\s+)", "", text)
    text = re.sub(r"[|*_`\s]+", " ", text).strip()
    if not re.search(r"\w", text):
        return False
    return not text.endswith((":", "?"))  # "Details:", "1. Why?" with the answer removed


# Rules report through this: (line number, rule, message).
Add = Callable[[int, str, str], None]


def lint_text(text: str, *, path: str = "<draft>", now: datetime, deadline: datetime | None = None) -> list[Finding]:
    """All findings for a postmortem's text, sorted by line: one pass per rule."""
    lines = _parse(text)
    sections = _sections(lines)
    spec = SPECS[detect_template(text)]
    findings: list[Finding] = []

    def add(line: int, rule: str, message: str) -> None:
        findings.append(Finding(path, line, rule, message))

    header_lines = _header_fields(lines, sections, spec, add)
    _placeholders(lines, header_lines, add)
    _required_sections(lines, sections, spec, add)
    _root_cause(lines, sections, spec, add)
    _action_items(lines, sections, spec, now.date(), add)
    if findings:  # a complete postmortem handed in late is still complete
        _overdue(lines, deadline or _marker_deadline(text), now, add)
    findings.sort(key=lambda f: (f.line, _RULE_ORDER.get(f.rule, 99)))
    return findings


def _header_fields(lines: list[_Line], sections: list[_Section], spec: TemplateSpec, add: Add) -> set[int]:
    """Each header field present and filled; returns the lines already reported."""
    reported: set[int] = set()
    for field in spec.header_fields:
        for line in lines:
            if line.kind not in ("text",):
                continue
            value = _field_value(line.raw, field)
            if value is None:
                continue
            stripped = re.sub(r"[`*_\s]", "", PLACEHOLDER_RE.sub("", value))
            seeds = _seed_placeholders(value)
            if PLACEHOLDER_RE.search(value) or seeds or not stripped:
                left = f": still {_summarise(seeds)}" if seeds and not PLACEHOLDER_RE.search(value) else ""
                add(line.no, "header-field", f"header field '{field}' not filled{left}")
                reported.add(line.no)
            break
        else:
            anchor = _find(sections, "header") or _find(sections, "metadata") or _find(sections, "summary")
            add(lines[anchor.line].no if anchor else 1, "header-field", f"header field '{field}' missing")
    return reported


def _placeholders(lines: list[_Line], skip: set[int], add: Add) -> None:
    """Placeholders left, ours and the seeds' (quoted guidance may show the seeds' own)."""
    for line in lines:
        if line.kind in ("log", "comment", "fence") or line.no in skip:
            continue
        ours = PLACEHOLDER_RE.findall(line.raw)
        if ours:
            add(line.no, "placeholder", f"placeholder left: {_summarise(ours)}")
        if line.kind != "quote":
            seeds = _seed_placeholders(line.raw)
            if seeds:
                add(line.no, "seed-placeholder", f"template placeholder left: {_summarise(seeds)}")


def _required_sections(lines: list[_Line], sections: list[_Section], spec: TemplateSpec, add: Add) -> None:
    """Each required section present and not empty (a placeholder is reported as one)."""
    for name in spec.required_sections:
        section = _find(sections, name)
        if section is None:
            add(1, "missing-section", f"required section '{name}' is missing")
            continue
        body = range(section.line + 1, section.end)
        has_placeholder = any(lines[i].kind in ("text", "code") and _has_placeholder(lines[i].raw) for i in body)
        has_content = any(
            (lines[i].kind == "text" and not _is_table_chrome(lines, i) and _content(lines[i].raw))
            or (lines[i].kind in ("code", "log") and _content(lines[i].raw))
            for i in body
        )
        if not has_content and not has_placeholder:
            if name in spec.root_cause_sections and any(_SUGGESTED.search(lines[i].raw) for i in body):
                add(
                    lines[section.line].no,
                    "empty-section",
                    f"required section '{name}' holds only the machine-suggested cause: "
                    "write the root cause in your own words (the suggestion may stay)",
                )
            else:
                add(lines[section.line].no, "empty-section", f"required section '{name}' is empty")


def _root_cause(lines: list[_Line], sections: list[_Section], spec: TemplateSpec, add: Add) -> None:
    """A root cause is never "human error"."""
    for name in spec.root_cause_sections:
        section = _find(sections, name)
        if section is None:
            continue
        for line in lines[section.line + 1 : section.end]:
            if line.kind == "text" and _HUMAN_ERROR.search(PLACEHOLDER_RE.sub("", line.raw)):
                add(
                    line.no,
                    "human-error",
                    "'human error' as root cause: name the system gap that let the action cause harm",
                )


def _action_tables(
    lines: list[_Line], sections: list[_Section], spec: TemplateSpec
) -> Iterator[tuple[str, int, list[str], list[_Line]]]:
    """(section name, 1-based table number, header, body rows) of each action table, in
    document order: the one reading of action tables that lint and follow-ups share."""
    number = 0
    for name in spec.action_sections:
        section = _find(sections, name)
        if section is None:
            continue
        for header, rows in _tables(lines, section.line + 1, section.end):
            number += 1
            yield section.name, number, header, rows


def _column(header: list[str] | tuple[str, ...], names: tuple[str, ...]) -> int | None:
    return next((header.index(c) for c in names if c in header), None)


def _action_items(lines: list[_Line], sections: list[_Section], spec: TemplateSpec, today: date, add: Add) -> None:
    """Every action item row: a tracker key, and a real target date not in the past."""
    for _, _, header, rows in _action_tables(lines, sections, spec):
        ticket_col = _column(header, _TICKET_COLUMNS)
        due_col = _column(header, _DUE_COLUMNS)
        status_col = _column(header, ("status",))
        for row in rows:
            cells = _cells(row.raw)
            if not any(re.sub(r"[\s*_`]", "", c) for c in cells):
                continue  # an empty row says nothing
            _check_ticket(row, cells, ticket_col, due_col, add)
            _check_due(row, cells, due_col, status_col, today, add)


# --------------------------------------------------------------------------- action rows

ACTION_COLUMNS = ("action", "description", "action item", "deliverable", "task", "item")
OWNER_COLUMNS = ("owner", "owners", "assignee", "who", "dri")


@dataclass(frozen=True)
class ActionRow:
    """One body row of an action table as lint reads it (prevention, action items), with
    where its cells are in the line, so a cell can be rewritten and the rest left as written."""

    section: str  # the action section's normalised heading, e.g. "prevention"
    table: int  # 1-based: which action table of the document
    row: int  # 1-based: which body row of its table
    line: int  # 1-based line number in the document
    raw: str  # the line as written
    header: tuple[str, ...]  # normalised header cells
    spans: tuple[tuple[int, int], ...]  # each cell's (start, end) in ``raw``

    @property
    def cells(self) -> tuple[str, ...]:
        return tuple(self.raw[a:b].strip() for a, b in self.spans)

    def column(self, kind: str) -> int | None:
        """The index of the action, owner, due, ticket or status column; None if the table has none."""
        names = {
            "action": ACTION_COLUMNS,
            "owner": OWNER_COLUMNS,
            "due": _DUE_COLUMNS,
            "ticket": _TICKET_COLUMNS,
            "status": ("status",),
        }[kind]
        return _column(self.header, names)

    def cell(self, kind: str) -> str | None:
        """The text of that column in this row; None when the table or the row has no such cell."""
        return _cell(list(self.cells), self.column(kind))

    @property
    def empty(self) -> bool:
        return not any(re.sub(r"[\s*_`]", "", c) for c in self.cells)

    def has_ticket(self) -> bool:
        """The row names a tracker key, as lint requires (its Ticket cell, else anywhere in it)."""
        text = _ticket_text(list(self.cells), self.column("ticket"), self.column("due"))
        return not _has_placeholder(text) and bool(TRACKER_KEY.search(PLACEHOLDER_RE.sub("", text)))


def action_rows(text: str) -> list[ActionRow]:
    """Every body row of the document's action tables, as ``lint_text`` reads them."""
    lines = _parse(text)
    rows = []
    for section, number, header, body in _action_tables(lines, _sections(lines), SPECS[detect_template(text)]):
        for index, line in enumerate(body, 1):
            rows.append(
                ActionRow(section, number, index, line.no, line.raw, tuple(header), tuple(cell_spans(line.raw)))
            )
    return rows


def date_in(text: str | None) -> date | None:
    """The first real YYYY-MM-DD date in ``text`` (as lint reads a target date), else None."""
    match = _DATE.search(text or "")
    if not match:
        return None
    try:
        return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        return None


def has_placeholder(text: str) -> bool:
    """Does ``text`` hold a placeholder, ours (``[TODO: ...]``) or a seed template's (``<name>``, ``YYYY-MM-DD``)?"""
    return _has_placeholder(text)


def _overdue(lines: list[_Line], deadline: datetime | None, now: datetime, add: Add) -> None:
    """Past the deadline while still incomplete (reported on the marker line)."""
    if deadline is not None and now > deadline:
        marker_line = next((ln.no for ln in lines if _MARKER.search(ln.raw)), 1)
        add(marker_line, "overdue", f"postmortem is past its deadline ({iso(deadline)}) and not finished")


def _cell(cells: list[str], col: int | None) -> str | None:
    return cells[col] if col is not None and col < len(cells) else None


def _ticket_text(cells: list[str], ticket_col: int | None, due_col: int | None) -> str:
    """Where a row's tracker key must be: its Ticket cell, else the row without its date."""
    if ticket_col is not None:
        return _cell(cells, ticket_col) or ""
    return " ".join(c for i, c in enumerate(cells) if i != due_col)


def _check_ticket(row: _Line, cells: list[str], ticket_col: int | None, due_col: int | None, add: Add) -> None:
    text = _ticket_text(cells, ticket_col, due_col)
    if _has_placeholder(text):
        return  # reported as a placeholder
    if not TRACKER_KEY.search(PLACEHOLDER_RE.sub("", text)):
        where = "its Ticket cell" if ticket_col is not None else "the row"
        add(
            row.no, "action-ticket", f"action item without a tracker key in {where} (e.g. ABC-123, #12 or an issue URL)"
        )


def _check_due(
    row: _Line, cells: list[str], due_col: int | None, status_col: int | None, today: date, add: Add
) -> None:
    if due_col is None:
        return
    value = _cell(cells, due_col) or ""
    if _has_placeholder(value) or value.strip().lower() == "backlog":
        return
    due = date_in(value)
    if due is None:
        shown = value.strip() or "(empty)"
        add(row.no, "action-date", f"target date {shown!r} is not a date (YYYY-MM-DD)")
        return
    status = _cell(cells, status_col) or ""
    if due < today and not _DONE.search(status):
        add(row.no, "action-date", f"target date {due.isoformat()} is in the past")


def _marker_deadline(text: str) -> datetime | None:
    match = _MARKER.search(text[:4096])
    if not match:
        return None
    found = re.search(r"\bdeadline=(\S+)", match.group(1))
    if not found:
        return None
    try:
        return parse_ts(found.group(1), "deadline")
    except UsageError:
        return None


def lint_file(path: Path, *, now: datetime, deadline: datetime | None = None) -> list[Finding]:
    """lint_text on a file; an unreadable file is a UsageError (exit 2) naming it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file; pass the path of a postmortem draft") from None
    except IsADirectoryError:
        raise UsageError(f"{path} is a directory; pass the postmortem file itself") from None
    except UnicodeDecodeError:
        raise UsageError(f"{path} is not UTF-8 text; is it the postmortem draft?") from None
    except OSError as exc:
        raise UsageError(f"{path} cannot be read ({exc.strerror}); check its permissions") from exc
    return lint_text(text, path=str(path), now=now, deadline=deadline)


def detect_template(text: str) -> str:
    """Which of the four templates a document follows: the draft's marker, else the best
    match of required section headings (ties go to azaion, the default)."""
    match = _MARKER.search(text[:4096])
    if match:
        named = re.search(r"\btemplate=(\w+)", match.group(1))
        if named and named.group(1) in SPECS:
            return named.group(1)
    sections = _sections(_parse(text))
    best, best_score = "azaion", -1.0
    for name, spec in SPECS.items():
        found = sum(1 for s in spec.required_sections if _find(sections, s) is not None)
        score = found / len(spec.required_sections)
        if score > best_score:
            best, best_score = name, score
    return best
