"""How the platform writes times: ISO 8601 in UTC with ``Z`` (``2026-11-30T18:05:00.123456Z``).

One spelling everywhere — stored answers, reports, CSV, counts — as DRF writes the datetimes it
serialises itself, so a client parses one format and compares strings safely.
"""

from __future__ import annotations

import datetime

UTC = datetime.UTC


def iso(value: datetime.datetime | datetime.date | None) -> str | None:
    """A datetime in UTC ending in ``Z``; a date as ``YYYY-MM-DD``; None stays None."""
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        text = value.isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text
    return value.isoformat()
