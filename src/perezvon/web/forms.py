"""HTML form input → the admin API's validated bodies (the same pydantic models, so the same rules).

Form inputs are named after the API's camelCase paths (``throttle.userTimeoutSeconds``), so a pydantic
error's location names the input it belongs to, and the page can show the message next to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from ..domain.digits import is_ascii_digits
from ..domain.phone import normalize_admin_phone
from ..domain.schedule import is_fixed_offset
from ..shapes.resources import ANALYTICS_DEFAULTS, UI_DEFAULTS
from ..shapes.schemas import CallbackSettings, Throttle

Errors = dict[str, list[str]]


def lines(text: object) -> list[str]:
    """The non-empty lines of a textarea, stripped."""
    if not isinstance(text, str):
        return []
    return [line.strip() for line in text.splitlines() if line.strip()]


def _text(form: Mapping[str, Any], name: str) -> str:
    value = form.get(name, "")
    return value.strip() if isinstance(value, str) else ""


def checked(form: Mapping[str, Any], name: str) -> bool:
    # An unchecked checkbox is simply absent from the submission.
    return name in form


def schedule_cells(values: list[Any]) -> list[dict[str, int]]:
    cells = []
    for value in values:
        if not isinstance(value, str) or "-" not in value:
            continue  # only a tampered form sends these; the grid itself cannot
        day, _, hour = value.partition("-")
        if is_ascii_digits(day) and is_ascii_digits(hour) and len(day + hour) < 6:  # "²-3" is no cell
            cells.append({"dayOfWeek": int(day), "hour": int(hour)})
    return cells


def widget_payload(form: Any) -> dict[str, Any]:
    """The submitted widget form in the admin API's JSON shape (also what the template re-displays)."""
    return {
        "routeKey": _text(form, "routeKey"),
        "name": _text(form, "name"),
        "enabled": checked(form, "enabled"),
        "operatorPhones": lines(form.get("operatorPhones")),
        "schedule": {**schedule_zone(_text(form, "schedule.timezone")), "hours": schedule_cells(form.getlist("cell"))},
        "collectNonWorkingRequests": checked(form, "collectNonWorkingRequests"),
        "throttle": {
            "userTimeoutSeconds": _text(form, "throttle.userTimeoutSeconds"),
            "maxRequestsPerPhone": _text(form, "throttle.maxRequestsPerPhone"),
            "periodSeconds": _text(form, "throttle.periodSeconds"),
        },
        "callback": {
            "announcement": checked(form, "callback.announcement"),
            "operatorConfirm": checked(form, "callback.operatorConfirm"),
            "ringTimeoutSeconds": _text(form, "callback.ringTimeoutSeconds"),
            "redialAttempts": _text(form, "callback.redialAttempts"),
            "redialIntervalSeconds": _text(form, "callback.redialIntervalSeconds"),
            "language": _text(form, "callback.language") or "ru",
        },
        "ui": ui_payload(form),
        "analytics": _given(
            {
                "enabled": checked(form, "analytics.enabled"),
                "goal": _text(form, "analytics.goal"),
                "metrikaCounterId": _text(form, "analytics.metrikaCounterId") or None,
            }
        ),
        "voicemailDetection": checked(form, "voicemailDetection"),
    }


def _given(values: dict[str, Any]) -> dict[str, Any]:
    """Leave out what was left empty (or is not in the form at all), so the setting's default applies."""
    return {k: v for k, v in values.items() if v != ""}


def ui_payload(form: Any) -> dict[str, Any]:
    """The drop-in widget's section of the widget form (the same inputs feed its live preview)."""
    return _given(
        {
            "enabled": checked(form, "ui.enabled"),
            "color": _text(form, "ui.color"),
            "position": _text(form, "ui.position"),
            "title": _text(form, "ui.title"),
            "language": _text(form, "ui.language") or "ru",
            "buttonText": _text(form, "ui.buttonText"),
            "nameField": _text(form, "ui.nameField") or "off",
            "consentText": _text(form, "ui.consentText"),
            "pages": lines(form.get("ui.pages")),
            "delaySeconds": _text(form, "ui.delaySeconds"),
            "displaySchedule": _given(
                {
                    "days": [
                        int(d) for d in form.getlist("ui.displaySchedule.days") if isinstance(d, str) and d.isdigit()
                    ],
                    "fromHour": _text(form, "ui.displaySchedule.fromHour"),
                    "toHour": _text(form, "ui.displaySchedule.toHour"),
                }
            ),
        }
    )


