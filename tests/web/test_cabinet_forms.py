"""The small pure helpers behind the forms: schedule cells, pasted phone lists, the schedule's zone."""

from __future__ import annotations

from perezvon.web.forms import parse_phone_lines, schedule_cells, schedule_zone


def test_schedule_cells_read_day_hour_pairs_and_skip_tampered_values():
    assert schedule_cells(["1-0", "7-23", "x", "3", "a-b", 5]) == [
        {"dayOfWeek": 1, "hour": 0},
        {"dayOfWeek": 7, "hour": 23},
    ]


def test_pasted_phones_are_normalised_and_bad_lines_reported_by_number():
    result = parse_phone_lines("+7 (900) 123-45-67\r\n\n8 900 123 45 68\nhello\n  79001234569  \n+1")
    assert result.phones == ["79001234567", "79001234568", "79001234569"]
    assert [(n, text) for n, text, _ in result.invalid] == [(4, "hello"), (6, "+1")]


def test_the_zone_input_reads_a_zone_name_or_keeps_a_fixed_offset():
    assert schedule_zone("Europe/Berlin") == {"timezone": "Europe/Berlin"}
    assert schedule_zone("UTC+05:00") == {"timezone": None, "utcTimezone": "UTC+05:00"}
    assert schedule_zone("") == {"timezone": None}
