"""Weekly working schedules: a fixed UTC offset and a set of (ISO day of week, hour) cells."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

OFFSET = re.compile(r"UTC([+-])([0-9]{2}):([0-9]{2})")
ALL_HOURS = frozenset((day, hour) for day in range(1, 8) for hour in range(24))
WORKING = "working_hours"
NON_WORKING = "non_working_hours"


def parse_utc_offset(text: str) -> timezone:
    """'UTC+03:00' → timezone(+3h). Raises ValueError on anything else."""
    match = OFFSET.fullmatch(text) if isinstance(text, str) else None
    if not match:
        raise ValueError("time zone must look like UTC+03:00")
    sign, hours, minutes = match.groups()
    if int(hours) > 14 or int(minutes) >= 60:
        raise ValueError("time zone offset is out of range (UTC-12:00..UTC+14:00)")
    delta = timedelta(hours=int(hours), minutes=int(minutes))
    return timezone(-delta if sign == "-" else delta)


def format_utc_offset(offset: timedelta) -> str:
    sign = "-" if offset < timedelta(0) else "+"
    total = abs(int(offset.total_seconds())) // 60
    return f"UTC{sign}{total // 60:02d}:{total % 60:02d}"


def offset_of_zone(zone_name: str, at: datetime | None = None) -> str:
    """The UTC offset an IANA zone has now (or at ``at``), as 'UTC+03:00'."""
    moment = at or datetime.now(UTC)
    offset = moment.astimezone(ZoneInfo(zone_name)).utcoffset() or timedelta(0)
    return format_utc_offset(offset)


@dataclass(frozen=True)
class WeeklySchedule:
    utc_timezone: str
    hours: frozenset[tuple[int, int]]  # (dayOfWeek 1..7 ISO, hour 0..23)

    @classmethod
    def build(cls, utc_timezone: str, hours: Iterable[tuple[int, int]]) -> WeeklySchedule:
        parse_utc_offset(utc_timezone)
        cells = frozenset(hours)
        for day, hour in cells:
            if not (1 <= day <= 7 and 0 <= hour <= 23):
                raise ValueError(f"schedule cell out of range: dayOfWeek={day}, hour={hour}")
        return cls(utc_timezone, cells)

    @property
    def tz(self) -> timezone:
        return parse_utc_offset(self.utc_timezone)

    def local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.tz)

    def is_working(self, moment: datetime) -> bool:
        local = self.local(moment)
        return (local.isoweekday(), local.hour) in self.hours

    def mode(self, moment: datetime) -> str:
        return WORKING if self.is_working(moment) else NON_WORKING

    def next_working_start(self, moment: datetime) -> datetime | None:
        """The start of the first working hour strictly after ``moment``'s hour (UTC), None if never."""
        if not self.hours:
            return None
        local = self.local(moment).replace(minute=0, second=0, microsecond=0)
        for step in range(1, 7 * 24 + 1):
            candidate = local + timedelta(hours=step)
            if (candidate.isoweekday(), candidate.hour) in self.hours:
                return candidate.astimezone(UTC)
        return None  # unreachable: a non-empty set is hit within one week

    def due_at(self, moment: datetime) -> datetime | None:
        """When a call wanted at ``moment`` may be made: then, if working; else the next working hour."""
        if self.is_working(moment):
            return moment
        return self.next_working_start(moment)

    def sorted_hours(self) -> list[dict[str, int]]:
        return [{"hour": h, "dayOfWeek": d} for d, h in sorted(self.hours)]
