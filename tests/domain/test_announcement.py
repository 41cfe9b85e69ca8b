"""The text read to the operator: fields in the order given, one sentence each."""

from __future__ import annotations

import pytest

from perezvon.domain.announcement import announcement_text


def test_english_example_from_the_design() -> None:
    text = announcement_text([("Name", "Ivan"), ("Last name", "Petrov")], language="en", site_name=None,
                             unit_name=None)
    assert text == "Callback request from the site. Name: Ivan. Last name: Petrov."


def test_russian_with_site_and_unit() -> None:
    text = announcement_text([("Имя", "Иван"), ("Фамилия", "Петров")], language="ru", site_name="okna.ru",
                             unit_name="Отдел продаж")
    assert text == ("Заявка на обратный звонок с сайта okna.ru. Отдел: Отдел продаж. Имя: Иван. "
                    "Фамилия: Петров.")


def test_order_is_kept_exactly_as_given() -> None:
    fields = [("Z", "1"), ("A", "2"), ("M", "3")]
    text = announcement_text(fields, language="en", site_name=None, unit_name=None)
    assert text.index("Z: 1") < text.index("A: 2") < text.index("M: 3")


def test_values_are_tidied_for_speech() -> None:
    text = announcement_text([("Comment", "  call me\nafter six...  "), ("Empty", "   "), ("", "bare value")],
                             language="en", site_name="  ", unit_name="")
    assert text == "Callback request from the site. Comment: call me after six. bare value."


def test_no_fields_still_announces_a_request() -> None:
    assert announcement_text([], language="ru", site_name=None, unit_name=None) == "Заявка на обратный звонок с сайта."


def test_unknown_language_is_refused() -> None:
    with pytest.raises(ValueError, match="language"):
        announcement_text([], language="de", site_name=None, unit_name=None)  # type: ignore[arg-type]
