"""Ticket documents rendered for each tracker: values stay data, whatever they hold.

Markdown is checked with a real parser (markdown-it-py with GFM tables and linkify, as the
forges render it) plus the patterns the forges look for on top of Markdown (mentions,
issue references, wiki links, autolinks); ADF against the official schema; wiki markup by
its exact escaped text.
"""

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from rollback_pm.trackers.markup import (
    ZWSP,
    Doc,
    adf_text,
    code,
    link,
    plain_doc,
    strong,
    text,
    to_adf,
    to_markdown,
    to_wiki,
    truncate,
    wiki_escape,
)
from tests.support.fake_jira import adf_validator

PIPELINE = "https://ci.example.com/repos/1/pipeline/42"
# What an attacker (or an unlucky message) puts into a step name, message, service name, ...
HOSTILE = [
    "api`](javascript:alert(1)) <img src=x onerror=alert(1)>",
    "# heading",
    "| a | b |",
    "<script>alert(1)</script>",
    "![beacon](http://evil/x.png)",
    "@everyone",
    "[link](http://evil)",
    "[evil|http://x]",
    "{code}",
    "h1. big",
    "> quoted",
    "- item",
    "1. first",
    "```",
    "~~~",
    "**bold** _em_ ~~gone~~",
    "see #12 and !3 and acme/shop@0123456 and mail admin@evil.example",
    "www.evil.example",
    "[[wiki]]",
    "&lt;b&gt; &amp; &#64;",
    "<https://evil.example>",
    "line one\n# two\n| x | y |\n---",
    "trailing backslash \\",
]


def markdown_parser() -> MarkdownIt:
    """GFM as the forges render it: tables, strikethrough, autolinks (www., scheme://, emails)."""
    parser = MarkdownIt("gfm-like")
    parser.linkify.set({"fuzzy_link": False})  # GFM links bare domains only after www.
    return parser


def hostile_doc(value: str) -> Doc:
    """``value`` in every place a field can land, next to the one link a ticket has."""
    return (
        Doc()
        .paragraph("Production rollback of ", strong(value), " in ", strong("production"), ".")
        .table(
            ["Field", "Value"],
            [
                ["Service", value],
                ["Step", code(value)],
                ["Both", [code(value), f" ({value})"]],
                ["Pipeline", link(PIPELINE, PIPELINE)],
                ["Bad link", link(value, "javascript:alert(1)")],
                ["Data link", link("x", "data:text/html,<script>alert(1)</script>")],
                ["Field link", link("x", value)],
            ],
        )
        .paragraph(strong("Failed smoke step 3 "), code(value), ": ", value)
        .paragraph(value)
        .bullets([[code(value), f" ({value} bytes)"], [value]])
    )


# Patterns the forges apply to the rendered text (outside code and links), from Gitea's
# references and markup packages: a match would be a mention, a reference or a link.
FORGE_PATTERNS = {
    "mention": re.compile(r"(?:^|[\s(\[{\"'])@[\w-]"),
    "issue reference": re.compile(r"[#!]\d"),
    "commit reference": re.compile(r"[\w.-]/[\w.-]+@[0-9a-f]{7}"),
    "wiki link": re.compile(r"\[\["),
    "autolink": re.compile(r"(?i)(?:[a-z][a-z0-9+.-]*://|(?:^|[\s*_~(])www\.)"),
    "email": re.compile(r"[\w.+-]@[\w-]+\.\w"),
}


def inline_tokens(tokens):
    for token in tokens:
        yield from token.children or []


def outside_code_and_links(tokens) -> list[str]:
    texts, in_link = [], 0
    for token in inline_tokens(tokens):
        if token.type == "link_open":
            in_link += 1
        elif token.type == "link_close":
            in_link -= 1
        elif token.type == "text" and not in_link:
            texts.append(token.content)
    return texts


