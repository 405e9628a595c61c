"""The report's charts as inline SVG, drawn by matplotlib (the ``report`` extra).

matplotlib's SVG backend with ``svg.fonttype = 'none'`` writes text as ``<text>`` (no
glyph paths, no embedded font) and references nothing outside the file. What it cannot
do is theme: it writes every colour as a literal. So each artist is drawn in a *sentinel*
colour that stands for a role (``fg``, ``grid``, a series, a state), and the SVG text then
has each sentinel replaced by ``var(--c-<role>)``: the page's CSS decides the colours for
light, dark and print, and no colour is hard-coded. The SVG is also made safe to inline
many times in one page: no XML prolog or DOCTYPE (the DOCTYPE names a remote DTD), no
global ``<style>``, and every id prefixed with the chart's name.
"""

from __future__ import annotations

import io
import math
import re
import unicodedata
import warnings
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from rollback_pm.errors import UsageError
from rollback_pm.report.data import ReportIncident
from rollback_pm.report.metrics import (
    POSTMORTEM_STATES,
    DurationMetric,
    FollowupCounts,
    PostmortemStates,
    RepeatSignature,
    Report,
    RollbacksPerWeek,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

EXTRA_HINT = (
    "the HTML report draws its plots with matplotlib, which is not installed: "
    "pip install 'rollback-pm[report]' (scripts/bootstrap.sh installs it); --json and --csv work without it"
)
SERIES = 8  # service colours; the services after the 7 busiest are drawn as "other"
ROLES = (
    "fg",
    "muted",
    "grid",
    *(f"s{n}" for n in range(SERIES)),
    *POSTMORTEM_STATES,
    "closed",
    "on_track",
    "past_due",
    "no_target",
    "median",
    "p90",
    "point",
)
# Colours no chart uses by itself: each stands for a role until the SVG is themed.
SENTINELS = {role: f"#0b{n:04x}" for n, role in enumerate(ROLES, start=1)}
STATE_LABELS = {
    "done_on_time": "done on time",
    "done_late": "done late",
    "done_time_unknown": "done, when unknown",
    "open": "open",
    "overdue": "overdue",
}
DURATION_TICKS = (
    1,
    5,
    15,
    30,
    60,
    2 * 60,
    5 * 60,
    15 * 60,
    30 * 60,
    3600,
    2 * 3600,
    4 * 3600,
    8 * 3600,
    86400,
    2 * 86400,
    7 * 86400,
    30 * 86400,
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _c(role: str) -> str:
    return SENTINELS[role]


def _rc() -> dict[str, Any]:
    fg, muted = _c("fg"), _c("muted")
    return {
        "svg.fonttype": "none",
        "svg.hashsalt": "rollback-pm",  # stable ids, so the same ledger gives the same file
        "text.parse_math": False,  # a service called "$x$" is text, not math
        "text.usetex": False,
        "font.family": "sans-serif",
        "font.sans-serif": ["DejaVu Sans"],
        "font.size": 9,
        "text.color": fg,
        "axes.labelcolor": fg,
        "axes.edgecolor": muted,
        "axes.facecolor": "none",
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.titlesize": 9,
        "axes.titlelocation": "left",
        "xtick.color": muted,
        "ytick.color": muted,
        "xtick.labelcolor": fg,
        "ytick.labelcolor": fg,
        "grid.color": _c("grid"),
        "grid.linewidth": 0.6,
        "figure.facecolor": "none",
        "savefig.facecolor": "none",
        "savefig.edgecolor": "none",
        "legend.frameon": False,
        "legend.labelcolor": fg,
        "legend.fontsize": 8,
        "path.simplify": True,
    }


def require_matplotlib() -> None:
    """A usage error naming the extra when matplotlib is not installed."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise UsageError(EXTRA_HINT) from None


def label(text: str, limit: int = 40) -> str:
    """Outside text (a service name, a step) made safe and short for a chart."""
    clean = _CONTROL.sub("\ufffd", unicodedata.normalize("NFC", text)).strip() or "(empty)"
    return clean if len(clean) <= limit else clean[: limit - 1] + "\u2026"


# -- SVG post-processing --------------------------------------------------------------------

_PROLOG = re.compile(r"<\?xml[^>]*\?>\s*|<!DOCTYPE[^>]*>\s*", re.S)
_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.S)
_STYLE = re.compile(r"<style[^>]*>.*?</style>\s*", re.S)
_ID = re.compile(r'\bid="([^"]+)"')
_REF = re.compile(r'(url\(#|href="#)([^")]+)')
_ROOT = re.compile(r'<svg\b[^>]*?\sviewBox="([^"]+)"[^>]*>')
_HEX = re.compile(r"#0b[0-9a-f]{4}\b")


def themed_svg(raw: str, name: str, title: str) -> str:
    """matplotlib's SVG made ready to inline: themed, prefixed ids, a title, no prolog."""
    svg = _PROLOG.sub("", raw)
    svg = _METADATA.sub("", svg)
    svg = _STYLE.sub("", svg)
    svg = _ID.sub(lambda m: f'id="{name}-{m.group(1)}"', svg)
    svg = _REF.sub(lambda m: f"{m.group(1)}{name}-{m.group(2)}", svg)
    root = _ROOT.search(svg)
    if root is None:
        raise ValueError("matplotlib wrote an SVG without a viewBox")
    from html import escape

    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
        f'class="plot" viewBox="{root.group(1)}" role="img" aria-labelledby="{name}-title">'
        f'<title id="{name}-title">{escape(title)}</title>'
    )
    svg = svg[: root.start()] + head + svg[root.end() :]
    by_colour = {colour: role for role, colour in SENTINELS.items()}
    return _HEX.sub(lambda m: f"var(--c-{by_colour[m.group(0)]})" if m.group(0) in by_colour else m.group(0), svg)


def _render(fig: Figure, name: str, title: str) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    return themed_svg(buffer.getvalue(), name, title)


def _draw(name: str, title: str, width: float, height: float, paint: Callable[[Figure], None]) -> str:
    require_matplotlib()
    import matplotlib
    from matplotlib.figure import Figure

    rc: Any = _rc()  # matplotlib types its keys as a Literal of every rcParam
    with matplotlib.rc_context(rc), warnings.catch_warnings():
        # A name in a script DejaVu lacks is measured roughly; the browser draws it with its fonts.
        warnings.filterwarnings("ignore", message="Glyph .* missing from font", category=UserWarning)
        fig = Figure(figsize=(width, height), layout="constrained")
        paint(fig)
        return _render(fig, name, title)


# -- axes helpers ---------------------------------------------------------------------------


def _day(value: date) -> datetime:
    return datetime(value.year, value.month, value.day, tzinfo=timezone.utc)


def _x(times: Sequence[datetime]) -> list[float]:
    """Times as matplotlib's date numbers (days), for a date axis."""
    from matplotlib.dates import date2num

    return [float(v) for v in date2num(list(times))]


def _date_axis(ax: Axes, weeks: Sequence[date]) -> None:
    """A date axis over whole weeks: the same span on every chart of the report."""
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    if weeks:
        first, last = _x([_day(weeks[0]), _day(weeks[-1]) + timedelta(days=7)])
        ax.set_xlim(first, last)
    locator = AutoDateLocator(minticks=3, maxticks=10)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator, show_offset=False))


