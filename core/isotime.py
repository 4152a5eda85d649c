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


def business_time_problem(moment: datetime.datetime) -> str | None:
    """Why ``moment`` cannot be the business time of a sale, document or scan, or None.

    Any past moment since ``BUSINESS_TIME_EARLIEST`` is fine (an offline till syncs its sales
    late; older history comes in by data migration); the future only by
    ``BUSINESS_TIME_MAX_AHEAD_MINUTES`` (a clock or time-zone bug would misdate the ledger and
    the expiry checks). The API's fields and the services apply this one rule.
    """
    from django.conf import settings
    from django.utils import timezone

    earliest = datetime.datetime.combine(
        settings.BUSINESS_TIME_EARLIEST, datetime.time.min, tzinfo=UTC
    )
    if moment < earliest:
        return f"Before {settings.BUSINESS_TIME_EARLIEST.isoformat()}: business times start then."
    allowed = settings.BUSINESS_TIME_MAX_AHEAD_MINUTES
    ahead = moment - timezone.now()
    if ahead > datetime.timedelta(minutes=allowed):
        return (
            f"{int(ahead.total_seconds() // 60)} minutes after the server's clock: check the "
            f"device's clock and time zone (at most {allowed} minutes ahead)."
        )
    return None
