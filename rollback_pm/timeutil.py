"""UTC time parsing and formatting in one place."""

from __future__ import annotations

import re
from datetime import date, datetime, timezone
from typing import Any

from rollback_pm.errors import UsageError

STAMP_FORMAT = "%Y%m%dT%H%M%SZ"  # a bundle id's time: 20260513T084721Z
# Earlier times in a setting, a report or a record are typos or epoch 0, never a rollback.
EARLIEST = datetime(2000, 1, 1, tzinfo=timezone.utc)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def as_utc(value: datetime) -> datetime:
    """Aware and in UTC; a naive datetime is taken to be UTC already."""
    return value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)


def parse_ts(value: str | int | float | datetime | None, what: str = "timestamp") -> datetime | None:
    """Parse ISO 8601 (Z or offset; Docker's nanoseconds allowed) or epoch seconds to aware UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return as_utc(value)
    if isinstance(value, (int, float)) or (isinstance(value, str) and re.fullmatch(r"\d{9,11}(\.\d+)?", value)):
        return datetime.fromtimestamp(float(value), timezone.utc)
    text = value.strip()
    if text.startswith("0001-01-01"):  # Docker's zero time: "never"
        return None
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)  # Docker gives nanoseconds
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{what} {value!r} is not an ISO 8601 time (e.g. 2026-05-13T08:47:21Z)") from None
    return as_utc(parsed)


def iso(value: datetime | None) -> str | None:
    """2026-05-13T08:47:21Z"""
    if value is None:
        return None
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def stamp(value: datetime) -> str:
    """Bundle id form: 20260513T084721Z"""
    return value.astimezone(timezone.utc).strftime(STAMP_FORMAT)


def mmss(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    total = max(0, round(seconds))
    return f"{total // 60:02d}:{total % 60:02d}"


def to_jsonable(value: Any) -> Any:
    """Recursively turn datetimes into ISO strings for JSON output."""
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    return value
