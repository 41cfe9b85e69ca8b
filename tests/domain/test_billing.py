"""Billing: per started minute of bridged time, the balance never below zero."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from perezvon.domain.billing import billed_minutes, billed_seconds, spend


@pytest.mark.parametrize(
    ("bridged", "seconds"), [(0, 0), (-3, 0), (0.0004, 0), (0.2, 1), (1, 1), (59.5, 60), (60.0000001, 60), (61, 61)]
)
def test_billed_seconds_round_up_to_whole_seconds(bridged: float, seconds: int) -> None:
    assert billed_seconds(bridged) == seconds


@pytest.mark.parametrize(("seconds", "minutes"), [(0, 0), (1, 1), (59, 1), (60, 1), (61, 2), (120, 2), (121, 3)])
def test_every_started_minute_is_billed(seconds: int, minutes: int) -> None:
    assert billed_minutes(seconds) == minutes


@given(st.integers(min_value=1, max_value=10**6))
def test_minutes_cover_the_seconds_and_never_a_whole_minute_more(seconds: int) -> None:
    minutes = billed_minutes(seconds)
    assert (minutes - 1) * 60 < seconds <= minutes * 60


def test_spend_takes_what_the_balance_has_and_stops_at_zero() -> None:
    assert spend(10, 3).balance_after == 7
    charge = spend(2, 5)
    assert (charge.minutes, charge.spent, charge.balance_after) == (5, 2, 0)
    assert spend(0, 4).spent == 0


@given(st.integers(min_value=0, max_value=10**6), st.integers(min_value=0, max_value=10**4))
def test_spend_never_goes_negative_and_conserves_minutes(balance: int, minutes: int) -> None:
    charge = spend(balance, minutes)
    assert charge.balance_after >= 0
    assert charge.balance_after + charge.spent == balance
    assert charge.spent <= minutes
