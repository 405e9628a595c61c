"""Markdown escaping for values we put into postmortem drafts, one function per place.

A value is escaped for where it lands: a table cell, an inline code span, a fenced
code block, a link or running text. Each function returns ``Md`` (a ``str`` that is
already Markdown), and the jinja environment escapes every plain ``str`` it outputs as
running text, so a user template that forgets a filter is still safe.

The single recognisable placeholder for unknowns is ``[TODO: what to write]``.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from rollback_pm.timeutil import iso

PLACEHOLDER_RE = re.compile(r"(?<!\\)\[TODO(?::[^\]\n]*)?\]")


class Md(str):
    """Text that is already Markdown: output as is, never escaped again."""

    __slots__ = ()


def todo(what: str = "") -> Md:
    """The placeholder for something only a human can fill in."""
    what = " ".join(str(what).replace("]", ")").split())
    return Md(f"[TODO: {what}]" if what else "[TODO]")


_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Characters that start emphasis, code, links, HTML, tables or strikethrough anywhere in a line.
_INLINE_SPECIAL = re.compile(r"([\\`*\[\]|~<>])")
# "_" only emphasises at a word edge; snake_case stays readable.
_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")
_ENTITY = re.compile(r"&(?=#?[A-Za-z0-9]+;)")
# What makes a line a heading, list item or setext underline when text starts it.
_LINE_START = re.compile(r"^(\s*)([#=+-])")
_ORDERED = re.compile(r"^(\s*\d+)([.)])")


def clean(value: Any) -> str:
    """To str; drop terminal colour codes and control characters, unify newlines."""
    text = _text_of(value)
    text = _ANSI.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    return _CONTROL.sub("", text)


def _text_of(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return iso(value) or ""
    return str(value)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _escape_inline(text: str) -> str:
    text = _INLINE_SPECIAL.sub(r"\\\1", text)
    text = _UNDERSCORE.sub(r"\\_", text)
    text = _ENTITY.sub(r"\\&", text)
    text = _LINE_START.sub(r"\1\\\2", text, count=1)
    return _ORDERED.sub(r"\1\\\2", text, count=1)


def text(value: Any, todo: str | None = None) -> Md:
    """Running text on one line: Markdown control characters escaped, whitespace runs
    (newlines included) -> one space."""
    if isinstance(value, Md):
        return Md(" ".join(value.split("\n")))
    if _missing(value):
        return _placeholder(todo)
    return Md(_escape_inline(" ".join(clean(value).split())))


def cell(value: Any, todo: str | None = None) -> Md:
    """A GFM table cell: pipes escaped (inside code spans too), newlines -> <br>."""
    if isinstance(value, Md):
        md = str(value)
    elif _missing(value):
        return _placeholder(todo)
    else:
        lines = [text(line) for line in clean(value).strip().split("\n")]
        return Md("<br>".join(lines))
    return Md(_escape_pipes(md).replace("\n", "<br>"))


def _escape_pipes(md: str) -> str:
    """Escape the pipes of Markdown for a GFM table cell. The table splits rows on every
    pipe without a backslash before it, code spans included; so inside a code span (where
    backslashes are literal) every pipe gets one, outside only the bare ones do."""
    out: list[str] = []
    i, n = 0, len(md)
    while i < n:
        c = md[i]
        if c == "\\" and i + 1 < n:
            out.append(md[i : i + 2])  # an escape pair, "\\|" included, stays as it is
            i += 2
        elif c == "`":
            j = i
            while j < n and md[j] == "`":
                j += 1
            fence = md[i:j]
            close = re.compile(rf"(?<!`){fence}(?!`)").search(md, j)
            if close is None:
                out.append(fence)
                i = j
            else:
                out.append(fence + md[j : close.start()].replace("|", "\\|") + fence)
                i = close.end()
        else:
            out.append("\\|" if c == "|" else c)
            i += 1
    return "".join(out)


def code(value: Any, todo: str | None = None) -> Md:
    """An inline code span whose fence is longer than any backtick run inside."""
    if _missing(value):
        return _placeholder(todo)
    body = " ".join(clean(value).replace("\t", " ").split("\n"))
    runs = [len(r) for r in re.findall(r"`+", body)]
    fence = "`" * (max(runs, default=0) + 1)
    if body.startswith("`") or body.endswith("`") or (body.startswith(" ") and body.endswith(" ") and body.strip()):
        body = f" {body} "
    return Md(f"{fence}{body}{fence}")


def codeblock(value: Any, info: str = "", todo: str | None = None) -> Md:
    """A fenced code block whose fence is longer than any backtick run in the content."""
    if _missing(value):
        return _placeholder(todo)
    body = clean(value).rstrip("\n")
    runs = [len(r) for r in re.findall(r"`+", body)]
    fence = "`" * max(3, max(runs, default=0) + 1)
    info = re.sub(r"[`\s]", "", info)
    return Md(f"{fence}{info}\n{body}\n{fence}")


_SAFE_SCHEMES = {"http", "https", "mailto"}


def link(label: Any, url: Any, todo: str | None = None) -> Md:
    """``[label](<url>)``; a URL we would not want clicked (javascript:, ...) becomes code."""
    if _missing(url):
        return _placeholder(todo)
    target = clean(url).strip()
    try:
        scheme = urlsplit(target).scheme.lower()
    except ValueError:  # a broken IPv6 bracket: shown, never a link
        return code(target)
    if scheme and scheme not in _SAFE_SCHEMES:
        return code(target)
    target = re.sub(r"[\s<>|\\]", lambda m: f"%{ord(m.group(0)):02X}", target)
    label_md = text(target if _missing(label) else label)
    return Md(f"[{label_md}](<{target}>)")


def url(value: Any, todo: str | None = None) -> Md:
    """A link whose text is the URL itself."""
    return link(value, value, todo=todo)


def strong(value: Any, todo: str | None = None) -> Md:
    """**bold** running text."""
    if _missing(value):
        return _placeholder(todo)
    return Md(f"**{text(value)}**")


def ref(value: Any, todo: str | None = None) -> Md:
    """A ticket or document reference: a link if it is a URL, else running text."""
    if not _missing(value) and re.match(r"(?i)https?://", clean(value).strip()):
        return url(value)
    return text(value, todo=todo)


def oneline(value: Any) -> str:
    """Whitespace (newlines included) collapsed to single spaces; still needs a place filter."""
    return " ".join(clean(value).split())


def verbatim(value: Any) -> Md:
    """Text as is (control characters dropped), for inside a ``{% filter codeblock %}`` block."""
    return Md(clean(value))


def _placeholder(what: str | None) -> Md:
    return todo(what) if what is not None else Md("")


def finalize(value: Any) -> Any:
    """jinja ``finalize``: anything printed without a place filter is escaped as running text."""
    if isinstance(value, Md):
        return value
    if value is None:
        return todo()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return text(value)


FILTERS = {
    "text": text,
    "cell": cell,
    "code": code,
    "codeblock": codeblock,
    "link": link,
    "url": url,
    "ref": ref,
    "strong": strong,
    "oneline": oneline,
    "verbatim": verbatim,
}
