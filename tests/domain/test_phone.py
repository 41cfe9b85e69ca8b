from __future__ import annotations

import pytest

from perezvon.domain.phone import api_phone_error, normalize_admin_phone


@pytest.mark.parametrize("phone", ["79001234567", "79000000000", "12025550123", "79990000001"])
def test_eleven_digit_numbers_with_country_code_pass(phone: str) -> None:
    assert api_phone_error(phone) is None


def test_a_number_with_a_country_code_that_does_not_exist_is_refused() -> None:
    assert "possible" in (api_phone_error("99912345678") or "")


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("+7 (900) 123-45-67", "79001234567"),
        ("8 900 123 45 67", "79001234567"),
        ("79001234567", "79001234567"),
        ("+1 202 555 0123", "12025550123"),
    ],
)
def test_admins_may_type_phones_loosely(typed: str, stored: str) -> None:
    assert normalize_admin_phone(typed) == stored


@pytest.mark.parametrize("typed", ["", "abc", "+7 900"])
def test_admin_phones_that_are_not_phones_are_refused(typed: str) -> None:
    with pytest.raises(ValueError):
        normalize_admin_phone(typed)
