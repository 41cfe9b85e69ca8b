"""Working mode and the next working hour, from a weekly schedule in an IANA zone or a fixed UTC offset."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from perezvon.domain.schedule import ALL_HOURS, WeeklySchedule, offset_of_zone, parse_utc_offset

# Monday..Friday 9:00-18:00 in Moscow (UTC+03:00).
OFFICE = WeeklySchedule.build("UTC+03:00", {(d, h) for d in range(1, 6) for h in range(9, 18)})
MONDAY_UTC = datetime(2026, 11, 23, tzinfo=UTC)  # 2026-11-23 is a Monday


def test_it_is_working_inside_the_local_hours() -> None:
    assert OFFICE.mode(MONDAY_UTC + timedelta(hours=6)) == "working_hours"  # 09:00 local
    assert OFFICE.mode(MONDAY_UTC + timedelta(hours=14, minutes=59)) == "working_hours"  # 17:59 local
    assert OFFICE.mode(MONDAY_UTC + timedelta(hours=15)) == "non_working_hours"  # 18:00 local
    assert OFFICE.mode(MONDAY_UTC + timedelta(hours=5, minutes=59)) == "non_working_hours"  # 08:59 local


def test_day_of_week_is_iso_in_the_schedules_offset() -> None:
    sunday_late_utc = datetime(2026, 11, 22, 22, 30, tzinfo=UTC)  # already Monday 01:30 in UTC+03:00
    monday_only = WeeklySchedule.build("UTC+03:00", {(1, 1)})
    assert monday_only.is_working(sunday_late_utc)


def test_next_working_hour_after_friday_evening_is_monday_morning() -> None:
    friday_evening = datetime(2026, 11, 27, 16, 0, tzinfo=UTC)  # 19:00 local
    assert OFFICE.due_at(friday_evening) == datetime(2026, 11, 30, 6, 0, tzinfo=UTC)  # Mon 09:00 local


def test_a_working_moment_is_due_at_once() -> None:
    moment = MONDAY_UTC + timedelta(hours=7, minutes=13)
    assert OFFICE.due_at(moment) == moment


def test_an_empty_schedule_never_works() -> None:
    never = WeeklySchedule.build("UTC+00:00", set())
    assert never.due_at(MONDAY_UTC) is None
    assert never.mode(MONDAY_UTC) == "non_working_hours"


@pytest.mark.parametrize("bad", ["UTC+3", "+03:00", "UTC+15:00", "MSK", "UTC+03:60"])
def test_it_rejects_offsets_that_are_not_utc_plus_minus_hh_mm(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_utc_offset(bad)


def test_cells_out_of_range_are_refused() -> None:
    with pytest.raises(ValueError):
        WeeklySchedule.build("UTC+00:00", {(8, 1)})
    with pytest.raises(ValueError):
        WeeklySchedule.build("UTC+00:00", {(1, 24)})


def test_offset_of_an_iana_zone_at_a_moment() -> None:
    assert offset_of_zone("Europe/Moscow", MONDAY_UTC) == "UTC+03:00"
    assert offset_of_zone("UTC", MONDAY_UTC) == "UTC+00:00"
    assert offset_of_zone("Asia/Kolkata", MONDAY_UTC) == "UTC+05:30"
    assert offset_of_zone("Europe/Berlin", WINTER) == "UTC+01:00"
    assert offset_of_zone("Europe/Berlin", SUMMER) == "UTC+02:00"
    assert offset_of_zone("UTC-05:00", SUMMER) == "UTC-05:00"


# Monday..Friday 9:00-18:00 in Berlin, which is UTC+01:00 in winter and UTC+02:00 in summer.
BERLIN = WeeklySchedule.build("Europe/Berlin", {(d, h) for d in range(1, 6) for h in range(9, 18)})
WINTER = datetime(2026, 1, 12, tzinfo=UTC)  # a Monday
SUMMER = datetime(2026, 7, 13, tzinfo=UTC)  # a Monday


def test_local_hours_hold_on_both_sides_of_daylight_saving_time() -> None:
    assert BERLIN.is_working(WINTER + timedelta(hours=8))  # 09:00 CET
    assert not BERLIN.is_working(WINTER + timedelta(hours=7, minutes=59))
    assert BERLIN.is_working(SUMMER + timedelta(hours=7))  # 09:00 CEST
    assert not BERLIN.is_working(SUMMER + timedelta(hours=6, minutes=59))
    assert BERLIN.utc_offset(WINTER) == "UTC+01:00" and BERLIN.utc_offset(SUMMER) == "UTC+02:00"


def test_the_next_working_hour_across_the_spring_change_is_9_local() -> None:
    # Clocks go forward on Sunday 2026-03-29: Friday evening is CET, Monday morning CEST.
    friday_evening = datetime(2026, 3, 27, 18, 0, tzinfo=UTC)  # 19:00 CET
    assert BERLIN.due_at(friday_evening) == datetime(2026, 3, 30, 7, 0, tzinfo=UTC)  # Mon 09:00 CEST


def test_the_next_working_hour_across_the_autumn_change_is_9_local() -> None:
    friday_evening = datetime(2026, 10, 23, 17, 0, tzinfo=UTC)  # 19:00 CEST; back to CET on the 25th
    assert BERLIN.due_at(friday_evening) == datetime(2026, 10, 26, 8, 0, tzinfo=UTC)  # Mon 09:00 CET


def test_an_hour_the_clocks_skip_is_passed_over() -> None:
    only_2am_sunday = WeeklySchedule.build("Europe/Berlin", {(7, 2)})
    saturday = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)  # 02:00 on the 29th does not exist in Berlin
    assert only_2am_sunday.due_at(saturday) == datetime(2026, 4, 5, 0, 0, tzinfo=UTC)  # a week on, 02:00 CEST


def test_an_hour_the_clocks_repeat_starts_at_its_first_occurrence() -> None:
    only_2am_sunday = WeeklySchedule.build("Europe/Berlin", {(7, 2)})
    saturday = datetime(2026, 10, 24, 12, 0, tzinfo=UTC)  # 02:00-03:00 on the 25th happens twice
    due = only_2am_sunday.due_at(saturday)
    assert due == datetime(2026, 10, 25, 0, 0, tzinfo=UTC)  # 02:00 CEST
    assert only_2am_sunday.is_working(due + timedelta(hours=1, minutes=30))  # 02:30 CET, the second time


def test_wall_times_read_in_the_zone_of_their_date() -> None:
    assert BERLIN.to_utc(datetime(2026, 1, 12, 9, 0)) == datetime(2026, 1, 12, 8, 0, tzinfo=UTC)
    assert BERLIN.to_utc(datetime(2026, 7, 13, 9, 0)) == datetime(2026, 7, 13, 7, 0, tzinfo=UTC)


@pytest.mark.parametrize("bad", ["Mars/Olympus", "", "UTC+3", "../etc/passwd", "MSK"])
def test_a_schedule_refuses_what_is_no_zone(bad: str) -> None:
    with pytest.raises(ValueError):
        WeeklySchedule.build(bad, ALL_HOURS)


cells = st.frozensets(st.tuples(st.integers(1, 7), st.integers(0, 23)), min_size=1)
moments = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1), timezones=st.just(UTC))
offsets = st.sampled_from(
    ["UTC+00:00", "UTC+03:00", "UTC-05:00", "UTC+05:30", "UTC+14:00", "UTC-12:00"]
    + ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "America/Santiago", "Asia/Kathmandu"]
)


@given(cells, moments, offsets)
def test_due_at_is_working_not_early_and_within_a_week(hours, moment, offset) -> None:  # type: ignore[no-untyped-def]
    schedule = WeeklySchedule.build(offset, hours)
    due = schedule.due_at(moment)
    assert due is not None
    assert due >= moment
    assert due - moment <= timedelta(days=14)  # a week, or two when a DST gap ate the only hour
    assert schedule.is_working(due)


@given(cells, moments, offsets)
def test_no_working_hour_is_skipped_before_due_at(hours, moment, offset) -> None:  # type: ignore[no-untyped-def]
    schedule = WeeklySchedule.build(offset, hours)
    due = schedule.due_at(moment)
    probe = moment.replace(minute=moment.minute // 15 * 15, second=0, microsecond=0) + timedelta(minutes=15)
    while probe < due:
        assert not schedule.is_working(probe)
        probe += timedelta(minutes=15)  # every zone's hours start on a quarter hour of UTC


@given(moments, offsets)
def test_all_hours_always_work(moment, offset) -> None:  # type: ignore[no-untyped-def]
    assert WeeklySchedule.build(offset, ALL_HOURS).due_at(moment) == moment
