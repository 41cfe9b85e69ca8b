"""Phone numbers: the API's strict 11-digit form, and parsing what admins type."""

from __future__ import annotations

import re

import phonenumbers

from .digits import has_foreign_digits

API_PHONE = re.compile(r"[0-9]{11}")  # ASCII only: re's \d takes any script's digits


def api_phone_error(value: object) -> str | None:
    """Why ``value`` is not an API phone (11 digits, country and city code, no plus), or None.

    The API never normalises: cleaning up what a visitor typed is the form's job (DESIGN §2).
    """
    if not isinstance(value, str):
        return "Phone must be a string of 11 digits"
    if not API_PHONE.fullmatch(value):
        return "Phone must be exactly 11 digits with country and city code, without plus, spaces or punctuation"
    if not _is_possible(value):
        return "Phone is not a possible number: check the country and city code"
    return None


def _is_possible(digits: str) -> bool:
    try:
        number = phonenumbers.parse("+" + digits, None)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.is_possible_number(number)


def normalize_admin_phone(value: str, default_region: str = "RU") -> str:
    """An admin's '+7 (900) 123-45-67' or '8 900 123 45 67' → '79001234567'. Raises ValueError."""
    text = value.strip()
    if not text:
        raise ValueError("phone is empty")
    if has_foreign_digits(text):  # phonenumbers would read them as 0-9: refuse rather than guess
        raise ValueError(f"a phone takes digits 0-9 only: {value!r}")
    digits = re.sub(r"[^0-9]", "", text)
    if not text.startswith("+") and len(digits) == 11 and _is_possible(digits):
        return digits
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"not a phone number: {value!r}") from exc
    if not phonenumbers.is_possible_number(number):
        raise ValueError(f"not a possible phone number: {value!r}")
    return f"{number.country_code}{number.national_number}"


def region_of(digits: str) -> str:
    """The ISO 3166 country of an 11-digit number ('79001234567' → 'RU'), '' when phonenumbers can't tell."""
    try:
        number = phonenumbers.parse("+" + digits, None)
    except phonenumbers.NumberParseException:
        return ""
    region = phonenumbers.region_code_for_number(number)
    return "" if region in (None, "ZZ", "001") else region
