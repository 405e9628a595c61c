"""The page: self-contained, escaped, themed by CSS variables, every figure marked."""

import json
import re
import xml.etree.ElementTree as ET
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rollback_pm.report import html as page
from rollback_pm.report.data import ReportData, ReportIncident, Scope, load
from rollback_pm.report.metrics import compute, rollbacks_per_week
from rollback_pm.report.plots import SENTINELS, rollbacks_chart, themed_svg

from .conftest import NOW, SINCE, at, hours


class Page(HTMLParser):
    """Every start tag with its attributes, the text, and the inline CSS."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.css: list[str] = []
        self._in_style = False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_style = tag == "style"

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        (self.css if self._in_style else self.text).append(data)

    def all(self, tag):
        return [attrs for t, attrs in self.tags if t == tag]

    def figures(self):
        return [a for _, a in self.tags if "data-metric" in a]


def render(seeded, **filters):
    with seeded.ledger() as ledger:
        report = compute(load(ledger, seeded.scope(**filters), hours))
    return page.render(report, generated_at=NOW)


@pytest.fixture
def seeded_page(seeded):
    return render(seeded)


def incident(n: int, service: str = "api", **over) -> ReportIncident:
    when = at(5, 10) + timedelta(minutes=n)
    values = dict(
        id=f"{n:012x}",
        service=service,
        environment="production",
        status="open",
        severity="High",
        deploy_sha="a" * 40,
        started_at=when - timedelta(minutes=20),
        detected_at=when - timedelta(minutes=15),
        mitigated_at=when,
        created_at=when,
        done_at=None,
        deadline_hours=24.0,
        due_at=when + timedelta(hours=24),
    )
    values.update(over)
    return ReportIncident(**values)


def page_of(incidents):
    data = ReportData(Scope(SINCE, NOW), sorted(incidents, key=lambda i: i.rolled_back_at, reverse=True), [])
    return page.render(compute(data), generated_at=NOW)


def test_the_page_fetches_nothing(seeded_page):
    parsed = Page(seeded_page)
    assert not parsed.all("script") and not parsed.all("img") and not parsed.all("iframe")
    assert not parsed.all("object") and not parsed.all("embed") and not parsed.all("video")
    assert [a.get("rel") for a in parsed.all("link")] == ["icon"] and parsed.all("link")[0]["href"] == "data:,"
    [csp] = [a for a in parsed.all("meta") if a.get("http-equiv") == "Content-Security-Policy"]
    assert csp["content"] == "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
    css = "".join(parsed.css)
    assert "@import" not in css and "url(" not in css and "@font-face" not in css
    for _, attrs in parsed.tags:
        assert "src" not in attrs
        for name, value in attrs.items():
            if value and "url(" in value:  # SVG clip paths and markers: only fragments of this page
                assert re.fullmatch(r"url\(#[\w.-]+\)", re.search(r"url\([^)]*\)", value).group(0)), (name, value)
    # what is linked: tickets, drafts and evidence, or places in the page; never javascript:
    hrefs = [a["href"] for a in parsed.all("a")]
    assert hrefs and all(h.startswith(("#", "file:///", "https://jira.example.com/")) for h in hrefs), hrefs
    assert not re.search(r"<!DOCTYPE svg|<\?xml|xlink:href=\"(?!#)", seeded_page)


def test_ids_are_unique_and_every_reference_resolves(seeded_page):
    ids = re.findall(r'\sid="([^"]+)"', seeded_page)
    assert len(ids) == len(set(ids))
    refs = set(re.findall(r"url\(#([^)]+)\)", seeded_page)) | set(re.findall(r'href="#([^"]+)"', seeded_page))
    assert refs <= set(ids)


def test_charts_are_themed_by_css_variables_only(seeded_page):
    svgs = re.findall(r"<svg\b.*?</svg>", seeded_page, re.S)
    assert len(svgs) == 7  # rollbacks, mttd, mttr, states, done, follow-ups, signatures
    for svg in svgs:
        assert not re.search(r"#[0-9a-fA-F]{6}\b|#[0-9a-fA-F]{3}\b|rgb\(", svg), "a hard-coded colour"
        assert "var(--c-" in svg
        assert "<text" in svg and '<path d="M 0 0 L' not in svg[:200]  # text stays text
        ET.fromstring(svg)  # well-formed
    css = "".join(Page(seeded_page).css)
    for role in SENTINELS:  # every role has a colour in light, dark and print
        assert len(re.findall(rf"--c-{role}:", css)) == 3, role
    assert "@media (prefers-color-scheme: dark)" in css and "@media print" in css


def test_every_figure_has_a_json_value(seeded_page):
    figures = Page(seeded_page).figures()
    assert len(figures) > 50
    for f in figures:
        json.loads(f["data-value"])
    names = {f["data-metric"] for f in figures}
    assert {"rollbacks-count", "mttd-median", "mttd-p90", "mttr-median", "mttr-p90", "pm-overdue"} <= names
    assert {"followups-past-due", "repeat-count", "incident-mttr", "rollbacks-week"} <= names


def test_each_plot_has_its_definition_under_it(seeded_page):
    captions = re.findall(r"</svg>\s*<figcaption>(.*?)</figcaption>", seeded_page, re.S)
    assert len(captions) == 7
    assert all(c.count(". ") == 0 and c.endswith(".") for c in captions), captions  # one sentence each


def test_links(seeded):
    text = render(seeded)
    a = seeded.ids["A"]
    row = re.search(rf'<tr id="i-{a}">.*?</tr>', text, re.S).group(0)
    assert '<a href="https://jira.example.com/browse/OPS-1">OPS-1</a>' in row
    draft = seeded.state / "drafts" / "a.md"
    assert f'<a href="{draft.as_uri()}" title="{draft}">draft</a>' in row
    assert 'href="file:///var/log/azaion/rollback-20260505T101000Z.log"' in row
    c = re.search(rf'<tr id="i-{seeded.ids["C"]}">.*?</tr>', text, re.S).group(0)
    assert f'<a href="{(seeded.state / "tickets" / "PM-3.json").as_uri()}">PM-3</a>' in c


@pytest.mark.parametrize(
    ("url", "href"),
    [
        ("https://jira.example.com/browse/OPS-1", "https://jira.example.com/browse/OPS-1"),
        ("http://gitea.local:3000/o/r/issues/4", "http://gitea.local:3000/o/r/issues/4"),
        ("file:///var/lib/rollback-pm/tickets/PM-1.json", "file:///var/lib/rollback-pm/tickets/PM-1.json"),
        ("javascript:alert(1)", None),
        ("JavaScript:alert(1)", None),
        ("data:text/html,<script>alert(1)</script>", None),
        ("https://", None),
        ("https://x.example/a b", None),
        ("", None),
        (None, None),
    ],
)
def test_ticket_urls_become_links_only_when_safe(url, href):
    assert page.url_href(url) == href


def test_local_paths():
    assert page.local_href("/var/log/azaion/rollback 1.log") == "file:///var/log/azaion/rollback%201.log"
    assert page.local_href("drafts/a b#1.md") == "drafts/a%20b%231.md"


def test_outside_text_is_escaped_everywhere():
    nasty = '<script>alert("x")</script> & $\\frac{1}{2}$ _hidden'
    text = page_of([incident(1, service=nasty, ticket_key='K"><b>', ticket_url="javascript:alert(1)"), incident(2)])
    parsed = Page(text)
    assert not parsed.all("script") and not parsed.all("b")
    assert "<td>&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; $\\frac{1}{2}$ _hidden</td>" in text  # the table
    assert '>&lt;script&gt;alert("x")&lt;/script&gt;\u2026</text>' in text  # the chart's legend, cut at 28
    legend = page_of([incident(1, service="_hidden $x^2$"), incident(2)])
    assert ">_hidden $x^2$</text>" in legend  # no math, and a name starting with _ keeps its legend entry
    assert "K&#34;&gt;&lt;b&gt;" in text and "javascript:" not in text


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(min_size=1, max_size=30))
def test_any_service_name_stays_text(name):
    text = page_of([incident(1, service=name), incident(2, service=name + "x")])
    parsed = Page(text)
    assert [t for t, _ in parsed.tags if t in ("script", "iframe", "img", "object")] == []
    for svg in re.findall(r"<svg\b.*?</svg>", text, re.S):
        ET.fromstring(svg)


def test_a_chart_svg_stands_alone_when_inlined():
    data = ReportData(Scope(SINCE, NOW), [incident(1)], [])
    svg = rollbacks_chart(rollbacks_per_week(data))
    assert svg.startswith('<svg xmlns="http://www.w3.org/2000/svg"') and 'class="plot"' in svg
    assert '<title id="rollbacks-title">Rollbacks per week by service</title>' in svg
    assert "<style" not in svg and "<metadata" not in svg and "width=" not in svg.split(">", 1)[0]


def test_themed_svg_prefixes_ids_and_their_references():
    raw = (
        '<?xml version="1.0"?>\n<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "http://www.w3.org/x.dtd">\n'
        '<svg width="10pt" height="5pt" viewBox="0 0 10 5" xmlns="http://www.w3.org/2000/svg"><metadata>m</metadata>'
        '<defs><style type="text/css">*{stroke: red}</style><clipPath id="p1"><rect/></clipPath></defs>'
        f'<path clip-path="url(#p1)" style="fill: {SENTINELS["s0"]}; stroke: #123456"/><use xlink:href="#p1"/></svg>'
    )
    assert themed_svg(raw, "c", "A <title>") == (
        '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" class="plot" '
        'viewBox="0 0 10 5" role="img" aria-labelledby="c-title"><title id="c-title">A &lt;title&gt;</title>'
        '<defs><clipPath id="c-p1"><rect/></clipPath></defs>'
        '<path clip-path="url(#c-p1)" style="fill: var(--c-s0); stroke: #123456"/><use xlink:href="#c-p1"/></svg>'
    )


def test_empty_period_is_a_page_not_an_error(seeded):
    with seeded.ledger() as ledger:
        report = compute(load(ledger, Scope(NOW + timedelta(days=400), NOW + timedelta(days=401)), hours))
    text = page.render(report, generated_at=NOW)
    assert "<h2>No rollbacks in this period</h2>" in text
    assert "<svg" not in text and 'data-metric="rollbacks-count" data-value="0"' in text
    filtered = render(seeded, service="nope")
    assert "No rollbacks in this period" in filtered and "other <code>--service</code> / <code>--env</code>" in filtered
    assert "<strong>nope</strong>" in filtered


def test_the_table_lists_the_newest_incidents_only(monkeypatch):
    monkeypatch.setattr(page, "TABLE_LIMIT", 3)
    text = page_of([incident(n) for n in range(5)])
    rows = re.findall(r'<tr id="i-([0-9a-f]+)">', text)
    assert rows == [f"{n:012x}" for n in (4, 3, 2)]
    assert "The newest 3 of 5 incidents" in text


def test_broken_records_are_listed(seeded_page, seeded):
    assert '<section id="skipped">' in seeded_page
    assert f"incident <code>{seeded.ids['H']}</code>: started_at &#39;yesterday&#39; is not" in seeded_page