def _tick_text(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def _duration_axis(ax: Axes, values: Sequence[float]) -> None:
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    low, high = max(1.0, min(values)), max(1.0, *values)
    ax.set_yscale("log")
    ax.set_ylim(low / 1.6, high * 1.6)
    ticks = [float(t) for t in DURATION_TICKS if low / 1.6 <= t <= high * 1.6] or [low]
    step = max(1, (len(ticks) + 5) // 6)
    ax.yaxis.set_major_locator(FixedLocator(ticks[::step]))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: _tick_text(v)))
    ax.grid(True, axis="y")


def _empty(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color=_c("muted"))
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


# -- the charts -----------------------------------------------------------------------------


def rollbacks_chart(rollbacks: RollbacksPerWeek) -> str:
    """Stacked bars: rollbacks per week, one colour per service (the 8th and later as "other")."""
    shown = rollbacks.services[: SERIES - 1] if len(rollbacks.services) > SERIES else rollbacks.services
    rest = [s for s in rollbacks.services if s not in shown]

    def paint(fig: Figure) -> None:
        from matplotlib.patches import Patch

        ax = fig.add_subplot()
        x = _x([_day(w.week) + timedelta(days=3.5) for w in rollbacks.weeks])
        bottom = [0] * len(rollbacks.weeks)
        series: list[tuple[str, list[int]]] = [(s, [w.by_service.get(s, 0) for w in rollbacks.weeks]) for s in shown]
        if rest:
            series.append(("other", [sum(w.by_service.get(s, 0) for s in rest) for w in rollbacks.weeks]))
        handles, names = [], []
        for n, (service, counts) in enumerate(series):
            colour = _c(f"s{n}")
            ax.bar(x, counts, width=6, bottom=bottom, color=colour, linewidth=0)
            bottom = [b + c for b, c in zip(bottom, counts)]
            handles.append(Patch(color=colour))
            names.append(label(service, 28) if service != "other" or not rest else f"other ({len(rest)} services)")
        _date_axis(ax, [w.week for w in rollbacks.weeks])
        from matplotlib.ticker import MaxNLocator

        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("rollbacks")
        ax.grid(True, axis="y")
        ax.set_axisbelow(True)
        # Explicit handles and labels: a name starting with "_" would otherwise be dropped.
        ax.legend(handles, names, loc="upper left", bbox_to_anchor=(1.0, 1.0), ncols=1)

    return _draw("rollbacks", "Rollbacks per week by service", 9.0, 3.0, paint)


