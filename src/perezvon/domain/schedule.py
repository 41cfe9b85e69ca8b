"""Weekly working schedules: a time zone and a set of (ISO day of week, hour) cells.

The zone is an IANA name (``Europe/Berlin``), whose offset follows daylight-saving time, or, for
widgets saved with only a Calltouch-style ``utcTimezone``, a fixed offset written ``UTC+03:00``.
Cells are wall-clock hours in that zone: ``(1, 9)`` is Monday 09:00-09:59 local, summer and winter.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

OFFSET = re.compile(r"UTC([+-])([0-9]{2}):([0-9]{2})")
ALL_HOURS = frozenset((day, hour) for day in range(1, 8) for hour in range(24))
WORKING = "working_hours"
NON_WORKING = "non_working_hours"
# A DST gap can swallow the only working hour of a week, so look two weeks ahead, not one.
_SEARCH_HOURS = 2 * 7 * 24 + 1


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


def is_fixed_offset(zone: str) -> bool:
    return isinstance(zone, str) and OFFSET.fullmatch(zone) is not None


@lru_cache(maxsize=1024)
def zone_info(zone: str) -> tzinfo:
    """An IANA name or a fixed 'UTC+03:00' offset → its tzinfo. Raises ValueError on anything else."""
    if is_fixed_offset(zone):
        return parse_utc_offset(zone)
    if not isinstance(zone, str) or not zone or zone.startswith("UTC+") or zone.startswith("UTC-"):
        raise ValueError("time zone must be an IANA name (Europe/Moscow) or look like UTC+03:00")
    try:
        return ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"not an IANA time zone name: {zone!r} (e.g. Europe/Moscow, UTC)") from exc


def offset_of_zone(zone: str, at: datetime) -> str:
    """The UTC offset a zone has at ``at``, as 'UTC+03:00'."""
    return format_utc_offset(at.astimezone(zone_info(zone)).utcoffset() or timedelta(0))


def local_to_utc(wall: datetime, zone: str) -> datetime:
    """A naive wall-clock time in ``zone`` → aware UTC.

    A wall time repeated when clocks go back is read as its first occurrence; one skipped when they go
    forward (02:30 on a spring-forward night) as the same distance past the gap's start (PEP 495's fold=0).
    """
    return wall.replace(tzinfo=zone_info(zone), fold=0).astimezone(UTC)


@dataclass(frozen=True)
class WeeklySchedule:
    zone: str  # an IANA name, or a fixed offset 'UTC+03:00'
    hours: frozenset[tuple[int, int]]  # (dayOfWeek 1..7 ISO, hour 0..23)
    tz: tzinfo = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tz", zone_info(self.zone))  # frozen: set once, here

    @classmethod
    def build(cls, zone: str, hours: Iterable[tuple[int, int]]) -> WeeklySchedule:
        cells = frozenset(hours)
        for day, hour in cells:
            if not (1 <= day <= 7 and 0 <= hour <= 23):
                raise ValueError(f"schedule cell out of range: dayOfWeek={day}, hour={hour}")
        return cls(zone, cells)

    def utc_offset(self, at: datetime) -> str:
        """The zone's offset at ``at`` as Calltouch code reads it ('UTC+02:00' in Berlin in July)."""
        return offset_of_zone(self.zone, at)

    def local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.tz)

    def to_utc(self, wall: datetime) -> datetime:
        """A naive wall-clock time in the schedule's zone → aware UTC (see ``local_to_utc``)."""
        return local_to_utc(wall, self.zone)

    def is_working(self, moment: datetime) -> bool:
        local = self.local(moment)
        return (local.isoweekday(), local.hour) in self.hours

    def mode(self, moment: datetime) -> str:
        return WORKING if self.is_working(moment) else NON_WORKING

    def next_working_start(self, moment: datetime) -> datetime | None:
        """The start of the first working hour strictly after ``moment``'s hour (UTC), None if never.

        Walks wall-clock hours, so a cell means the same local hour on both sides of a DST change; a
        wall hour the clocks skip that night does not exist and is passed over.
        """
        if not self.hours:
            return None
        wall = self.local(moment).replace(minute=0, second=0, microsecond=0, tzinfo=None, fold=0)
        for step in range(1, _SEARCH_HOURS + 1):
            candidate = wall + timedelta(hours=step)  # naive: wall-clock arithmetic
            if (candidate.isoweekday(), candidate.hour) not in self.hours:
                continue
            start = self.to_utc(candidate)
            if self.local(start).replace(tzinfo=None) != candidate:
                continue  # inside a spring-forward gap
            if start > moment:
                return start
        return None  # reachable only when every working hour falls in DST gaps

    def due_at(self, moment: datetime) -> datetime | None:
        """When a call wanted at ``moment`` may be made: then, if working; else the next working hour."""
        if self.is_working(moment):
            return moment
        return self.next_working_start(moment)

    def sorted_hours(self) -> list[dict[str, int]]:
        return [{"hour": h, "dayOfWeek": d} for d, h in sorted(self.hours)]
