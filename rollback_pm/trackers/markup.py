"""Ticket bodies and comments as a small structured document, rendered per tracker.

A ticket is built from values we do not control (service and step names, smoke messages,
warnings, paths), so it is never written as Markdown and parsed back: it is a ``Doc`` of
paragraphs, a field table and bullet lists whose spans hold plain data (text, strong,
code, or a link to an http(s) URL). Each tracker gets its own rendering, escaped for it:

- ``to_markdown``: GitHub-flavoured Markdown for Gitea/Forgejo issues and the file
  tracker, escaped by the drafts' filters (``rollback_pm.markdown``), plus what the forges
  add on top of Markdown: ``@name`` mentions, ``#1``/``!1`` references, ``[[wiki]]`` links
  and bare URLs get a zero-width space so they stay text (code spans are left alone: the
  forges do not look inside them);
- ``to_adf``: Jira Cloud (REST v3) ADF, where text nodes are data and need no escaping;
- ``to_wiki``: Jira Data Center (REST v2) wiki markup, every special character escaped.

Only ``link`` makes a link, and only to an http(s) URL; anything else is shown as code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from rollback_pm import markdown as md
from rollback_pm.log import mask

# Jira rejects text fields over 32,767 characters; keep room for the truncation note.
JIRA_TEXT_LIMIT = 32_000
SPAN_LIMIT = 2_000  # one value (a smoke message) is cut here: a ticket is a summary
ZWSP = "\u200b"
_STYLES = ("text", "strong", "code", "link", "ref")
# An issue reference the forges link (and cross-reference) on purpose: ours, never a value's.
_ISSUE_REF = re.compile(r"(?:[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+)?#\d+")


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class Span:
    """One run of data: ``text`` is shown as is, whatever characters it holds."""

    text: str
    style: str = "text"  # text | strong | code | link | ref
    href: str | None = None  # link only, always http(s)


@dataclass
class Block:
    kind: str  # paragraph | table | bullets
    spans: list[Span] = field(default_factory=list)  # paragraph
    rows: list[list[list[Span]]] = field(default_factory=list)  # table; row 0 is the header
    items: list[list[Span]] = field(default_factory=list)  # bullets


@dataclass
class Doc:
    """A ticket body or comment: blocks of spans, built with ``paragraph``/``table``/``bullets``."""

    blocks: list[Block] = field(default_factory=list)

    def paragraph(self, *spans: Span | str) -> Doc:
        self.blocks.append(Block("paragraph", spans=_spans(spans)))
        return self

    def table(self, header: Iterable[Span | str], rows: Iterable[Iterable[Any]]) -> Doc:
        """A field table; a cell is a span, a string, or a list of them."""
        grid = [[_spans([cell]) for cell in header]]
        for row in rows:
            grid.append([_spans(cell if isinstance(cell, (list, tuple)) else [cell]) for cell in row])
        width = len(grid[0])
        self.blocks.append(Block("table", rows=[(r + [[]] * width)[:width] for r in grid]))
        return self

    def bullets(self, items: Iterable[Iterable[Span | str]]) -> Doc:
        self.blocks.append(Block("bullets", items=[_spans(item) for item in items]))
        return self

    def plain(self) -> str:
        """The text a reader sees, whitespace collapsed (to compare what a tracker stored)."""
        parts: list[str] = []
        for block in self.blocks:
            if block.kind == "paragraph":
                parts.append(_plain(block.spans))
            elif block.kind == "table":
                parts += [_plain(cell) for row in block.rows for cell in row]
            else:
                parts += [_plain(item) for item in block.items]
        return " ".join(" ".join(parts).split())


def _value(value: Any) -> str:
    """One line of clean, masked text: control characters and colour codes dropped,
    whitespace runs (newlines included) one space, at most SPAN_LIMIT characters. A space
    at either end is kept: spans are joined as they are."""
    text = re.sub(r"\s+", " ", mask(md.clean(value)))
    return text if len(text) <= SPAN_LIMIT else text[: SPAN_LIMIT - 1] + "…"


def text(value: Any) -> Span:
    return Span(_value(value))


def strong(value: Any) -> Span:
    return Span(_value(value), "strong")


def code(value: Any) -> Span:
    return Span(_value(value), "code")


def link(label: Any, url: Any) -> Span:
    """A link when ``url`` is http(s) with a host; otherwise the URL as code, never a link."""
    target = _value(url)
    try:
        parts = urlsplit(target)
    except ValueError:  # a broken IPv6 bracket
        return code(target)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or " " in target:
        return code(target)
    return Span(_value(label).strip() or target, "link", target)


def issue_ref(key: Any) -> Span:
    """A forge issue reference (``owner/repo#12``, ``#12``) that the forge turns into a link
    and a cross-reference; anything else is plain text. Only to_markdown leaves it live."""
    target = _value(key).strip()
    return Span(target, "ref") if _ISSUE_REF.fullmatch(target) else text(target)


def plain_doc(value: Any) -> Doc:
    """A comment given as a plain string: one paragraph of text, nothing in it is markup."""
    return value if isinstance(value, Doc) else Doc().paragraph(text(value))


def _spans(items: Iterable[Span | str]) -> list[Span]:
    spans = [item if isinstance(item, Span) else text(item) for item in items]
    return [s for s in spans if s.text]


def _plain(spans: list[Span]) -> str:
    return "".join(s.text for s in spans)


# --------------------------------------------------------------------------- forge Markdown

# Before an @ that starts a name: @mentions, user@host emails, owner/repo@sha references
# all need the @ right after a word or a space.
_AT = re.compile(r"(?=@[\w-])")
_REF = re.compile(r"(?<=[#!])(?=\d)")  # #12 and !12: issue and pull request references
_SCHEME = re.compile(r":(?=//)")  # scheme://: forges link bare URLs in text
_WWW = re.compile(r"(?i)(?<![\w.])(www)(?=\.)")
_DOUBLE_BRACKET = re.compile(r"([\[\]])(?=[\[\]])")  # [[wiki links]]


def inert(value: str) -> str:
    """Text (before escaping) that no forge or Jira post-processor turns into a mention,
    an issue reference, a wiki link or an autolink: a zero-width space breaks each pattern
    (it is invisible and leaves the visible text as it was)."""
    value = _AT.sub(ZWSP, value)
    value = _REF.sub(ZWSP, value)
    value = _SCHEME.sub(":" + ZWSP, value)
    value = _WWW.sub(r"\1" + ZWSP, value)
    return _DOUBLE_BRACKET.sub(r"\1" + ZWSP, value)


def _edges(text: str) -> tuple[str, str, str]:
    core = text.strip()
    lead = text[: len(text) - len(text.lstrip())]
    return lead, core, text[len(lead) + len(core) :]


def _md_span(span: Span) -> str:
    lead, core, trail = _edges(span.text)
    if not core:
        return span.text
    if span.style == "code":
        out: str = md.code(core)  # forges show code spans verbatim and look for nothing in them
    elif span.style == "link" and span.href:
        out = md.link(core, span.href)
    elif span.style == "ref" and _ISSUE_REF.fullmatch(core):
        out = core  # a reference we made: the forge is meant to see it
    else:
        # md.text escapes Markdown (a leading #, -, 1. included); inert the forges' extras
        out = md.text(inert(core))
        if span.style == "strong":
            out = f"**{out}**"
    return lead + out + trail


def _md_inline(spans: list[Span]) -> str:
    return "".join(_md_span(s) for s in spans).strip()


def to_markdown(doc: Doc) -> str:
    """GitHub-flavoured Markdown for the forges (and the file tracker)."""
    parts: list[str] = []
    for block in doc.blocks:
        if block.kind == "paragraph":
            parts.append(_md_inline(block.spans))
        elif block.kind == "table":
            lines = []
            for index, row in enumerate(block.rows):
                cells = [md.cell(md.Md(_md_inline(cell))) or " " for cell in row]
                lines.append("| " + " | ".join(cells) + " |")
                if index == 0:
                    lines.append("|" + "---|" * len(row))
            parts.append("\n".join(lines))
        else:
            parts.append("\n".join(f"- {_md_inline(item)}" for item in block.items))
    return "\n\n".join(p for p in parts if p)


# --------------------------------------------------------------------------- ADF


def to_adf(doc: Doc) -> dict[str, Any]:
    """A Jira Cloud (REST v3) ADF document: text nodes carry the data as is."""
    content: list[dict[str, Any]] = []
    for block in doc.blocks:
        if block.kind == "paragraph":
            content.append(_adf_paragraph(block.spans))
        elif block.kind == "table":
            rows = []
            for index, row in enumerate(block.rows):
                cell_type = "tableHeader" if index == 0 else "tableCell"
                cells = [{"type": cell_type, "attrs": {}, "content": [_adf_paragraph(cell)]} for cell in row]
                rows.append({"type": "tableRow", "content": cells})
            content.append(
                {"type": "table", "attrs": {"isNumberColumnEnabled": False, "layout": "default"}, "content": rows}
            )
        else:
            items = [{"type": "listItem", "content": [_adf_paragraph(item)]} for item in block.items]
            if items:
                content.append({"type": "bulletList", "content": items})
    return {"type": "doc", "version": 1, "content": content or [{"type": "paragraph", "content": []}]}


def _adf_paragraph(spans: list[Span]) -> dict[str, Any]:
    nodes = []
    for span in spans:
        node: dict[str, Any] = {"type": "text", "text": span.text}
        if span.style == "link" and span.href:
            node["marks"] = [{"type": "link", "attrs": {"href": span.href}}]
        elif span.style in ("strong", "code"):
            node["marks"] = [{"type": span.style}]
        nodes.append(node)
    return {"type": "paragraph", "content": nodes}


def adf_text(node: Any) -> str:
    """The plain text of an ADF document (to compare what Jira stored with what was sent)."""
    parts: list[str] = []

    def walk(n: Any) -> None:
        if isinstance(n, dict):
            if n.get("type") == "text":
                parts.append(str(n.get("text", "")))
            for child in n.get("content") or []:
                walk(child)
            if n.get("type") in ("paragraph", "heading", "codeBlock", "tableCell", "tableHeader", "listItem"):
                parts.append(" ")
        elif isinstance(n, list):
            for child in n:
                walk(child)

    walk(node)
    return " ".join("".join(parts).split())


# --------------------------------------------------------------------------- wiki markup

# Every character that starts wiki markup: emphasis (*_?-+^~), macros ({}), links and
# mentions ([]), tables (|), images (!), lists (#), escapes (\). A backslash escapes the
# next one; a backslash itself is an entity, since "\\" is a line break.
_WIKI_SPECIAL = re.compile(r"([*_?\-+^~{}\[\]|!#&\\])")
_WIKI_LINE_START = re.compile(r"^(h)(?=[1-6]\.)|^(b)(?=q\.)")


_WIKI_ENTITIES = {"&": "&amp;", "\\": "&#92;"}


def wiki_escape(value: str) -> str:
    return _WIKI_SPECIAL.sub(lambda m: _WIKI_ENTITIES.get(m.group(1)) or "\\" + m.group(1), inert(value))


def _wiki_span(span: Span) -> str:
    lead, core, trail = _edges(span.text)
    if not core:
        return span.text
    escaped = wiki_escape(core)
    if span.style == "code":
        escaped = "{{" + escaped + "}}"
    elif span.style == "strong":
        escaped = f"*{escaped}*"  # Jira closes *x* only when the mark hugs the text
    elif span.style == "link" and span.href:
        href = re.sub(r"[\s|\[\]{}]", lambda m: f"%{ord(m.group(0)):02X}", span.href)
        escaped = f"[{href}]" if core == span.href else f"[{escaped}|{href}]"
    return lead + escaped + trail


def _wiki_inline(spans: list[Span]) -> str:
    rendered = "".join(_wiki_span(s) for s in spans).strip()
    # "h1." and "bq." open a heading or quote only at a line start: an entity there stays text.
    return _WIKI_LINE_START.sub(lambda m: "&#104;" if m.group(1) else "&#98;", rendered)


def to_wiki(doc: Doc) -> str:
    """Jira Data Center / Server (REST v2) wiki markup."""
    parts: list[str] = []
    for block in doc.blocks:
        if block.kind == "paragraph":
            parts.append(_wiki_inline(block.spans))
        elif block.kind == "table":
            lines = []
            for index, row in enumerate(block.rows):
                sep = "||" if index == 0 else "|"
                lines.append(sep + sep.join(_wiki_inline(cell) or " " for cell in row) + sep)
            parts.append("\n".join(lines))
        else:
            parts.append("\n".join(f"* {_wiki_inline(item)}" for item in block.items))
    return "\n\n".join(p for p in parts if p)


# --------------------------------------------------------------------------- size


def _size(rendered: Any) -> int:
    return len(rendered if isinstance(rendered, str) else json.dumps(rendered))


def truncate(
    doc: Doc, render: Callable[[Doc], Any], limit: int = JIRA_TEXT_LIMIT, note: str = "the full text is attached"
) -> Doc:
    """``doc`` without its last blocks until its rendering (ADF: as JSON) fits in ``limit``
    characters, saying so."""
    size = _size(render(doc))
    if size <= limit:
        return doc
    blocks = list(doc.blocks)
    while blocks:
        blocks.pop()
        cut = Doc(blocks + [Block("paragraph", spans=[Span(f"(truncated: {size} characters in all; {note})")])])
        if _size(render(cut)) <= limit:
            return cut
    return Doc().paragraph(f"(truncated: {size} characters in all; {note})")
