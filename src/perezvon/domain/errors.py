"""The public error vocabulary: every refusal is a ``PublicError`` with the {type, message, details} shape."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# type → HTTP status. The first eight are the reference's; the rest are ours (documented in docs/api.md).
ERROR_STATUS: dict[str, int] = {
    "unknown_error": 500,
    "server_error": 500,
    "validation_error": 400,
    "request_throttle_timeout": 429,
    "request_throttle_count": 429,
    "request_phone_blacklisted": 403,
    "request_widget_not_found": 404,
    "request_non_working_hours": 409,
    "api_points_exhausted": 429,
    "origin_not_allowed": 403,
    "request_not_found": 404,  # request-status: no such request, or not this token's
    # The admin API's own refusals, same shape.
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "conflict": 409,
}


@dataclass
class PublicError(Exception):
    type: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    retry_after: int | None = None
    # Where the type's usual status does not say it: a body over the size cap is a validation_error, 413.
    http_status: int | None = None

    def __post_init__(self) -> None:
        super().__init__(self.message)

    @property
    def status(self) -> int:
        return self.http_status or ERROR_STATUS[self.type]

    def body(self) -> dict[str, Any]:
        return {"type": self.type, "message": self.message, "details": self.details}


class FieldErrors:
    """Collects every invalid field so one answer lists them all, in argument order."""

    def __init__(self) -> None:
        self._errors: dict[str, list[str]] = {}

    def add(self, name: str, message: str) -> None:
        self._errors.setdefault(name, []).append(message)

    def __bool__(self) -> bool:
        return bool(self._errors)

    def has(self, name: str) -> bool:
        return name in self._errors

    def as_details(self) -> dict[str, Any]:
        return {
            "fields": [
                {"name": name, "errors": [{"message": m} for m in messages]}
                for name, messages in self._errors.items()
            ]
        }

    def raise_if_any(self) -> None:
        if self._errors:
            raise validation_error(self)


def throttled(kind: str, message: str, retry_after: int, **details: Any) -> PublicError:
    """A throttle refusal: says when to retry, in the Retry-After header and in details."""
    return PublicError(kind, message, {"retryAfterSeconds": retry_after, **details}, retry_after=retry_after)


def validation_error(errors: FieldErrors) -> PublicError:
    names = ", ".join(f["name"] for f in errors.as_details()["fields"])
    return PublicError("validation_error", f"Invalid request data: {names}", errors.as_details())