def duration_chart(name: str, title: str, incidents: Sequence[ReportIncident], metric: DurationMetric) -> str:
    """One duration per incident (points, log scale) and each week's median and p90 (steps
    spanning their week; a week without a measured incident leaves a gap)."""
    when = {i.id: i.rolled_back_at for i in incidents}
    weeks = [w.week for w in metric.weeks]

    def paint(fig: Figure) -> None:
        ax = fig.add_subplot()
        if not metric.per_incident:
            _empty(ax, "no incident in this period has both times")
            return
        ids = list(metric.per_incident)
        few = len(ids) < 200  # a handful of points are drawn bigger and bolder than a cloud of them
        ax.plot(
            _x([when[i] for i in ids]),
            [max(1.0, metric.per_incident[i]) for i in ids],
            linestyle="none",
            marker="o",
            markersize=5 if few else 3,
            alpha=0.8 if few else 0.45,
            markeredgewidth=0,
            color=_c("point"),
            label="one incident",
        )
        edges = _x([_day(w.week) for w in metric.weeks] + [_day(metric.weeks[-1].week) + timedelta(days=7)])
        for role, values, style in (
            ("median", [w.median for w in metric.weeks], "-"),
            ("p90", [w.p90 for w in metric.weeks], "--"),
        ):
            ys = [max(1.0, v) if v is not None else math.nan for v in values]
            ax.stairs(ys, edges, color=_c(role), linewidth=1.8, linestyle=style, label=f"weekly {role}", baseline=None)
        _duration_axis(ax, list(metric.per_incident.values()))
        _date_axis(ax, weeks)
        ax.set_ylabel("log scale")
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))

    return _draw(name, title, 9.0, 2.6, paint)


