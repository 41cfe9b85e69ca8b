"""createRequest validation (DESIGN §2): every rule, every invalid field reported at once."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from perezvon.domain.request_rules import check_schedule_in_future, parse_schedule_time, validate_request

VALID = {
    "routeKey": "my_form_1",
    "phone": "79001234567",
    "fields": [{"name": "Name", "value": "Ivan"}, {"name": "Last name", "value": "Petrov"}],
    "scheduleTime": None,
    "tags": ["Тег_1", "Тег_2"],
    "unitId": 12345,
}


def names(errors) -> list[str]:  # type: ignore[no-untyped-def]
    return [f["name"] for f in errors.as_details()["fields"]]


def test_it_accepts_the_reference_example() -> None:
    request, errors = validate_request(VALID)
    assert not errors
    assert request.fields == VALID["fields"]
    assert request.tags == ["Тег_1", "Тег_2"]
    assert request.unit_id == 12345


def test_it_treats_missing_optional_arguments_as_not_given() -> None:
    request, errors = validate_request({"routeKey": "f", "phone": "79001234567"})
    assert not errors
    assert (request.fields, request.tags, request.schedule_time, request.unit_id) == ([], [], None, None)


@pytest.mark.parametrize(
    "phone",
    ["+79001234567", "7 900 123 45 67", "8(900)1234567", "7900123456", "790012345678", "7900123456a", 79001234567, ""],
)
def test_it_never_normalises_the_phone(phone: object) -> None:
    _, errors = validate_request({**VALID, "phone": phone})
    assert names(errors) == ["phone"]


def test_it_lists_every_invalid_field_at_once_in_argument_order() -> None:
    payload = {
        "routeKey": "",
        "phone": "+7900",
        "fields": [{"name": "", "value": "x"}, {"name": "a", "value": "v" * 256}],
        "scheduleTime": "tomorrow",
        "tags": ["ok", "", "x" * 101],
        "unitId": "12",
    }
    _, errors = validate_request(payload)
    assert names(errors) == [
        "routeKey",
        "phone",
        "fields[0].name",
        "fields[1].value",
        "scheduleTime",
        "tags[1]",
        "tags[2]",
        "unitId",
    ]
    for field in errors.as_details()["fields"]:
        assert field["errors"] and all(e["message"] for e in field["errors"])


def test_it_limits_fields_to_five_and_tags_to_ten() -> None:
    fields = [{"name": f"n{i}", "value": "v"} for i in range(6)]
    _, errors = validate_request({**VALID, "fields": fields, "tags": [f"t{i}" for i in range(11)]})
    assert names(errors) == ["fields", "tags"]
    _, errors = validate_request({**VALID, "fields": fields[:5], "tags": [f"t{i}" for i in range(10)]})
    assert not errors


@pytest.mark.parametrize("route_key", [None, 5, "", "x" * 256, ["a"]])
def test_it_wants_a_route_key_of_1_to_255_characters(route_key: object) -> None:
    _, errors = validate_request({**VALID, "routeKey": route_key})
    assert names(errors) == ["routeKey"]


@pytest.mark.parametrize("fields", ["Name", {"name": "a", "value": "b"}, [["a", "b"]], [{"name": "a"}]])
def test_it_wants_fields_as_an_array_of_name_value_objects(fields: object) -> None:
    _, errors = validate_request({**VALID, "fields": fields})
    assert errors
    assert all(n.startswith("fields") for n in names(errors))


@pytest.mark.parametrize("unit_id", ["5", 0, -1, 1.5, True])
def test_it_wants_unit_id_as_a_positive_integer(unit_id: object) -> None:
    _, errors = validate_request({**VALID, "unitId": unit_id})
    assert names(errors) == ["unitId"]


@pytest.mark.parametrize(
    "value", ["2026-02-30 10:00:00", "2026-11-24 25:00:00", "2026-11-24T15:11:00", "2026-11-24 15:11", 20261124]
)
def test_it_rejects_schedule_times_that_are_not_real_dates_in_the_documented_format(value: object) -> None:
    _, errors = validate_request({**VALID, "scheduleTime": value})
    assert names(errors) == ["scheduleTime"]


def test_schedule_time_is_read_in_the_call_centers_offset() -> None:
    assert parse_schedule_time("2026-11-24 15:11:00", "UTC+03:00") == datetime(2026, 11, 24, 12, 11, tzinfo=UTC)
    assert parse_schedule_time("2026-11-24 01:00:00", "UTC-05:30") == datetime(2026, 11, 24, 6, 30, tzinfo=UTC)


def test_schedule_time_must_be_in_the_future() -> None:
    now = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    # 15:00 in UTC+03:00 is exactly now: not in the future.
    assert check_schedule_in_future("2026-11-24 15:00:00", "UTC+03:00", now)
    assert check_schedule_in_future("2026-11-24 15:00:01", "UTC+03:00", now) is None


@given(st.text(max_size=300))
def test_any_route_key_text_is_judged_by_length_only(route_key: str) -> None:
    _, errors = validate_request({**VALID, "routeKey": route_key})
    assert ("routeKey" in names(errors)) == (not 1 <= len(route_key) <= 255)


@given(st.lists(st.text(min_size=0, max_size=120), max_size=12))
def test_tags_rule_holds_for_any_list(tags: list[str]) -> None:
    _, errors = validate_request({**VALID, "tags": tags})
    expected = len(tags) > 10 or any(not 1 <= len(t) <= 100 for t in tags)
    assert bool(errors) == expected


@given(st.from_regex(r"[0-9]{11}", fullmatch=True))
def test_eleven_digits_with_a_real_country_code_pass(phone: str) -> None:
    _, errors = validate_request({**VALID, "phone": phone})
    if errors:  # only a country code that does not exist may fail
        assert names(errors) == ["phone"]
        assert "possible" in errors.as_details()["fields"][0]["errors"][0]["message"]
