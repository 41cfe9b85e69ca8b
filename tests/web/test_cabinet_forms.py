"""The small pure helpers behind the forms: schedule cells, pasted phone lists, UTC offsets."""

from __future__ import annotations

from perezvon.domain.schedule import parse_utc_offset
from perezvon.web.forms import UTC_OFFSETS, parse_phone_lines, schedule_cells


def test_schedule_cells_read_day_hour_pairs_and_skip_tampered_values():
    assert schedule_cells(["1-0", "7-23", "x", "3", "a-b", 5]) == [
        {"dayOfWeek": 1, "hour": 0},
        {"dayOfWeek": 7, "hour": 23},
    ]


def test_pasted_phones_are_normalised_and_bad_lines_reported_by_number():
    result = parse_phone_lines("+7 (900) 123-45-67\r\n\n8 900 123 45 68\nhello\n  79001234569  \n+1")
    assert result.phones == ["79001234567", "79001234568", "79001234569"]
    assert [(n, text) for n, text, _ in result.invalid] == [(4, "hello"), (6, "+1")]


def test_offsets_cover_the_world_in_order_and_all_parse():
    assert UTC_OFFSETS[0] == "UTC-12:00" and UTC_OFFSETS[-1] == "UTC+14:00"
    assert "UTC+03:00" in UTC_OFFSETS and "UTC+05:45" in UTC_OFFSETS
    deltas = [parse_utc_offset(o).utcoffset(None) for o in UTC_OFFSETS]
    assert deltas == sorted(deltas)