@pytest.mark.parametrize("value", HOSTILE)
def test_markdown_makes_no_markup_from_a_field(value):
    rendered = to_markdown(hostile_doc(value))
    tokens = markdown_parser().parse(rendered)
    types = [t.type for t in tokens] + [t.type for t in inline_tokens(tokens)]
    for forbidden in ("heading_open", "html_block", "html_inline", "image", "fence", "code_block", "blockquote_open"):
        assert forbidden not in types, (forbidden, rendered)
    assert types.count("ordered_list_open") == 0 and types.count("bullet_list_open") == 1
    assert types.count("list_item_open") == 2
    assert types.count("table_open") == 1 and types.count("tr_open") == 8, rendered  # header + 7 rows
    assert types.count("td_open") == 14
    assert types.count("strong_open") == 3 and types.count("em_open") == types.count("s_open") == 0
    links = [t.attrs.get("href") for t in inline_tokens(tokens) if t.type == "link_open"]
    assert links == [PIPELINE]
    for text_run in outside_code_and_links(tokens):
        for name, pattern in FORGE_PATTERNS.items():
            assert not pattern.search(text_run), (name, text_run)


@pytest.mark.parametrize("value", HOSTILE)
def test_markdown_keeps_the_value_readable(value):
    """What the reader sees is the value (whitespace collapsed), not an escaped version of it."""
    tokens = markdown_parser().parse(to_markdown(Doc().paragraph("Message: ", value)))
    shown = "".join(t.content for t in inline_tokens(tokens) if t.type in ("text", "code_inline"))
    assert shown.replace(ZWSP, "") == "Message: " + " ".join(value.split())
    [code_run] = [t.content for t in inline_tokens(markdown_parser().parse(to_markdown(Doc().paragraph(code(value)))))]
    assert code_run == " ".join(value.split())


@pytest.mark.parametrize("value", HOSTILE)
def test_adf_has_the_values_as_text_and_only_the_pipeline_link(value):
    doc = to_adf(hostile_doc(value))
    assert [e.message for e in adf_validator().iter_errors(doc)] == []
    hrefs, texts = [], []

    def walk(node):
        if isinstance(node, dict):
            if node.get("type") == "text":
                texts.append(node["text"])
                hrefs.extend(m["attrs"]["href"] for m in node.get("marks", []) if m["type"] == "link")
            for child in node.get("content", []):
                walk(child)

    walk(doc)
    assert hrefs == [PIPELINE]
    assert {n["type"] for n in doc["content"]} == {"paragraph", "table", "bulletList"}
    assert " ".join(value.split()) in texts  # exactly the value: ADF text nodes are data
    assert ZWSP not in "".join(texts)


WIKI = [
    (
        "api`](javascript:alert(1)) <img src=x onerror=alert(1)>",
        "api`\\](javascript:alert(1)) <img src=x onerror=alert(1)>",
    ),
    ("# heading", "\\# heading"),
    ("| a | b |", "\\| a \\| b \\|"),
    ("<script>alert(1)</script>", "<script>alert(1)</script>"),  # Jira escapes HTML itself
    ("![beacon](http://evil/x.png)", f"\\!\\[beacon\\](http:{ZWSP}//evil/x.png)"),
    ("@everyone", f"{ZWSP}@everyone"),
    ("[link](http://evil)", f"\\[link\\](http:{ZWSP}//evil)"),
    ("[evil|http://x]", f"\\[evil\\|http:{ZWSP}//x\\]"),
    ("[~admin]", "\\[\\~admin\\]"),
    ("{code}x{code}", "\\{code\\}x\\{code\\}"),
    ("{noformat}", "\\{noformat\\}"),
    ("*b* _i_ -s- +u+ ^sup^ ~sub~ ??cite??", "\\*b\\* \\_i\\_ \\-s\\- \\+u\\+ \\^sup\\^ \\~sub\\~ \\?\\?cite\\?\\?"),
    ("a \\\\ b", "a &#92;&#92; b"),  # "\\" is a line break in wiki markup
    ("&lt;b&gt;", "&amp;lt;b&amp;gt;"),
    ("see #12", f"see \\#{ZWSP}12"),
]


@pytest.mark.parametrize(("value", "escaped"), WIKI)
def test_wiki_escapes_every_special_character(value, escaped):
    assert wiki_escape(value) == escaped
    assert to_wiki(Doc().paragraph("Message: ", value)) == f"Message: {escaped}"


