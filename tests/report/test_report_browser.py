"""The report in a real headless chromium (Debian's), driven over the DevTools protocol.

The page loads with no console error and no request but the file itself; screenshots in
light and dark mode and for print are not blank; and the figures the page shows, read
back from the DOM, are the ones `report --json` gives.
"""

import io
import json
import statistics

import pytest
from click.testing import CliRunner
from PIL import Image

from rollback_pm.cli import cli
from rollback_pm.report.html import duration_text

from .conftest import NOW_ARG

pytestmark = pytest.mark.browser

READ_FIGURES = """
Array.from(document.querySelectorAll('[data-metric]')).map(e => ({
  metric: e.dataset.metric, key: e.dataset.key === undefined ? null : e.dataset.key,
  value: JSON.parse(e.dataset.value), text: e.textContent}))
"""


@pytest.fixture
def made(seeded, tmp_path):
    """The seeded report as the command writes it: HTML and JSON from one run."""
    html, figures = tmp_path / "report.html", tmp_path / "report.json"
    result = CliRunner().invoke(
        cli,
        ["--state-dir", str(seeded.state), "report", "--since", "21d", "--now", NOW_ARG]
        + ["--html", str(html), "--json", str(figures)],
        catch_exceptions=False,
    )
    assert result.exit_code == 3, result.stderr  # the seeded broken record is left out and listed
    return html, json.loads(figures.read_text())


@pytest.fixture
def page(chromium):
    tab = chromium.new_page()
    yield tab
    tab.send("Emulation.setEmulatedMedia", media="", features=[])
    tab.close()


def pixels(png: bytes) -> tuple[float, float]:
    """(mean, standard deviation) of the screenshot's luminance."""
    image = Image.open(io.BytesIO(png)).convert("L")
    values = image.tobytes()  # one byte of luminance a pixel
    return statistics.fmean(values), statistics.pstdev(values)


def expected_figures(out: dict) -> dict[tuple[str, str | None], object]:
    """What each data-metric must show, taken from the --json output."""
    want: dict[tuple[str, str | None], object] = {("rollbacks-count", None): out["rollbacks"]["count"]}
    want[("rollbacks-services", None)] = len(out["rollbacks"]["services"])
    for week in out["rollbacks"]["weeks"]:
        want[("rollbacks-week-total", week["week"])] = week["total"]
        for service, n in week["by_service"].items():
            want[("rollbacks-week", f"{week['week']}|{service}")] = n
    for name in ("mttd", "mttr"):
        m = out[name]
        want[(f"{name}-median", None)] = m["median_seconds"]
        want[(f"{name}-p90", None)] = m["p90_seconds"]
        want[(f"{name}-measured", None)] = m["measured"]
        want[(f"{name}-excluded-unknown-start", None)] = m["excluded"]["unknown_start"]
        want[(f"{name}-excluded-unknown-end", None)] = m["excluded"]["unknown_end"]
        want[(f"{name}-excluded-inconsistent", None)] = m["excluded"]["inconsistent"]
        for week in m["weeks"]:
            want[(f"{name}-week-count", week["week"])] = week["count"]
            want[(f"{name}-week-median", week["week"])] = week["median_seconds"]
            want[(f"{name}-week-p90", week["week"])] = week["p90_seconds"]
    for state, n in out["postmortems"]["states"].items():
        want[(f"pm-{state.replace('_', '-')}", None)] = n
    done = out["postmortems"]["time_to_done"]
    want[("ttd-median", None)] = done["median_seconds"]
    want[("ttd-p90", None)] = done["p90_seconds"]
    want[("ttd-measured", None)] = done["measured"]
    want[("ttd-excluded-done-time-unknown", None)] = done["excluded"]["done_time_unknown"]
    want[("ttd-excluded-inconsistent", None)] = done["excluded"]["inconsistent"]
    for name, n in out["followups"].items():
        want[(f"followups-{name.replace('_', '-')}", None)] = n
    want[("repeats-count", None)] = len(out["repeat_signatures"])
    for r in out["repeat_signatures"]:
        want[("repeat-count", r["signature"])] = r["count"]
        want[("repeat-last-seen", r["signature"])] = r["last_seen"]
    for i in out["incidents"]:
        want[("incident-rolled-back-at", i["id"])] = i["rolled_back_at"]
        want[("incident-mttd", i["id"])] = i["mttd_seconds"]
        want[("incident-mttr", i["id"])] = i["mttr_seconds"]
        want[("incident-postmortem", i["id"])] = i["postmortem"]
    return want


