"""The report as one self-contained HTML page that opens offline.

Nothing is fetched: no script at all, the CSS inline, the charts inline SVG themed by CSS
variables (light, dark via prefers-color-scheme, print), and a Content-Security-Policy
that forbids the page any request even if something slipped in. Every outside value
(service names, paths, ticket keys) goes through jinja2's autoescape; links are made
only from http(s) and file URLs and from local paths.

Every figure shown carries ``data-metric`` (its name), ``data-value`` (the JSON value it
came from, as JSON text) and, for a figure of one week, service or incident,
``data-key``: the browser tests read the page's figures back and compare them with
``--json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import jinja2
from markupsafe import Markup

from rollback_pm import __version__
from rollback_pm.report.data import ReportIncident
from rollback_pm.report.metrics import DEFINITIONS, POSTMORTEM_STATES, DurationMetric, Report
from rollback_pm.report.plots import STATE_LABELS, charts, label, require_matplotlib
from rollback_pm.timeutil import iso

TABLE_LIMIT = 500  # newest incidents listed in the page; --json and --csv hold them all
REPEAT_IDS = 8  # newest incidents named per repeat signature; --json names them all
LINK_SCHEMES = ("http", "https", "file")


@dataclass(frozen=True)
class Fig:
    """One figure on the page: what it is (metric, key), its value and how it reads."""

    metric: str
    value: Any
    text: str
    key: str | None = None

    @property
    def value_json(self) -> str:
        return json.dumps(self.value)


def duration_text(seconds: float | None) -> str:
    """45s, 12m 05s, 3h 07m, 2d 4h: the two largest whole units; a dash when unknown."""
    if seconds is None:
        return "\u2013"
    total = round(seconds)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def when_text(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "\u2013"


def local_href(path: str) -> str:
    """A link to a local file: file:// for an absolute path, else relative (percent-encoded)."""
    candidate = Path(path)
    if candidate.is_absolute():
        return candidate.as_uri()
    return quote(path)


