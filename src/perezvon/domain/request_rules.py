"""Validation of createRequest input (DESIGN §2): every invalid field is reported at once."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .errors import FieldErrors
from .phone import api_phone_error
from .schedule import local_to_utc

MAX_FIELDS = 5
MAX_TAGS = 10
SCHEDULE_FORMAT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")  # ASCII digits only


@dataclass(frozen=True)
class RequestInput:
    route_key: str
    phone: str
    fields: list[dict[str, str]]
    schedule_time: str | None
    tags: list[str]
    unit_id: int | None
    custom_fields: list[dict[str, str]]


def _is_text(value: object, low: int, high: int) -> bool:
    return isinstance(value, str) and low <= len(value) <= high


def check_route_key(value: object, errors: FieldErrors) -> None:
    if not isinstance(value, str):
        errors.add("routeKey", "routeKey must be a string of 1 to 255 characters")
    elif not 1 <= len(value) <= 255:
        errors.add("routeKey", "routeKey must be 1 to 255 characters long")


def _check_name_values(
    arg: str, value: object, errors: FieldErrors, limit: int | None
) -> list[dict[str, str]]:
    if value is None:
        return []
    if not isinstance(value, list):
        errors.add(arg, f"{arg} must be an array of {{name, value}} objects")
        return []
    if limit is not None and len(value) > limit:
        errors.add(arg, f"{arg} may hold at most {limit} items, got {len(value)}")
    clean: list[dict[str, str]] = []
    for index, item in enumerate(value):
        where = f"{arg}[{index}]"
        if not isinstance(item, dict):
            errors.add(where, f"{where} must be an object with name and value")
            continue
        for key in ("name", "value"):
            text = item.get(key)
            if not _is_text(text, 1, 255):
                errors.add(f"{where}.{key}", f"{key} must be a string of 1 to 255 characters")
        clean.append({"name": item.get("name"), "value": item.get("value")})  # type: ignore[dict-item]
    return clean


def _check_tags(value: object, errors: FieldErrors) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        errors.add("tags", "tags must be an array of strings")
        return []
    if len(value) > MAX_TAGS:
        errors.add("tags", f"tags may hold at most {MAX_TAGS} items, got {len(value)}")
    for index, tag in enumerate(value):
        if not _is_text(tag, 1, 100):
            errors.add(f"tags[{index}]", "a tag must be a string of 1 to 100 characters")
    return list(value)


def _check_unit_id(value: object, errors: FieldErrors) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        errors.add("unitId", "unitId must be a positive integer")
        return None
    return value


def parse_schedule_time(value: str, zone: str) -> datetime:
    """'YYYY-MM-DD HH:MM:SS' read in the call center's zone (IANA name or UTC+03:00) → aware UTC.

    Raises ValueError. The zone's offset on that date counts, so summer times read as summer times.
    """
    if not SCHEDULE_FORMAT.fullmatch(value):
        raise ValueError("scheduleTime must look like YYYY-MM-DD HH:MM:SS")
    local = datetime.strptime(value, "%Y-%m-%d %H:%M:%S")  # rejects 2026-02-30, 25:00:00
    return local_to_utc(local, zone)


def _check_schedule_time(value: object, errors: FieldErrors) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        errors.add("scheduleTime", "scheduleTime must be null or a string YYYY-MM-DD HH:MM:SS")
        return None
    try:
        parse_schedule_time(value, "UTC+00:00")
    except ValueError as exc:
        message = str(exc) if "look like" in str(exc) else "scheduleTime is not a real date and time"
        errors.add("scheduleTime", message)
        return None
    return value


def check_schedule_in_future(schedule_time: str, zone: str, now: datetime) -> str | None:
    """Why a well-formed scheduleTime cannot be used for this widget, or None."""
    if parse_schedule_time(schedule_time, zone) <= now:
        return f"scheduleTime must be in the future (it is read in the call center's time zone {zone})"
    return None


def validate_request(payload: dict[str, Any]) -> tuple[RequestInput, FieldErrors]:
    """Check the shape of every argument.

    The input comes back even when some arguments are invalid (those read as empty), so the caller can
    add its site-dependent checks (unit of the site, scheduleTime in the future) to the same errors and
    answer every invalid field at once.
    """
    errors = FieldErrors()
    route_key = payload.get("routeKey")
    check_route_key(route_key, errors)
    phone = payload.get("phone")
    phone_error = api_phone_error(phone)
    if phone_error:
        errors.add("phone", phone_error)
    fields = _check_name_values("fields", payload.get("fields"), errors, MAX_FIELDS)
    schedule_time = _check_schedule_time(payload.get("scheduleTime"), errors)
    tags = _check_tags(payload.get("tags"), errors)
    unit_id = _check_unit_id(payload.get("unitId"), errors)
    custom_fields = _check_name_values("customFields", payload.get("customFields"), errors, None)
    request = RequestInput(
        route_key=route_key if isinstance(route_key, str) else "",
        phone=phone if isinstance(phone, str) else "",
        fields=fields,
        schedule_time=schedule_time,
        tags=tags,
        unit_id=unit_id,
        custom_fields=custom_fields,
    )
    return request, errors