def states_chart(states: PostmortemStates) -> str:
    """Incidents per postmortem state."""

    def paint(fig: Figure) -> None:
        ax = fig.add_subplot()
        names = [STATE_LABELS[s] for s in POSTMORTEM_STATES]
        counts = [states.counts[s] for s in POSTMORTEM_STATES]
        bars = ax.barh(names, counts, color=[_c(s) for s in POSTMORTEM_STATES], linewidth=0)
        ax.bar_label(bars, padding=3, color=_c("fg"))
        ax.invert_yaxis()
        ax.set_xticks([])
        ax.spines["bottom"].set_visible(False)

    return _draw("states", "Postmortems by state", 4.4, 2.2, paint)


def done_chart(done: DurationMetric, deadline_hours: Sequence[float]) -> str:
    """Histogram of time to done, in hours, with the deadlines that apply as dashed lines."""

    def paint(fig: Figure) -> None:
        ax = fig.add_subplot()
        if not done.per_incident:
            _empty(ax, "no postmortem done with a known time")
            return
        hours = [v / 3600 for v in done.per_incident.values()]
        ax.hist(hours, bins=min(30, max(5, len(hours) // 3)), color=_c("done_on_time"), linewidth=0)
        for n, limit in enumerate(sorted(set(deadline_hours))):
            ax.axvline(limit, color=_c("overdue"), linestyle="--", linewidth=1.2, label="deadline" if not n else None)
        if deadline_hours:
            ax.legend(loc="upper right")
        from matplotlib.ticker import MaxNLocator

        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("hours after the rollback")
        ax.set_ylabel("postmortems")
        ax.grid(True, axis="y")
        ax.set_axisbelow(True)

    return _draw("done", "Time to done, hours after the rollback", 4.4, 2.2, paint)


def followups_chart(counts: FollowupCounts) -> str:
    """Follow-ups: closed, open on track, open past due, open without a target date."""
    rows = [
        ("closed", counts.closed, "closed"),
        ("open, not yet due", counts.open - counts.past_due - counts.no_target_date, "on_track"),
        ("open, past due", counts.past_due, "past_due"),
        ("open, no target date", counts.no_target_date, "no_target"),
    ]

    def paint(fig: Figure) -> None:
        ax = fig.add_subplot()
        bars = ax.barh([r[0] for r in rows], [r[1] for r in rows], color=[_c(r[2]) for r in rows], linewidth=0)
        ax.bar_label(bars, padding=3, color=_c("fg"))
        ax.invert_yaxis()
        ax.set_xticks([])
        ax.spines["bottom"].set_visible(False)

    return _draw("followups", "Follow-ups by state", 9.0, 1.7, paint)


def signatures_chart(repeats: Sequence[RepeatSignature]) -> str:
    """Horizontal bars: incidents per repeat signature, most frequent on top."""

    def paint(fig: Figure) -> None:
        ax = fig.add_subplot()
        names = [f"{label(r.failed_step or 'no failed step', 28)} \u00b7 {label(r.signature, 18)}" for r in repeats]
        bars = ax.barh(range(len(repeats)), [r.count for r in repeats], color=_c("s1"), linewidth=0)
        ax.set_yticks(range(len(repeats)), names)
        ax.bar_label(bars, padding=3, color=_c("fg"))
        ax.invert_yaxis()
        ax.set_xticks([])
        ax.spines["bottom"].set_visible(False)

    return _draw("signatures", "Incidents per repeat signature", 9.0, 0.9 + 0.28 * len(repeats), paint)


def charts(report: Report) -> dict[str, str]:
    """Every chart the page shows, by name; follow-ups and repeats only when there are some."""
    incidents = report.data.incidents
    out = {
        "rollbacks": rollbacks_chart(report.rollbacks),
        "mttd": duration_chart("mttd", "MTTD per incident with weekly median and p90", incidents, report.mttd),
        "mttr": duration_chart("mttr", "MTTR per incident with weekly median and p90", incidents, report.mttr),
        "states": states_chart(report.postmortems),
        "done": done_chart(report.time_to_done, sorted({i.deadline_hours for i in incidents if i.deadline_hours > 0})),
    }
    if report.followups.total:
        out["followups"] = followups_chart(report.followups)
    if report.repeats:
        out["signatures"] = signatures_chart(report.repeats)
    return out
