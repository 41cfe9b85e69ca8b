"""Destinations (DESIGN §7): premium-rate, shared-cost and unknown numbers never; other countries only if allowed."""

from __future__ import annotations

import pytest

from perezvon.domain.destinations import country_code_error, default_countries, destination_problem


@pytest.mark.parametrize(
    ("phone", "why"),
    [
        ("78091234567", "premium-rate"),  # Russia's 8-809: the caller pays the callee
        ("19005551234", "premium-rate"),  # US 1-900
        ("88001234567", "unknown type"),  # not a valid number anywhere
    ],
)
def test_some_numbers_are_never_called_whatever_the_site_allows(phone: str, why: str) -> None:
    for allowed in (["RU"], ["*"], ["US", "RU"]):
        assert why in (destination_problem(phone, allowed) or ""), allowed


def test_a_number_must_be_in_an_allowed_country() -> None:
    assert destination_problem("79001234567", ["RU"]) is None
    assert destination_problem("74951234567", ["RU"]) is None
    assert "(JM)" in (destination_problem("18765551234", ["RU"]) or "")  # Jamaica: +1 876, "one ring" fraud
    assert "(KZ)" in (destination_problem("77012345678", ["RU"]) or "")  # +7 7xx is Kazakhstan, not Russia
    assert destination_problem("77012345678", ["RU", "KZ"]) is None
    assert destination_problem("18765551234", ["*"]) is None


@pytest.mark.parametrize(
    ("zone", "countries"),
    [
        ("Europe/Moscow", ["RU"]),
        ("America/New_York", ["US"]),
        ("Asia/Almaty", ["KZ"]),
        ("Europe/Kiev", ["UA"]),
        ("UTC", ["RU"]),
        ("Etc/GMT-3", ["RU"]),
    ],
)
def test_a_new_sites_countries_come_from_its_time_zone(zone: str, countries: list[str]) -> None:
    assert default_countries(zone) == countries


def test_country_codes_are_iso_alpha_2_or_any() -> None:
    assert country_code_error("RU") is None and country_code_error("*") is None
    for bad in ("ru", "RUS", "XX", "", "Р", 7, None):
        assert country_code_error(bad) is not None, bad
