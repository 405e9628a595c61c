"""Signal reports as the ledger keeps them, read back checked; and the one a draft uses.

The ledger stores one report per evidence bundle as JSON (``SignalReport.to_dict``). Read
back, every field is checked against the dataclass it becomes (``stored_facts.build``),
so a damaged report is reported and left out, never a TypeError in a template: the draft
and the ticket are then written without the logs' words, and say so.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rollback_pm.log import get_logger
from rollback_pm.signals.model import SignalReport
from rollback_pm.stored_facts import Damaged, build, json_object

log = get_logger(__name__)


def report_from_json(text: Any, what: str = "signal report") -> SignalReport:
    """A stored report, every field checked; Damaged says which field is wrong."""
    report = build(SignalReport, json_object(text, what), what)
    for container in report.containers:
        for signal in [*container.signals, *([container.first_signal] if container.first_signal else [])]:
            if not 1 <= signal.ref.first <= signal.ref.last:
                raise Damaged(f"{what}: a signal of {container.name} cites lines {signal.ref.first}-{signal.ref.last}")
    return report


def _useful(report: SignalReport) -> bool:
    return report.suspected_cause is not None or any(c.failing or c.signals for c in report.containers)


def choose(rows: Iterable[dict[str, Any]], incident_id: str) -> SignalReport | None:
    """The report a draft and ticket use: the newest bundle's that found something (a retried
    collection may only have caught the replacing containers), else the newest; damaged ones
    are logged and skipped."""
    reports: list[SignalReport] = []
    for row in rows:
        try:
            reports.append(report_from_json(row.get("report_json"), f"signal report of bundle {row.get('bundle')}"))
        except Damaged as exc:
            log.warning("stored signal report is damaged and left out", incident=incident_id, damage=str(exc))
    useful = [r for r in reports if _useful(r)] or reports
    return useful[-1] if useful else None