def schedule_zone(text: str) -> dict[str, str | None]:
    """The zone input: an IANA name is the schedule's ``timezone``; a ``UTC+03:00`` typed there (or kept
    from a widget saved that way) is a fixed ``utcTimezone``; empty is the site's zone."""
    if is_fixed_offset(text):
        return {"timezone": None, "utcTimezone": text}
    return {"timezone": text or None}


def widget_defaults(zone: str) -> dict[str, Any]:
    """A new widget's form: the API defaults, working Monday to Friday 9:00–18:00 in the site's zone."""
    return {
        "routeKey": "",
        "name": "",
        "enabled": True,
        "operatorPhones": [],
        "schedule": {
            "timezone": zone,
            "hours": [{"dayOfWeek": d, "hour": h} for d in range(1, 6) for h in range(9, 18)],
        },
        "collectNonWorkingRequests": True,
        "throttle": Throttle().model_dump(by_alias=True),
        "callback": CallbackSettings().model_dump(by_alias=True),
        "ui": UI_DEFAULTS,
        "analytics": ANALYTICS_DEFAULTS,
        "voicemailDetection": True,
    }


def with_callback_defaults(resource: dict[str, Any]) -> dict[str, Any]:
    """A stored widget's resource with any callback setting it predates filled with the default."""
    resource = dict(resource)
    resource["callback"] = {**CallbackSettings().model_dump(by_alias=True), **resource.get("callback", {})}
    return resource


def with_ui_defaults(widget: dict[str, Any]) -> dict[str, Any]:
    """A widget (stored, or a form sent back with errors) with every ui / analytics setting it lacks at its default."""
    ui = {**UI_DEFAULTS, **(widget.get("ui") or {})}
    ui["displaySchedule"] = {**UI_DEFAULTS["displaySchedule"], **(ui.get("displaySchedule") or {})}
    return {**widget, "ui": ui, "analytics": {**ANALYTICS_DEFAULTS, **(widget.get("analytics") or {})}}


def validate(model: type[BaseModel], payload: dict[str, Any]) -> tuple[BaseModel | None, Errors]:
    try:
        return model.model_validate(payload), {}
    except ValidationError as exc:
        return None, errors_of(exc)


def errors_of(exc: ValidationError) -> Errors:
    errors: Errors = {}
    for error in exc.errors():
        loc = [str(p) for p in error.get("loc", ()) if not isinstance(p, int)]
        name = ".".join(loc) or "form"
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        errors.setdefault(name, []).append(message)
    return errors


def site_payload(form: Any) -> dict[str, Any]:
    payload = {
        "name": _text(form, "name"),
        "allowedOrigins": lines(form.get("allowedOrigins")),
        "timezone": _text(form, "timezone"),
        "callbackActive": checked(form, "callbackActive"),
        "maxRequestsPerNumberPerDay": _text(form, "maxRequestsPerNumberPerDay") or "5",
        # minutesBalance and apiPointsPerDay are not the account's to set (DESIGN §7): an operator tops up.
    }
    countries = [str(v) for v in form.getlist("allowedCountries")] if hasattr(form, "getlist") else []
    if countries:  # none chosen: a new site gets its time zone's country, an edited one keeps its own
        payload["allowedCountries"] = countries
    return payload


@dataclass
class BulkResult:
    """A pasted list of numbers: the good ones normalised, the bad lines reported by number."""

    phones: list[str] = field(default_factory=list)
    invalid: list[tuple[int, str, str]] = field(default_factory=list)  # (line number, text, why)


def parse_phone_lines(text: object) -> BulkResult:
    result = BulkResult()
    if not isinstance(text, str):
        return result
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        try:
            result.phones.append(normalize_admin_phone(line))
        except ValueError as exc:
            result.invalid.append((number, line, str(exc)))
    return result
