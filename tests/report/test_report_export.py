"""--json and --csv: every figure, and one row per incident."""

import csv
import io
from datetime import datetime, timezone

from rollback_pm.report.data import load
from rollback_pm.report.export import CSV_COLUMNS, as_csv, as_json
from rollback_pm.report.metrics import DEFINITIONS, compute

from .conftest import hours

GENERATED = datetime(2026, 5, 20, 12, 5, tzinfo=timezone.utc)


def report_of(seeded, **filters):
    with seeded.ledger() as ledger:
        return compute(load(ledger, seeded.scope(**filters), hours))


def test_json_holds_every_figure(seeded):
    ids = seeded.ids
    out = as_json(report_of(seeded), generated_at=GENERATED)
    assert out["schema"] == 1 and out["generated_at"] == "2026-05-20T12:05:00Z"
    assert out["scope"] == {
        "since": "2026-04-29T12:00:00Z",
        "until": "2026-05-20T12:00:00Z",
        "service": None,
        "environment": None,
    }
    assert out["definitions"] == DEFINITIONS
    assert out["rollbacks"] == {
        "count": 6,
        "services": ["api", "web", "worker"],
        "weeks": [
            {"week": "2026-04-27", "total": 0, "by_service": {}},
            {"week": "2026-05-04", "total": 2, "by_service": {"api": 2}},
            {"week": "2026-05-11", "total": 3, "by_service": {"api": 1, "web": 2}},
            {"week": "2026-05-18", "total": 1, "by_service": {"worker": 1}},
        ],
    }
    assert out["mttd"]["median_seconds"] == 300 and out["mttd"]["p90_seconds"] == 540
    assert out["mttd"]["excluded"] == {"unknown_start": 1, "unknown_end": 1, "inconsistent": 1}
    assert out["mttd"]["weeks"][1] == {"week": "2026-05-04", "count": 2, "median_seconds": 210, "p90_seconds": 282}
    assert (out["mttr"]["median_seconds"], out["mttr"]["p90_seconds"], out["mttr"]["measured"]) == (1800, 3120, 5)
    assert out["postmortems"] == {
        "states": {"done_on_time": 1, "done_late": 1, "done_time_unknown": 1, "open": 2, "overdue": 1},
        "time_to_done": {
            "median_seconds": 108900,
            "p90_seconds": 167700,
            "measured": 2,
            "excluded": {"done_time_unknown": 1, "inconsistent": 0},
        },
    }
    assert out["followups"] == {"total": 4, "open": 3, "past_due": 1, "no_target_date": 1, "closed": 1}
    assert out["repeat_signatures"] == [
        {
            "signature": "S1",
            "count": 3,
            "services": ["api"],
            "environments": ["production"],
            "failed_step": "3 api health",
            "first_seen": "2026-05-05T10:10:00Z",
            "last_seen": "2026-05-14T10:30:00Z",
            "incidents": [ids["F"], ids["B"], ids["A"]],
        }
    ]
    assert [i["id"] for i in out["incidents"]] == [ids[x] for x in "EFDCBA"]
    assert out["incidents"][-1] == {
        "id": ids["A"],
        "service": "api",
        "environment": "production",
        "severity": "High",
        "deploy_sha": f"{1:040x}",
        "rolled_back_at": "2026-05-05T10:10:00Z",
        "started_at": "2026-05-05T10:00:00Z",
        "detected_at": "2026-05-05T10:02:00Z",
        "mitigated_at": "2026-05-05T10:10:00Z",
        "mttd_seconds": 120,
        "mttr_seconds": 600,
        "postmortem": "done_on_time",
        "due_at": "2026-05-06T10:10:00Z",
        "done_at": "2026-05-05T20:00:00Z",
        "time_to_done_seconds": 35400,
        "owner": None,
        "ticket": {"key": "OPS-1", "url": "https://jira.example.com/browse/OPS-1", "status": "Done"},
        "draft": str(seeded.state / "drafts" / "a.md"),
        "evidence": [
            {
                "bundle": "20260505T101000Z",
                "kind": "log",
                "path": "/var/log/azaion/rollback-20260505T101000Z.log",
            },
            {
                "bundle": "20260505T101000Z",
                "kind": "manifest",
                "path": "/var/log/azaion/rollback-20260505T101000Z.manifest.json",
            },
        ],
        "signature": "S1",
        "failed_step": "3 api health",
        "followups": {"open": 1, "past_due": 1, "closed": 1},
    }
    [skipped] = out["skipped"]
    assert (skipped["record"], skipped["id"]) == ("incident", ids["H"])


def test_csv_has_one_row_per_incident(seeded):
    ids = seeded.ids
    rows = list(csv.reader(io.StringIO(as_csv(report_of(seeded)))))
    assert rows[0] == list(CSV_COLUMNS)
    assert [r[0] for r in rows[1:]] == [ids[x] for x in "EFDCBA"]
    a = dict(zip(rows[0], rows[-1]))
    assert (a["mttd_seconds"], a["mttr_seconds"], a["postmortem"], a["time_to_done_seconds"]) == (
        "120",
        "600",
        "done_on_time",
        "35400",
    )
    assert a["evidence"].splitlines() == [
        "/var/log/azaion/rollback-20260505T101000Z.log",
        "/var/log/azaion/rollback-20260505T101000Z.manifest.json",
    ]
    assert (a["followups_open"], a["followups_past_due"], a["followups_closed"]) == ("1", "1", "1")
    c = dict(zip(rows[0], rows[4]))
    assert (c["started_at"], c["mttd_seconds"], c["ticket_key"], c["postmortem"]) == ("", "", "PM-3", "overdue")


def test_csv_cells_never_run_as_spreadsheet_formulas(seeded):
    with seeded.ledger() as ledger:
        ledger.db.execute("UPDATE incidents SET service = '=HYPERLINK(\"http://x\")' WHERE id = ?", (seeded.ids["E"],))
        ledger.db.execute("UPDATE incidents SET environment = '@SUM(A1)' WHERE id = ?", (seeded.ids["E"],))
    rows = list(csv.DictReader(io.StringIO(as_csv(report_of(seeded)))))
    assert (rows[0]["service"], rows[0]["environment"]) == ('\'=HYPERLINK("http://x")', "'@SUM(A1)")


def test_filtered_json(seeded):
    out = as_json(report_of(seeded, service="web", environment="production"), generated_at=GENERATED)
    assert out["scope"]["service"] == "web" and out["scope"]["environment"] == "production"
    assert [i["id"] for i in out["incidents"]] == [seeded.ids["C"]]
    assert out["mttd"]["measured"] == 0 and out["mttd"]["median_seconds"] is None
    assert out["repeat_signatures"] == []