def url_href(url: str | None) -> str | None:
    """A tracker's URL when it is http(s) or file and well formed; None (no link) otherwise."""
    if not url or any(ch.isspace() or ord(ch) < 32 for ch in url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in LINK_SCHEMES or (parts.scheme.lower() != "file" and not parts.netloc):
        return None
    return url


def _duration_figs(prefix: str, metric: DurationMetric) -> dict[str, Fig]:
    return {
        "median": Fig(f"{prefix}-median", metric.median, duration_text(metric.median)),
        "p90": Fig(f"{prefix}-p90", metric.p90, duration_text(metric.p90)),
        "measured": Fig(f"{prefix}-measured", metric.measured, str(metric.measured)),
        "unknown_start": Fig(f"{prefix}-excluded-unknown-start", metric.unknown_start, str(metric.unknown_start)),
        "unknown_end": Fig(f"{prefix}-excluded-unknown-end", metric.unknown_end, str(metric.unknown_end)),
        "inconsistent": Fig(f"{prefix}-excluded-inconsistent", metric.inconsistent, str(metric.inconsistent)),
    }


def _weekly(prefix: str, metric: DurationMetric) -> dict[date, dict[str, Fig]]:
    out = {}
    for w in metric.weeks:
        key = w.week.isoformat()
        out[w.week] = {
            "count": Fig(f"{prefix}-week-count", w.count, str(w.count), key),
            "median": Fig(f"{prefix}-week-median", w.median, duration_text(w.median), key),
            "p90": Fig(f"{prefix}-week-p90", w.p90, duration_text(w.p90), key),
        }
    return out


def _evidence(incident: ReportIncident) -> list[dict[str, Any]]:
    bundles: dict[str, list[dict[str, str]]] = {}
    for e in incident.evidence:
        bundles.setdefault(e.bundle, []).append({"kind": e.kind, "href": local_href(e.path), "path": e.path})
    return [{"bundle": b, "files": files} for b, files in bundles.items()]


def _row(report: Report, incident: ReportIncident, repeats: set[str]) -> dict[str, Any]:
    state = report.postmortems.per_incident[incident.id]
    mttd = report.mttd.per_incident.get(incident.id)
    mttr = report.mttr.per_incident.get(incident.id)
    followups = report.followups.per_incident.get(incident.id, {"open": 0, "past_due": 0, "closed": 0})
    return {
        "id": incident.id,
        "service": label(incident.service, 60),
        "environment": label(incident.environment, 30),
        "when": Fig(
            "incident-rolled-back-at", iso(incident.rolled_back_at), when_text(incident.rolled_back_at), incident.id
        ),
        "mttd": Fig("incident-mttd", mttd, duration_text(mttd), incident.id),
        "mttr": Fig("incident-mttr", mttr, duration_text(mttr), incident.id),
        "state": Fig("incident-postmortem", state, STATE_LABELS[state], incident.id),
        "state_class": state,
        "due_at": when_text(incident.due_at) if incident.due_at else None,
        "ticket": {
            "key": label(incident.ticket_key, 40),
            "href": url_href(incident.ticket_url),
            "status": incident.ticket_status,
        }
        if incident.ticket_key
        else None,
        "draft": {"path": incident.draft_path, "href": local_href(incident.draft_path)}
        if incident.draft_path
        else None,
        "evidence": _evidence(incident),
        "followups": followups,
        "signature": incident.signature,
        "repeat": incident.signature in repeats,
    }


def context(report: Report, *, generated_at: datetime) -> dict[str, Any]:
    """Everything the template shows, with each figure as a ``Fig``."""
    scope = report.data.scope
    r = report.rollbacks
    f = report.followups
    states = report.postmortems.counts
    done_total = states["done_on_time"] + states["done_late"] + states["done_time_unknown"]
    shown = report.data.incidents[:TABLE_LIMIT]
    weeks_mttd, weeks_mttr = _weekly("mttd", report.mttd), _weekly("mttr", report.mttr)
    repeated = {rep.signature for rep in report.repeats}
    return {
        "version": __version__,
        "generated_at": when_text(generated_at),
        "since": when_text(scope.since),
        "until": when_text(scope.until),
        "service": scope.service,
        "environment": scope.environment,
        "definitions": DEFINITIONS,
        "empty": report.empty,
        "count": Fig("rollbacks-count", r.count, str(r.count)),
        "services": Fig("rollbacks-services", len(r.services), str(len(r.services))),
        "weeks": [
            {
                "week": w.week.isoformat(),
                "total": Fig("rollbacks-week-total", w.total, str(w.total), w.week.isoformat()),
                "by_service": [
                    (label(s, 40), Fig("rollbacks-week", n, str(n), f"{w.week.isoformat()}|{s}"))
                    for s, n in w.by_service.items()
                ],
                "mttd": weeks_mttd[w.week],
                "mttr": weeks_mttr[w.week],
            }
            for w in r.weeks
        ],
        "mttd": _duration_figs("mttd", report.mttd),
        "mttr": _duration_figs("mttr", report.mttr),
        "states": [
            (s, STATE_LABELS[s], Fig(f"pm-{s.replace('_', '-')}", states[s], str(states[s]))) for s in POSTMORTEM_STATES
        ],
        "on_time": states["done_on_time"],
        "done_total": done_total,
        "overdue": states["overdue"],
        "ttd": {
            "median": Fig("ttd-median", report.time_to_done.median, duration_text(report.time_to_done.median)),
            "p90": Fig("ttd-p90", report.time_to_done.p90, duration_text(report.time_to_done.p90)),
            "measured": Fig("ttd-measured", report.time_to_done.measured, str(report.time_to_done.measured)),
            "unknown": Fig(
                "ttd-excluded-done-time-unknown",
                report.time_to_done.unknown_end,
                str(report.time_to_done.unknown_end),
            ),
            "inconsistent": Fig(
                "ttd-excluded-inconsistent", report.time_to_done.inconsistent, str(report.time_to_done.inconsistent)
            ),
        },
        "followups": {
            "total": Fig("followups-total", f.total, str(f.total)),
            "open": Fig("followups-open", f.open, str(f.open)),
            "past_due": Fig("followups-past-due", f.past_due, str(f.past_due)),
            "no_target_date": Fig("followups-no-target-date", f.no_target_date, str(f.no_target_date)),
            "closed": Fig("followups-closed", f.closed, str(f.closed)),
        },
        "repeats": [
            {
                "signature": label(rep.signature, 80),
                "count": Fig("repeat-count", rep.count, str(rep.count), rep.signature),
                "last_seen": Fig("repeat-last-seen", iso(rep.last_seen), when_text(rep.last_seen), rep.signature),
                "first_seen": when_text(rep.first_seen),
                "services": ", ".join(label(s, 40) for s in rep.services),
                "environments": ", ".join(label(e, 30) for e in rep.environments),
                "failed_step": label(rep.failed_step, 60) if rep.failed_step else "\u2013",
                "incidents": rep.incidents[:REPEAT_IDS],
                "more": max(0, len(rep.incidents) - REPEAT_IDS),
            }
            for rep in report.repeats
        ],
        "repeat_count": Fig("repeats-count", len(report.repeats), str(len(report.repeats))),
        "rows": [_row(report, i, repeated) for i in shown],
        "listed": {i.id for i in shown},
        "table_limit": TABLE_LIMIT,
        "table_total": len(report.data.incidents),
        "skipped": report.data.skipped,
        "charts": {} if report.empty else charts(report),
    }


_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("rollback_pm.report", "."),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def render(report: Report, *, generated_at: datetime) -> str:
    """The page. Needs matplotlib (the report extra), even for an empty period, so that
    --html fails the same way whatever the data."""
    require_matplotlib()
    values = context(report, generated_at=generated_at)
    # matplotlib escaped every text in its SVG; themed_svg added only escaped titles
    values["charts"] = {name: Markup(svg) for name, svg in values["charts"].items()}
    return _ENV.get_template("page.html.j2").render(**values)