def test_wiki_line_starts_and_structure():
    assert to_wiki(plain_doc("h1. big")) == "&#104;1. big"
    assert to_wiki(plain_doc("bq. quoted")) == "&#98;q. quoted"
    assert to_wiki(plain_doc("- item\n# two")) == "\\- item \\# two"
    doc = hostile_doc("[evil|http://x] | {code}")
    wiki = to_wiki(doc).split("\n")
    assert wiki[2] == "||Field||Value||"
    assert wiki[3] == f"|Service|\\[evil\\|http:{ZWSP}//x\\] \\| \\{{code\\}}|"
    assert wiki[6] == f"|Pipeline|[{PIPELINE}]|"
    assert wiki[7] == "|Bad link|{{javascript:alert(1)}}|"  # a code span, never a link
    assert sum(line.startswith("|") for line in wiki) == 8
    assert "[" not in "".join(wiki[3:6] + wiki[7:]).replace("\\[", "")


def test_links_only_to_http_urls():
    assert link("ci", PIPELINE) == link("ci", PIPELINE) and link("ci", PIPELINE).href == PIPELINE
    for url in (
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        "data:text/html;base64,PHNjcmlwdD4=",
        "vbscript:x",
        "file:///etc/passwd",
        "//evil.example/x",
        "http://",
        "https://evil.example/a b",
        "ftp://evil.example/x",
        "http://[::1",  # urllib cannot take these apart (ValueError): code, not an error
        "http://[jira]/",
    ):
        span = link("label", url)
        assert span.style == "code" and span.href is None, url
    # the label of a good link is data too
    rendered = to_markdown(Doc().paragraph(link("[x](javascript:y)", PIPELINE)))
    [href] = [t.attrs["href"] for t in inline_tokens(markdown_parser().parse(rendered)) if t.type == "link_open"]
    assert href == PIPELINE


def test_values_are_one_line_masked_and_bounded():
    from rollback_pm.log import register_secret

    register_secret("s3cr3t-in-a-message")
    span = text("a\nb\r\n\tc \x1b[31mred\x1b[0m \x00 token s3cr3t-in-a-message " + "x" * 5000)
    assert span.text.startswith("a b c red token *** ") and len(span.text) == 2000 and span.text.endswith("…")


def test_plain_string_comments_are_text():
    doc = plain_doc("# not a heading [x](http://evil)")
    assert [b.kind for b in doc.blocks] == ["paragraph"]
    assert adf_text(to_adf(doc)) == "# not a heading [x](http://evil)"
    assert plain_doc(doc) is doc


def test_adf_of_nothing_is_still_a_document():
    assert adf_validator().is_valid(to_adf(Doc()))
    assert adf_validator().is_valid(to_adf(Doc().paragraph("", "\x00")))


def test_truncate_drops_trailing_blocks_and_says_so():
    doc = Doc()
    for i in range(500):
        doc.paragraph(f"line {i} " + "x" * 80)
    for render in (to_markdown, to_wiki, to_adf):
        cut = truncate(doc, render, limit=5000, note="see the draft")
        out = render(cut)
        assert len(out if isinstance(out, str) else __import__("json").dumps(out)) <= 5000
        assert cut.plain().endswith("see the draft)") and cut.plain().startswith("line 0 ")
    assert truncate(doc, to_markdown, limit=10**6) is doc


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=80))
def test_any_value_renders_as_its_own_text(value):
    """Property: whatever the value, Markdown shows exactly it (bar the invisible spaces) and
    makes nothing of it; wiki markup leaves no special character unescaped."""
    doc = Doc().paragraph("Message: ", value)
    tokens = markdown_parser().parse(to_markdown(doc))
    assert [t.type for t in tokens] in (
        ["paragraph_open", "inline", "paragraph_close"],
        [],
    )
    kinds = {t.type for t in inline_tokens(tokens)}
    assert kinds <= {"text", "softbreak"}, kinds
    shown = "".join(t.content for t in inline_tokens(tokens) if t.type == "text").replace(ZWSP, "")
    assert " ".join(shown.split()) == doc.plain()
    wiki = re.sub(r"&(?:amp|#92);", "", wiki_escape(value.strip()))
    assert not re.search(r"(?<!\\)[*_?\-+^~{}\[\]|!#&]", wiki) and "\\\\" not in wiki and "://" not in wiki
