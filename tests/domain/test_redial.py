"""Redial arithmetic: how many attempts, how far apart, and never outside working hours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from perezvon.domain import callback as cb
from perezvon.domain.quiet_hours import QuietHours, hold_for_quiet_hours
from perezvon.domain.redial import NOT_REDIALLED, Decision, RedialPolicy, after_attempt, bound_by_schedule
from perezvon.domain.schedule import ALL_HOURS, WeeklySchedule

POLICY = RedialPolicy(redial_attempts=2, interval_seconds=60)
# Monday..Friday, 09:00-18:00 at UTC+03:00.
OFFICE = WeeklySchedule.build("UTC+03:00", [(d, h) for d in range(1, 6) for h in range(9, 18)])
MONDAY_NOON_MSK = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # 12:00 at UTC+3


def test_a_connected_call_completes_the_request() -> None:
    assert after_attempt(cb.CONNECTED, 1, POLICY, MONDAY_NOON_MSK) == Decision(cb.COMPLETED)


def test_a_miss_is_redialled_after_the_interval_until_attempts_run_out() -> None:
    assert after_attempt(cb.CLIENT_BUSY, 1, POLICY, MONDAY_NOON_MSK) == Decision(
        cb.PENDING, MONDAY_NOON_MSK + timedelta(seconds=60))
    assert after_attempt(cb.OPERATOR_NO_ANSWER, 2, POLICY, MONDAY_NOON_MSK).status == cb.PENDING
    assert after_attempt(cb.OPERATOR_NO_ANSWER, 3, POLICY, MONDAY_NOON_MSK) == Decision(cb.FAILED)


def test_an_answering_machine_is_redialled_like_no_answer() -> None:
    for made in (1, 2, 3):
        assert after_attempt(cb.CLIENT_VOICEMAIL, made, POLICY, MONDAY_NOON_MSK, OFFICE) == after_attempt(
            cb.CLIENT_NO_ANSWER, made, POLICY, MONDAY_NOON_MSK, OFFICE)


def test_no_redials_means_one_attempt() -> None:
    assert after_attempt(cb.CLIENT_NO_ANSWER, 1, RedialPolicy(0, 60), MONDAY_NOON_MSK) == Decision(cb.FAILED)


def test_an_interrupted_attempt_is_retried_at_once_but_counts() -> None:
    assert after_attempt(cb.INTERRUPTED, 1, POLICY, MONDAY_NOON_MSK) == Decision(cb.PENDING, MONDAY_NOON_MSK)
    assert after_attempt(cb.INTERRUPTED, 3, POLICY, MONDAY_NOON_MSK) == Decision(cb.FAILED)


def test_a_redial_falling_after_hours_waits_for_the_next_working_hour() -> None:
    friday_1759 = datetime(2026, 11, 27, 14, 59, 30, tzinfo=UTC)  # 17:59:30 Moscow
    decision = after_attempt(cb.CLIENT_BUSY, 1, POLICY, friday_1759, OFFICE)
    assert decision == Decision(cb.PENDING, datetime(2026, 11, 30, 6, 0, tzinfo=UTC))  # Monday 09:00 Moscow


def test_a_request_due_outside_working_hours_is_not_bound_by_them() -> None:
    saturday = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
    assert not bound_by_schedule(saturday, OFFICE)
    decision = after_attempt(cb.CLIENT_BUSY, 1, POLICY, saturday, OFFICE, keep_to_schedule=False)
    assert decision == Decision(cb.PENDING, saturday + timedelta(seconds=60))


def test_an_empty_schedule_fails_instead_of_waiting_forever() -> None:
    never = WeeklySchedule.build("UTC+00:00", [])
    assert after_attempt(cb.CLIENT_BUSY, 1, POLICY, MONDAY_NOON_MSK, never) == Decision(cb.FAILED)


def test_policy_from_widget_settings_has_the_documented_defaults() -> None:
    assert RedialPolicy.from_widget({}) == RedialPolicy(2, 60)
    assert RedialPolicy.from_widget({"redialAttempts": 0, "redialIntervalSeconds": 10}).max_attempts == 1


hours = st.frozensets(st.tuples(st.integers(1, 7), st.integers(0, 23)), min_size=1, max_size=40)
moments = st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC))
outcomes = st.sampled_from([o for o in cb.OUTCOMES if o != cb.CONNECTED and o not in NOT_REDIALLED])


@given(hours, st.sampled_from(["UTC+00:00", "UTC+03:00", "UTC-05:30", "UTC+14:00"]), moments, outcomes,
       st.integers(0, 10), st.integers(1, 11), st.integers(10, 86400))
def test_a_planned_redial_is_never_early_and_always_in_working_hours(
    cells, offset, now, outcome, redials, made, interval
) -> None:
    schedule = WeeklySchedule.build(offset, cells)
    policy = RedialPolicy(redials, interval)
    decision = after_attempt(outcome, made, policy, now, schedule)
    if made >= policy.max_attempts:
        assert decision.status == cb.FAILED
        return
    assert decision.status == cb.PENDING and decision.next_attempt_at is not None
    earliest = now if outcome == cb.INTERRUPTED else now + timedelta(seconds=interval)
    assert decision.next_attempt_at >= earliest
    assert schedule.is_working(decision.next_attempt_at)
    # ...and not later than needed: at most a week after the earliest moment.
    assert decision.next_attempt_at - earliest <= timedelta(days=7)


@given(moments, outcomes, st.integers(1, 11))
def test_round_the_clock_schedules_do_not_move_redials(now, outcome, made) -> None:
    schedule = WeeklySchedule.build("UTC+03:00", ALL_HOURS)
    decision = after_attempt(outcome, made, POLICY, now, schedule)
    if decision.status == cb.PENDING:
        expected = now if outcome == cb.INTERRUPTED else now + timedelta(seconds=60)
        assert decision.next_attempt_at == expected


@given(outcomes, st.integers(0, 10))
def test_the_number_of_attempts_is_one_plus_the_redials(outcome, redials) -> None:
    policy = RedialPolicy(redials, 60)
    now = MONDAY_NOON_MSK
    made = 1
    while after_attempt(outcome, made, policy, now).status == cb.PENDING:
        made += 1
    assert made == 1 + redials


@given(st.sampled_from(sorted(NOT_REDIALLED)), st.integers(1, 11))
def test_a_declined_call_or_a_number_that_does_not_exist_is_not_called_again(outcome, made) -> None:
    assert after_attempt(outcome, made, RedialPolicy(10, 60), MONDAY_NOON_MSK) == Decision(cb.FAILED)


def test_busy_and_no_answer_each_wait_their_own_interval() -> None:
    policy = RedialPolicy.from_widget(
        {"redialIntervalSeconds": 60, "redialBusyIntervalSeconds": 120, "redialNoAnswerIntervalSeconds": 900}
    )
    after = {o: after_attempt(o, 1, policy, MONDAY_NOON_MSK).next_attempt_at for o in cb.OUTCOMES}
    in_s = {o: (at - MONDAY_NOON_MSK).total_seconds() for o, at in after.items() if at is not None}
    assert in_s[cb.CLIENT_BUSY] == in_s[cb.OPERATOR_BUSY] == 120
    assert in_s[cb.CLIENT_NO_ANSWER] == in_s[cb.OPERATOR_NO_ANSWER] == 900
    assert in_s[cb.ERROR] == 60 and in_s[cb.INTERRUPTED] == 0
    assert RedialPolicy.from_widget({"redialBusyIntervalSeconds": None}).interval_after(cb.CLIENT_BUSY) == 60


MOSCOW = "74951234567"


def test_a_redial_in_the_visitors_night_waits_for_morning_then_for_working_hours() -> None:
    def hold(at: datetime) -> datetime:
        return hold_for_quiet_hours(at, MOSCOW, "UTC", QuietHours())

    friday_evening = datetime(2026, 11, 27, 17, 59, tzinfo=UTC)  # 20:59 MSK: the redial at 21:00 is quiet
    decision = after_attempt(cb.CLIENT_NO_ANSWER, 1, POLICY, friday_evening, hold=hold)
    assert decision == Decision(cb.PENDING, datetime(2026, 11, 28, 6, 0, tzinfo=UTC))  # Saturday 09:00 MSK
    # With office hours (Mon-Fri 09-18 MSK), Saturday morning is not working: Monday 09:00.
    decision = after_attempt(cb.CLIENT_NO_ANSWER, 1, POLICY, friday_evening, OFFICE, hold=hold)
    assert decision == Decision(cb.PENDING, datetime(2026, 11, 30, 6, 0, tzinfo=UTC))


@given(hours, moments, outcomes, st.integers(0, 23), st.integers(0, 23))
def test_a_redial_is_in_working_hours_and_out_of_quiet_hours_where_they_meet(cells, now, outcome, start, end) -> None:
    from datetime import time

    schedule = WeeklySchedule.build("UTC+03:00", cells)
    quiet = QuietHours(time(start), time(end))
    decision = after_attempt(
        outcome, 1, POLICY, now, schedule, hold=lambda at: hold_for_quiet_hours(at, MOSCOW, "UTC", quiet)
    )
    assert decision.status == cb.PENDING and decision.next_attempt_at is not None
    at = decision.next_attempt_at
    assert at >= now and schedule.is_working(at)
    some_working_hour_is_awake = any(
        not quiet.is_quiet(time(h)) for d, h in cells  # UTC+3 == Moscow: the schedule's hours are the visitor's
    )
    if some_working_hour_is_awake:
        assert not quiet.is_quiet(at.astimezone(schedule.tz).time()), at
