"""Quiet hours in the visitor's zone: when a redial or a collected request may call."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from perezvon.domain.quiet_hours import QuietHours, hold_for_quiet_hours, visitor_zone

NIGHT = QuietHours()  # 21:00-09:00
MOSCOW_LANDLINE = "74951234567"
RUSSIAN_MOBILE = "79001234567"  # phonenumbers: any of Russia's zones
NOVOSIBIRSK = "73832123456"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_the_numbers_zone_where_phonenumbers_knows_it() -> None:
    at = utc(2026, 12, 1, 12)
    assert visitor_zone(MOSCOW_LANDLINE, "UTC", at) == "Europe/Moscow"
    assert visitor_zone(NOVOSIBIRSK, "Europe/Moscow", at) == "Asia/Novosibirsk"
    assert visitor_zone(RUSSIAN_MOBILE, "Asia/Yekaterinburg", at) == "Asia/Yekaterinburg"  # ambiguous
    assert visitor_zone("447911123456", "UTC", at) in ("Europe/London", "Europe/Guernsey")  # one offset now
    assert visitor_zone("12125551234", "UTC", at) == "America/New_York"
    assert visitor_zone("00000000000", "Europe/Berlin", at) == "Europe/Berlin"


def test_an_evening_redial_waits_for_the_visitors_morning() -> None:
    evening = utc(2026, 12, 1, 19, 30)  # 22:30 in Moscow
    assert hold_for_quiet_hours(evening, MOSCOW_LANDLINE, "UTC", NIGHT) == utc(2026, 12, 2, 6)  # 09:00 MSK
    early = utc(2026, 12, 1, 3)  # 06:00 in Moscow: the same morning
    assert hold_for_quiet_hours(early, MOSCOW_LANDLINE, "UTC", NIGHT) == utc(2026, 12, 1, 6)
    # 19:30 UTC is 02:30 next day in Novosibirsk (UTC+7): its 09:00 is 02:00 UTC.
    assert hold_for_quiet_hours(evening, NOVOSIBIRSK, "Europe/Moscow", NIGHT) == utc(2026, 12, 2, 2)
    # A Russian mobile number: the widget's zone decides.
    assert hold_for_quiet_hours(evening, RUSSIAN_MOBILE, "Europe/Moscow", NIGHT) == utc(2026, 12, 2, 6)
    noon = utc(2026, 12, 1, 9)
    assert hold_for_quiet_hours(noon, MOSCOW_LANDLINE, "UTC", NIGHT) == noon


def test_off_custom_and_empty_windows() -> None:
    late = utc(2026, 12, 1, 22)
    assert hold_for_quiet_hours(late, MOSCOW_LANDLINE, "UTC", None) == late
    assert QuietHours.parse(None) is None
    siesta = QuietHours.parse({"start": "13:00", "end": "15:00"})
    assert siesta == QuietHours(time(13), time(15))
    assert hold_for_quiet_hours(utc(2026, 12, 1, 11), MOSCOW_LANDLINE, "UTC", siesta) == utc(2026, 12, 1, 12)
    never = QuietHours(time(9), time(9))
    assert hold_for_quiet_hours(late, MOSCOW_LANDLINE, "UTC", never) == late


def test_daylight_saving_is_followed() -> None:
    # New York, the night the clocks go forward (2026-03-08): 09:00 EDT is 13:00 UTC, not 14:00.
    night = utc(2026, 3, 8, 5)  # 00:00 EST
    assert hold_for_quiet_hours(night, "12125551234", "UTC", NIGHT) == utc(2026, 3, 8, 13)


@given(
    st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2028, 1, 1)),
    st.sampled_from(["Europe/Moscow", "America/New_York", "Asia/Kathmandu", "Australia/Lord_Howe"]),
    st.integers(0, 23),
    st.integers(0, 23),
)
def test_never_early_never_quiet_never_more_than_a_day(naive: datetime, zone: str, start: int, end: int) -> None:
    quiet = QuietHours(time(start), time(end))
    at = naive.replace(tzinfo=UTC)
    allowed = quiet.not_before(at, zone)
    local = allowed.astimezone(ZoneInfo(zone))
    assert at <= allowed <= at + timedelta(hours=25)
    assert allowed == at or not quiet.is_quiet(local.time())
    if not quiet.is_quiet(at.astimezone(ZoneInfo(zone)).time()):
        assert allowed == at


def test_quiet_hold_from_a_widgets_setting_and_its_fixed_offset_zone() -> None:
    from datetime import timezone

    from perezvon.domain.quiet_hours import quiet_hold

    assert quiet_hold(RUSSIAN_MOBILE, None, "UTC") is None
    hold = quiet_hold(RUSSIAN_MOBILE, {"start": "21:00", "end": "09:00"}, timezone(timedelta(hours=3)))
    assert hold is not None
    assert hold(utc(2026, 12, 1, 19)) == utc(2026, 12, 2, 6)  # 22:00 at UTC+3 → 09:00 at UTC+3
    assert hold(utc(2026, 12, 1, 12)) == utc(2026, 12, 1, 12)
