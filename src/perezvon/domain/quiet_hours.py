"""Quiet hours: when a visitor is not called back unless they just asked to be (DESIGN §7, #11).

A widget's quiet hours (default 21:00–09:00) are read in the visitor's own time zone where the number
says it (`phonenumbers` knows one zone, or several that agree right now: `+7 495…` is Moscow, a UK
mobile is London), else in the widget's zone (`+7 9xx…` mobiles span Russia's eleven zones). Redials
and requests collected for later wait until the quiet hours end; a request the visitor makes while the
widget is working is called at once, whatever the hour where the visitor is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as phone_zones

DEFAULT_START = time(21, 0)
DEFAULT_END = time(9, 0)
DEFAULT_QUIET_HOURS = {"start": "21:00", "end": "09:00"}  # a widget's `quietHours` unless it says otherwise

Zone = str | tzinfo  # an IANA name, or a widget schedule's fixed offset


@dataclass(frozen=True)
class QuietHours:
    """From `start` to `end` local time (across midnight when start > end); start == end: never quiet."""

    start: time = DEFAULT_START
    end: time = DEFAULT_END

    @classmethod
    def parse(cls, value: dict[str, str] | None) -> QuietHours | None:
        """A widget's `quietHours` (`{"start": "21:00", "end": "09:00"}`); None (off) stays None."""
        if value is None:
            return None
        return cls(time.fromisoformat(value.get("start", "21:00")), time.fromisoformat(value.get("end", "09:00")))

    def is_quiet(self, local: time) -> bool:
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def not_before(self, moment: datetime, zone: Zone) -> datetime:
        """`moment` if it is outside quiet hours in `zone`, else the end of these quiet hours (UTC)."""
        tz = ZoneInfo(zone) if isinstance(zone, str) else zone
        local = moment.astimezone(tz)
        if not self.is_quiet(local.timetz().replace(tzinfo=None)):
            return moment
        day = local.date()
        if self.start > self.end and local.time() >= self.start:
            day += timedelta(days=1)  # evening: quiet until tomorrow morning
        return datetime.combine(day, self.end, tzinfo=tz).astimezone(UTC)


def visitor_zone(phone: str, fallback: Zone, at: datetime) -> Zone:
    """The IANA zone of an 11-digit number where phonenumbers can tell (one UTC offset now), else `fallback`."""
    try:
        zones = phone_zones.time_zones_for_number(phonenumbers.parse("+" + phone, None))
    except phonenumbers.NumberParseException:
        return fallback
    offsets = set()
    for name in zones:
        try:
            offsets.add(at.astimezone(ZoneInfo(name)).utcoffset())
        except (ZoneInfoNotFoundError, ValueError):  # "Etc/Unknown" and zones tzdata lacks
            return fallback
    return zones[0] if zones and len(offsets) == 1 else fallback


def hold_for_quiet_hours(at: datetime, phone: str, widget_zone: Zone, quiet: QuietHours | None) -> datetime:
    """When a redial or a collected request planned for `at` may really call `phone`."""
    if quiet is None:
        return at
    return quiet.not_before(at, visitor_zone(phone, widget_zone, at))


def quiet_hold(
    phone: str, quiet_hours: dict[str, str] | None, widget_zone: Zone
) -> Callable[[datetime], datetime] | None:
    """What moves a time out of the visitor's quiet hours (a widget's stored `quiet_hours`); None: none."""
    quiet = QuietHours.parse(quiet_hours)
    if quiet is None:
        return None
    return lambda at: hold_for_quiet_hours(at, phone, widget_zone, quiet)
