"""Deadlines, reminders and escalation for touchpoint issues. Pure: times in, decisions out.

Store and compare in UTC; count working time in the org's (or a person's) time zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class WorkingHours:
    days: frozenset[int]  # 0 = Monday
    start: time
    end: time

    @classmethod
    def from_spec(cls, spec: dict[str, Any] | None) -> WorkingHours | None:
        if not spec:
            return None
        return cls(
            days=frozenset(DAY_NAMES.index(d) for d in spec.get("days", DAY_NAMES[:5])),
            start=time.fromisoformat(spec.get("start", "08:00")),
            end=time.fromisoformat(spec.get("end", "17:00")),
        )


# When the org has not set business hours, reminders still respect an ordinary working day.
OFFICE_HOURS = WorkingHours(frozenset(range(5)), time(8), time(17))


def _at(day: datetime, moment: time, zone: ZoneInfo) -> datetime:
    return datetime.combine(day.date(), moment, tzinfo=zone)


def add_working_time(start: datetime, duration: timedelta, zone: ZoneInfo, hours: WorkingHours | None) -> datetime:
    """``start + duration``, where with working hours a day means a working day and an hour a
    working hour: ``1d`` from Tuesday 10:00 is Wednesday 10:00, from Friday 10:00 is Monday
    10:00; ``4h`` from 15:00 with 08–17 hours is 10:00 the next working day."""
    if hours is None or not hours.days or hours.start >= hours.end:
        return start + duration
    cursor = _next_working_moment(start.astimezone(zone), zone, hours)
    for _ in range(duration.days):
        cursor = _same_time_next_working_day(cursor, zone, hours)
    remaining = duration - timedelta(days=duration.days)
    for _ in range(3700):  # ten years of days: a bound that sane input never reaches
        closes = _at(cursor, hours.end, zone)
        if cursor + remaining <= closes:
            return (cursor + remaining).astimezone(UTC)
        remaining -= closes - cursor
        cursor = _next_working_moment(_at(cursor + timedelta(days=1), time(0), zone), zone, hours)
    raise ValueError("working hours leave no time to count")


def _next_working_moment(moment: datetime, zone: ZoneInfo, hours: WorkingHours) -> datetime:
    """``moment`` itself if inside working hours, else the next opening."""
    for _ in range(14):
        if moment.weekday() in hours.days:
            opens, closes = _at(moment, hours.start, zone), _at(moment, hours.end, zone)
            if moment < closes:
                return max(moment, opens)
        moment = _at(moment + timedelta(days=1), time(0), zone)
    raise ValueError("working hours have no working day")


def _same_time_next_working_day(moment: datetime, zone: ZoneInfo, hours: WorkingHours) -> datetime:
    day = moment
    for _ in range(14):
        day = day + timedelta(days=1)
        if day.weekday() in hours.days:
            return datetime.combine(day.date(), moment.timetz().replace(tzinfo=None), tzinfo=zone)
    raise ValueError("working hours have no working day")


def within_working_hours(now: datetime, zone: ZoneInfo, hours: WorkingHours) -> bool:
    local = now.astimezone(zone)
    return local.weekday() in hours.days and hours.start <= local.time() < hours.end


def deadlines(
    reported_at: datetime,
    acknowledge: timedelta,
    resolve: timedelta,
    *,
    critical: bool,
    zone: ZoneInfo,
    hours: WorkingHours | None,
) -> tuple[datetime, datetime]:
    """Acknowledge and resolve deadlines. A critical issue runs on the wall clock, day and night."""
    counted = None if critical else hours
    return (
        add_working_time(reported_at, acknowledge, zone, counted),
        add_working_time(reported_at, resolve, zone, counted),
    )


def reminder_lead(window: timedelta) -> timedelta:
    """How long before the deadline the owner is reminded: a quarter of the window, ≥ 15 min."""
    return max(timedelta(minutes=15), window / 4)


def reminder_due(now: datetime, due: datetime, window: timedelta) -> bool:
    """The reminder's moment has come. It has no end: a reminder held back outside the owner's
    working hours goes out at their next opening, even if the deadline passed meanwhile."""
    return now >= due - reminder_lead(window)


def escalation_times(
    due: datetime, window: timedelta, steps: int, *, zone: ZoneInfo, hours: WorkingHours | None
) -> list[datetime]:
    """When each step of the chain is due: at the deadline, then one more window apart each,
    counted in working time when there are working hours (so no weekend escalations)."""
    if steps <= 0:
        return []
    return [due] + [add_working_time(due, window * step, zone, hours) for step in range(1, steps)]


def escalation_level(now: datetime, step_times: list[datetime]) -> int:
    """How many steps of the chain are due by now."""
    return sum(1 for moment in step_times if moment <= now)
