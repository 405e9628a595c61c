"""Markdown -> Jira: ADF (Atlassian Document Format, REST v3) and wiki markup (REST v2).

Ticket bodies and comments are written once, in Markdown; Jira Cloud's v3 API only accepts
ADF documents and Jira Data Center's v2 API renders wiki markup, so both are generated here
from one small parse. The subset is what tickets use: paragraphs, headings, bullet and
numbered lists (nested by indentation), tables, fenced code, block quotes, rules, and inline
**strong**, *em*, `code`, ~~strike~~, [links](url) and bare URLs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

# Jira rejects text fields over 32,767 characters; keep room for the truncation note.
JIRA_TEXT_LIMIT = 32_000
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([\w+#.-]*)\s*$")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_RULE = re.compile(r"^\s*([-*_])(\s*\1){2,}\s*$")
_LIST = re.compile(r"^(\s*)([-*+]|\d{1,9}[.)])\s+(.*)$")
_TABLE_SEP = re.compile(r"^\s*\|?\s*:?-{1,}:?\s*(\|\s*:?-{1,}:?\s*)*\|?\s*$")
_URL = re.compile(r"https?://[^\s<>`|\]\[]+")
_LINK = re.compile(r"\[([^\]\n]+)\]\((\S+?)\)")
_ESCAPABLE = set("\\`*_{}[]()#+-.!|~>")


# --------------------------------------------------------------------------- model


@dataclass
class Span:
    text: str
    marks: tuple[tuple[str, str], ...] = ()  # (kind, attr): strong, em, code, strike, (link, href)


@dataclass
class Block:
    kind: str  # paragraph | heading | list | code | quote | rule | table
    spans: list[Span] = field(default_factory=list)
    level: int = 0  # heading level
    ordered: bool = False
    items: list[list[Block]] = field(default_factory=list)  # list items: blocks each
    text: str = ""  # code
    language: str = ""
    children: list[Block] = field(default_factory=list)  # quote
    rows: list[list[list[Span]]] = field(default_factory=list)  # table: rows of cells; row 0 is the header


# --------------------------------------------------------------------------- inline


def parse_inline(text: str, marks: tuple[tuple[str, str], ...] = ()) -> list[Span]:
    """Inline Markdown to spans with their marks."""
    text = _CONTROL.sub("", text)
    out: list[Span] = []
    buf: list[str] = []

    def flush() -> None:
        if buf:
            out.append(Span("".join(buf), marks))
            buf.clear()

    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text) and text[i + 1] in _ESCAPABLE:
            buf.append(text[i + 1])
            i += 2
            continue
        if c == "`":
            run = len(text[i:]) - len(text[i:].lstrip("`"))
            end = text.find("`" * run, i + run)
            if end != -1:
                flush()
                code = text[i + run : end]
                if code.strip():
                    code = code[1:-1] if code.startswith(" ") and code.endswith(" ") and len(code) > 2 else code
                out.append(Span(code, _add(marks, ("code", ""))))
                i = end + run
                continue
        for delim, kind in (("**", "strong"), ("__", "strong"), ("~~", "strike")):
            if text.startswith(delim, i) and i + 2 < len(text) and not text[i + 2].isspace():
                end = text.find(delim, i + 2)
                if end != -1 and not text[end - 1].isspace() and (delim != "__" or _boundary(text, i, end + 2)):
                    flush()
                    out += parse_inline(text[i + 2 : end], _add(marks, (kind, "")))
                    i = end + 2
                    break
        else:
            if c in "*_" and i + 1 < len(text) and not text[i + 1].isspace() and text[i + 1] != c:
                end = _closing(text, c, i + 1)
                if end != -1 and (c == "*" or _boundary(text, i, end + 1)):
                    flush()
                    out += parse_inline(text[i + 1 : end], _add(marks, ("em", "")))
                    i = end + 1
                    continue
            if c == "[":
                m = _LINK.match(text, i)
                if m:
                    flush()
                    out += parse_inline(m.group(1), _add(marks, ("link", m.group(2))))
                    i = m.end()
                    continue
            if c == "<":
                m = re.compile(r"<(https?://[^>\s]+)>").match(text, i)
                if m:
                    flush()
                    out.append(Span(m.group(1), _add(marks, ("link", m.group(1)))))
                    i = m.end()
                    continue
            if c in "hH" and (i == 0 or not text[i - 1].isalnum()) and not any(k == "link" for k, _ in marks):
                m = _URL.match(text, i)
                if m:
                    url = m.group(0).rstrip(".,;:!?)'\"")
                    flush()
                    out.append(Span(url, _add(marks, ("link", url))))
                    i += len(url)
                    continue
            buf.append(c)
            i += 1
    flush()
    return _merge(out)


def _add(marks: tuple[tuple[str, str], ...], mark: tuple[str, str]) -> tuple[tuple[str, str], ...]:
    return marks if mark in marks else marks + (mark,)


def _boundary(text: str, start: int, end: int) -> bool:
    """``_`` emphasis only at word boundaries (snake_case_names stay as they are)."""
    before = text[start - 1] if start > 0 else " "
    after = text[end] if end < len(text) else " "
    return not before.isalnum() and not after.isalnum()


def _closing(text: str, char: str, start: int) -> int:
    j = start
    while True:
        j = text.find(char, j)
        if j == -1:
            return -1
        doubled = text.startswith(char * 2, j)
        if not text[j - 1].isspace() and not doubled:
            return j
        j += 2 if doubled else 1


def _merge(spans: list[Span]) -> list[Span]:
    merged: list[Span] = []
    for span in spans:
        if not span.text:
            continue
        if merged and merged[-1].marks == span.marks:
            merged[-1] = Span(merged[-1].text + span.text, span.marks)
        else:
            merged.append(span)
    return merged


# --------------------------------------------------------------------------- blocks


def parse(markdown: str) -> list[Block]:
    """Block-level Markdown to a list of Blocks."""
    lines = markdown.replace("\r\n", "\n").replace("\r", "\n").expandtabs(4).split("\n")
    return _blocks(lines)


def _blocks(lines: list[str]) -> list[Block]:
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
            continue
        fence = _FENCE.match(line)
        if fence:
            marker = fence.group(2)
            body: list[str] = []
            i += 1
            while i < len(lines) and not lines[i].strip().startswith(marker[0] * len(marker)):
                body.append(lines[i])
                i += 1
            i += 1
            blocks.append(Block("code", text=_CONTROL.sub("", "\n".join(body)), language=fence.group(3)))
            continue
        heading = _HEADING.match(line)
        if heading:
            blocks.append(Block("heading", parse_inline(heading.group(2)), level=len(heading.group(1))))
            i += 1
            continue
        if _RULE.match(line):
            blocks.append(Block("rule"))
            i += 1
            continue
        if line.lstrip().startswith(">"):
            quoted = []
            while i < len(lines) and lines[i].lstrip().startswith(">"):
                quoted.append(re.sub(r"^\s*>\s?", "", lines[i]))
                i += 1
            blocks.append(Block("quote", children=_blocks(quoted)))
            continue
        if line.lstrip().startswith("|") and i + 1 < len(lines) and _TABLE_SEP.match(lines[i + 1]):
            rows = [_cells(line)]
            i += 2
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                rows.append(_cells(lines[i]))
                i += 1
            width = len(rows[0])
            rows = [(r + [[]] * width)[:width] for r in rows]
            blocks.append(Block("table", rows=rows))
            continue
        if _LIST.match(line):
            block, i = _list(lines, i)
            blocks.append(block)
            continue
        para = [line.strip()]
        i += 1
        while i < len(lines) and lines[i].strip() and not _starts_block(lines, i):
            para.append(lines[i].strip())
            i += 1
        blocks.append(Block("paragraph", parse_inline(" ".join(para))))
    return blocks


def _starts_block(lines: list[str], i: int) -> bool:
    line = lines[i]
    return bool(
        _FENCE.match(line)
        or _HEADING.match(line)
        or _LIST.match(line)
        or line.lstrip().startswith(">")
        or _RULE.match(line)
        or (line.lstrip().startswith("|") and i + 1 < len(lines) and _TABLE_SEP.match(lines[i + 1]))
    )


def _cells(line: str) -> list[list[Span]]:
    text = line.strip()
    if text.startswith("|"):
        text = text[1:]
    if text.endswith("|") and not text.endswith("\\|"):
        text = text[:-1]
    cells = re.split(r"(?<!\\)\|", text)
    return [parse_inline(cell.strip().replace("\\|", "|")) for cell in cells]


def _list(lines: list[str], i: int) -> tuple[Block, int]:
    first = _LIST.match(lines[i])
    assert first is not None
    indent = len(first.group(1))
    block = Block("list", ordered=first.group(2)[0].isdigit())
    while i < len(lines):
        m = _LIST.match(lines[i])
        if not m or len(m.group(1)) < indent:
            if m is None and lines[i].strip() and lines[i].startswith(" " * (indent + 2)) and block.items:
                # a continuation line of the previous item
                para = block.items[-1][0]
                para.spans = _merge(para.spans + [Span(" ")] + parse_inline(lines[i].strip()))
                i += 1
                continue
            break
        if len(m.group(1)) > indent:
            nested, i = _list(lines, i)
            if block.items:
                block.items[-1].append(nested)
            else:
                block.items.append([nested])
            continue
        if m.group(2)[0].isdigit() != block.ordered:
            break
        block.items.append([Block("paragraph", parse_inline(m.group(3)))])
        i += 1
    return block, i


# --------------------------------------------------------------------------- ADF


def to_adf(markdown: str) -> dict[str, Any]:
    """A Jira Cloud (REST v3) ADF document for the Markdown text."""
    content = [_adf_block(b) for b in parse(markdown)]
    return {"type": "doc", "version": 1, "content": content or [{"type": "paragraph", "content": []}]}


def _adf_marks(marks: tuple[tuple[str, str], ...]) -> list[dict[str, Any]]:
    kinds = [k for k, _ in marks]
    out: list[dict[str, Any]] = []
    for kind, attr in marks:
        if "code" in kinds and kind not in ("code", "link"):
            continue  # ADF allows the code mark only together with link
        if kind == "link":
            out.append({"type": "link", "attrs": {"href": attr}})
        else:
            out.append({"type": kind})
    return out


def _adf_inline(spans: list[Span]) -> list[dict[str, Any]]:
    nodes = []
    for span in spans:
        if not span.text:
            continue
        node: dict[str, Any] = {"type": "text", "text": span.text}
        marks = _adf_marks(span.marks)
        if marks:
            node["marks"] = marks
        nodes.append(node)
    return nodes


def _adf_paragraph(spans: list[Span]) -> dict[str, Any]:
    return {"type": "paragraph", "content": _adf_inline(spans)}


def _adf_block(block: Block) -> dict[str, Any]:
    if block.kind == "paragraph":
        return _adf_paragraph(block.spans)
    if block.kind == "heading":
        return {"type": "heading", "attrs": {"level": block.level}, "content": _adf_inline(block.spans)}
    if block.kind == "rule":
        return {"type": "rule"}
    if block.kind == "code":
        node: dict[str, Any] = {"type": "codeBlock", "attrs": {"language": block.language} if block.language else {}}
        if block.text:
            node["content"] = [{"type": "text", "text": block.text}]
        return node
    if block.kind == "quote":
        children = [_adf_block(b) for b in block.children if b.kind in ("paragraph", "list", "code")]
        return {"type": "blockquote", "content": children or [_adf_paragraph([])]}
    if block.kind == "list":
        items = [
            {"type": "listItem", "content": [_adf_block(b) for b in item] or [_adf_paragraph([])]}
            for item in block.items
        ]
        return {"type": "orderedList" if block.ordered else "bulletList", "content": items}
    if block.kind == "table":
        rows = []
        for index, row in enumerate(block.rows):
            cell_type = "tableHeader" if index == 0 else "tableCell"
            rows.append(
                {
                    "type": "tableRow",
                    "content": [{"type": cell_type, "attrs": {}, "content": [_adf_paragraph(cell)]} for cell in row],
                }
            )
        return {"type": "table", "attrs": {"isNumberColumnEnabled": False, "layout": "default"}, "content": rows}
    raise ValueError(f"unknown block {block.kind}")


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

_WIKI_SPECIAL = re.compile(r"([\\*_{}\[\]|^~!])")


def wiki_escape(text: str) -> str:
    return _WIKI_SPECIAL.sub(r"\\\1", text)


def to_wiki(markdown: str) -> str:
    """Jira Data Center / Server (REST v2) wiki markup for the Markdown text."""
    return "\n\n".join(_wiki_block(b) for b in parse(markdown)).strip()


def _wiki_inline(spans: list[Span]) -> str:
    out = []
    for span in spans:
        kinds = dict(span.marks)
        core = span.text.strip()
        if not core or not kinds:
            out.append(wiki_escape(span.text))
            continue
        # Jira closes *x* only when the mark hugs the text: keep spaces outside.
        lead = span.text[: len(span.text) - len(span.text.lstrip())]
        trail = span.text[len(span.text.rstrip()) :]
        text = wiki_escape(core)
        if "code" in kinds:
            text = "{{" + text + "}}"
        else:
            if "strike" in kinds:
                text = f"-{text}-"
            if "em" in kinds:
                text = f"_{text}_"
            if "strong" in kinds:
                text = f"*{text}*"
        if "link" in kinds:
            href = kinds["link"].replace("|", "%7C").replace("]", "%5D")
            text = f"[{href}]" if core == kinds["link"] else f"[{text}|{href}]"
        out.append(lead + text + trail)
    rendered = "".join(out)
    # A line starting with - or # would become a list.
    return re.sub(r"^([-#])", r"\\\1", rendered)


def _wiki_list(block: Block, prefix: str = "") -> str:
    marker = prefix + ("#" if block.ordered else "*")
    lines = []
    for item in block.items:
        head, rest = (item[0], item[1:]) if item and item[0].kind == "paragraph" else (Block("paragraph"), item)
        lines.append(f"{marker} {_wiki_inline(head.spans)}".rstrip())
        for child in rest:
            lines.append(_wiki_list(child, marker) if child.kind == "list" else _wiki_block(child))
    return "\n".join(lines)


def _wiki_block(block: Block) -> str:
    if block.kind == "paragraph":
        return _wiki_inline(block.spans)
    if block.kind == "heading":
        return f"h{block.level}. {_wiki_inline(block.spans)}"
    if block.kind == "rule":
        return "----"
    if block.kind == "code":
        body = block.text.replace("{code}", "{ code}").replace("{noformat}", "{ noformat}")
        if block.language:
            return f"{{code:{block.language}}}\n{body}\n{{code}}"
        return f"{{noformat}}\n{body}\n{{noformat}}"
    if block.kind == "quote":
        return "{quote}\n" + "\n\n".join(_wiki_block(b) for b in block.children) + "\n{quote}"
    if block.kind == "list":
        return _wiki_list(block)
    if block.kind == "table":
        lines = []
        for index, row in enumerate(block.rows):
            sep = "||" if index == 0 else "|"
            cells = [_wiki_inline(cell) or " " for cell in row]
            lines.append(sep + sep.join(cells) + sep)
        return "\n".join(lines)
    raise ValueError(f"unknown block {block.kind}")


def truncate(markdown: str, limit: int = JIRA_TEXT_LIMIT, note: str = "the full text is attached") -> str:
    """Cut Markdown to ``limit`` characters at a line boundary, saying so."""
    if len(markdown) <= limit:
        return markdown
    cut = markdown.rfind("\n", 0, limit - 200)
    cut = cut if cut > 0 else limit - 200
    head = markdown[:cut]
    if head.count("```") % 2:
        head += "\n```"
    return head + f"\n\n*(truncated at {cut} of {len(markdown)} characters; {note})*"
