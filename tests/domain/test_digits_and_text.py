"""ASCII digits only, and text we can store (domain/digits.py, domain/text.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from perezvon.domain.digits import MAX_ID, has_foreign_digits, is_ascii_digits, parse_id
from perezvon.domain.phone import api_phone_error, normalize_admin_phone
from perezvon.domain.text import bad_strings, text_problem


@pytest.mark.parametrize("value", ["٧", "７", "²", "१२", "1٢"])
def test_other_scripts_digits_are_not_digits(value: str) -> None:
    assert value.isdigit()  # what Python's own test says, and why it is not used
    assert not is_ascii_digits(value) and has_foreign_digits(value) and parse_id(value) is None


@given(st.integers())
def test_parse_id_takes_positive_64_bit_integers_only(number: int) -> None:
    expected = number if 0 < number <= MAX_ID else None
    assert parse_id(number) == expected
    assert parse_id(str(number)) == expected


def test_parse_id_refuses_what_is_not_a_number() -> None:
    for value in (True, False, None, 1.5, "", " ", "1e3", "+5", "0x10", [1]):
        assert parse_id(value) is None, value


def test_phones_in_other_digits_are_refused_everywhere() -> None:
    assert api_phone_error("٧٩٠٠١٢٣٤٥٦٧") is not None
    with pytest.raises(ValueError, match="0-9"):
        normalize_admin_phone("+٧ ٩٠٠ ١٢٣-٤٥-٦٧")  # phonenumbers alone would read it as +7 900 123-45-67
    assert normalize_admin_phone("+7 (900) 123-45-67") == "79001234567"


def test_text_problems_name_the_character() -> None:
    assert text_problem("Ivan\tPetrov\nline\r") is None
    assert "surrogate (U+D800)" in (text_problem("a\ud800") or "")
    assert "control character (U+0000)" in (text_problem("\x00") or "")
    assert text_problem("\x7f") is not None and text_problem("😀") is None


def test_bad_strings_walks_keys_lists_and_depth() -> None:
    found = dict(bad_strings({"fields": [{"name": "ok", "value": "\udc00"}], "k\x01": "v"}))
    assert set(found) == {"fields[0].value", "body"}
    deep: object = "x"
    for _ in range(40):
        deep = [deep]
    assert any("deeper" in problem for _, problem in bad_strings({"a": deep}))
