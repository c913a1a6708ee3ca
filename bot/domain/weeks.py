"""ISO 8601 weeks in the org's time zone: Monday starts the week, week 1 holds 4 January, and
the week always travels with its ISO year (29 Dec 2025 is 2026-W01; 2026-W53 exists)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")


def iso_week(moment: datetime, zone: ZoneInfo) -> str:
    year, week, _ = moment.astimezone(zone).isocalendar()
    return f"{year}-W{week:02d}"


def parse_week(text: str) -> tuple[int, int]:
    """``"2026-W53"`` → (2026, 53); ValueError for a week that does not exist (``2026-W54``)."""
    match = _WEEK.match(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a week; write it like 2026-W47")
    year, week = int(match.group(1)), int(match.group(2))
    weeks_in_year = date(year, 12, 28).isocalendar()[1]  # 28 December is always in the last week
    if not 1 <= week <= weeks_in_year:
        raise ValueError(f"{year} has weeks 1 to {weeks_in_year}; there is no {text.strip()}")
    return year, week


def week_start(text: str, zone: ZoneInfo) -> datetime:
    """Monday 00:00 of the week, in the zone (an aware datetime)."""
    year, week = parse_week(text)
    return datetime.combine(date.fromisocalendar(year, week, 1), time(0), tzinfo=zone)


def previous_week(text: str, zone: ZoneInfo) -> str:
    return iso_week(week_start(text, zone) - timedelta(days=1), zone)


def week_bounds(text: str, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """Monday 00:00 to the next Monday 00:00 in the zone, as UTC instants: a week with a
    daylight-saving change is 167 or 169 hours long."""
    start = week_start(text, zone)
    end = datetime.combine(start.date() + timedelta(days=7), time(0), tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)