def test_loads_offline_without_errors_or_requests(page, made):
    html, _ = made
    url = html.as_uri()
    page.open(url)
    assert page.errors() == []
    assert page.requests() == [url]  # the document itself, nothing else
    assert page.evaluate("document.querySelectorAll('svg.plot').length") == 7
    assert page.evaluate("document.title") == "Rollback report, 2026-04-29 12:00 to 2026-05-20 12:00"


def test_the_figures_shown_are_the_json_figures(page, made):
    html, out = made
    page.open(html.as_uri())
    shown = page.evaluate(READ_FIGURES)
    want = expected_figures(out)
    got: dict[tuple[str, str | None], object] = {}
    for f in shown:
        key = (f["metric"], f["key"])
        assert got.setdefault(key, f["value"]) == f["value"], f"{key} shows two values"
        # what a reader sees is the value, formatted
        if f["metric"].endswith(("median", "p90")) or f["metric"] in ("incident-mttd", "incident-mttr"):
            assert f["text"] == duration_text(f["value"]), f
        elif isinstance(f["value"], int):
            assert f["text"] == str(f["value"]), f
    assert got == want
    # and the hand-computed ones, once more, as a reader sees them
    texts = {(f["metric"], f["key"]): f["text"] for f in shown}
    assert (texts[("mttd-median", None)], texts[("mttd-p90", None)]) == ("5m 00s", "9m 00s")
    assert (texts[("mttr-median", None)], texts[("mttr-p90", None)]) == ("30m 00s", "52m 00s")
    # no config here: staging has the default 24h deadline too, so C and D are overdue
    assert (texts[("pm-overdue", None)], texts[("followups-past-due", None)]) == ("2", "1")


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_screenshots_are_not_blank(page, made, scheme):
    html, _ = made
    page.color_scheme(scheme)
    page.open(html.as_uri())
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == {"light": "rgb(255, 255, 255)", "dark": "rgb(13, 17, 23)"}[scheme]
    mean, spread = pixels(page.screenshot())
    assert spread > 20, f"{scheme} screenshot looks blank (luminance sd {spread:.1f})"
    if scheme == "light":
        assert mean > 180
    else:
        assert mean < 80
    # the charts follow: their text is drawn in the page's foreground colour
    fill = page.evaluate("getComputedStyle(document.querySelector('svg.plot text')).fill")
    assert fill == {"light": "rgb(31, 35, 40)", "dark": "rgb(230, 237, 243)"}[scheme]
    assert page.errors() == []


def test_print(page, made):
    html, _ = made
    page.color_scheme("dark", media="print")  # a dark screen still prints dark on white
    page.open(html.as_uri())
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(255, 255, 255)"
    mean, spread = pixels(page.screenshot())
    assert spread > 20 and mean > 180
    assert page.pdf().startswith(b"%PDF")
    assert page.errors() == []


def test_an_empty_period_in_the_browser(page, seeded, tmp_path):
    html = tmp_path / "empty.html"
    result = CliRunner().invoke(
        cli,
        ["--state-dir", str(seeded.state), "report", "--since", "1d", "--now", "2027-01-01T00:00:00Z"]
        + ["--html", str(html)],
        catch_exceptions=False,
    )
    assert result.exit_code == 3  # the broken record is still listed
    page.open(html.as_uri())
    assert page.errors() == [] and page.requests() == [html.as_uri()]
    assert page.evaluate("document.querySelector('#empty h2').textContent") == "No rollbacks in this period"
    assert pixels(page.screenshot())[1] > 5
