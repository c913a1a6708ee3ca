"""ISO 8601 weeks in the org's time zone: Monday starts the week, week 1 holds 4 January, and
the week always travels with its ISO year (29 Dec 2025 is 2026-W01; 2026-W53 exists).

Every week a person or a file gives (chat, ``--week``, KPI imports) is read by ``parse_week``:
``2026-W47`` (``w`` in any case), a week that exists, in the years ``FIRST_YEAR`` to
``LAST_YEAR``. Outside that range lie weeks whose neighbours fall off the calendar (0001-W01,
9999-W52) and typing mistakes that would store a figure nothing ever shows.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.domain.errors import UserError
from bot.domain.text import excerpt

FIRST_YEAR = 2000
LAST_YEAR = 2100
_WEEK = re.compile(r"([0-9]{4})-[wW]([0-9]{1,2})", re.ASCII)
# What a week looks like at a glance: a word like this is meant as a week, even a wrong one.
WEEK_LIKE = re.compile(r"[0-9]{1,6}-[wW][0-9]*", re.ASCII)


class BadWeek(UserError, ValueError):
    """Not a week cxbot can use. A polite refusal in chat (its key), and an English sentence
    for the command line and import files (``str()``)."""

    def __init__(self, key: str, sentence: str, **values: object) -> None:
        super().__init__(key, **values)
        self.sentence = sentence

    def __str__(self) -> str:
        return self.sentence


def _shown(text: str) -> str:
    return excerpt(text)  # echoed to chat: short, and unable to ping anyone


def weeks_in(year: int) -> int:
    return date(year, 12, 28).isocalendar()[1]  # 28 December is always in the last week


def parse_week(text: str) -> str:
    """``"2026-w5"`` → ``"2026-W05"``; BadWeek for anything else: not a week, a week that does
    not exist (``2026-W54``), or one outside FIRST_YEAR–LAST_YEAR."""
    shown = _shown(text)
    match = _WEEK.fullmatch(text.strip())
    if match is None:
        raise BadWeek("common.week_format", f"{shown!r} is not a week; write it like 2026-W47", given=shown)
    year, week = int(match.group(1)), int(match.group(2))
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise BadWeek(
            "common.week_range",
            f"{shown!r} is outside the weeks cxbot keeps ({FIRST_YEAR}-W01 to {LAST_YEAR}-W{weeks_in(LAST_YEAR)})",
            given=shown,
            first=f"{FIRST_YEAR}-W01",
            last=f"{LAST_YEAR}-W{weeks_in(LAST_YEAR)}",
        )
    count = weeks_in(year)
    if not 1 <= week <= count:
        raise BadWeek(
            "common.week_missing",
            f"{year} has weeks 1 to {count}; there is no {shown}",
            given=shown,
            year=year,
            weeks=count,
        )
    return f"{year}-W{week:02d}"


def week_of_date(day: date) -> str:
    """The week a date (an answer's day) falls in; BadWeek outside the years cxbot keeps."""
    year, week, _ = day.isocalendar()
    return parse_week(f"{year}-W{week:02d}")


def iso_week(moment: datetime, zone: ZoneInfo) -> str:
    year, week, _ = moment.astimezone(zone).isocalendar()
    return f"{year}-W{week:02d}"


def _year_week(text: str) -> tuple[int, int]:
    # For arithmetic on weeks already read (a digest's eight weeks may reach back before
    # FIRST_YEAR); what people give is checked by parse_week.
    match = _WEEK.fullmatch(text.strip())
    if match is None:
        raise BadWeek("common.week_format", f"{text!r} is not a week; write it like 2026-W47", given=_shown(text))
    return int(match.group(1)), int(match.group(2))


def week_start(text: str, zone: ZoneInfo) -> datetime:
    """Monday 00:00 of the week, in the zone (an aware datetime)."""
    year, week = _year_week(text)
    return datetime.combine(date.fromisocalendar(year, week, 1), time(0), tzinfo=zone)


def previous_week(text: str, zone: ZoneInfo) -> str:
    return iso_week(week_start(text, zone) - timedelta(days=1), zone)


def week_bounds(text: str, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """Monday 00:00 to the next Monday 00:00 in the zone, as UTC instants: a week with a
    daylight-saving change is 167 or 169 hours long."""
    start = week_start(text, zone)
    end = datetime.combine(start.date() + timedelta(days=7), time(0), tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)
