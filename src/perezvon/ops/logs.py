"""Logging set-up: one handler on the root logger, text or JSON (python-json-logger), phones masked.

Every record passes two filters on that handler, whatever its logger or level (ours, uvicorn's access
log, SQLAlchemy's, a traceback): ``MaskPhones`` rewrites anything that looks like a phone number as
``7900***4567``, and ``ContextIds`` stamps the ids of what is being done (the HTTP request's
``X-Request-Id``, the callback request and attempt a worker task is calling) from context variables.
"""

from __future__ import annotations

import logging
import logging.config
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

http_request_id: ContextVar[str | None] = ContextVar("http_request_id", default=None)
callback_request_id: ContextVar[int | None] = ContextVar("callback_request_id", default=None)
attempt_id: ContextVar[int | None] = ContextVar("attempt_id", default=None)

# A bare run of 10-15 digits (how perezvon stores numbers: 11 digits), optionally after "+", and the
# spellings visitors type (+7 (900) 123-45-67, 8 900 123 45 67). Dates and times do not match: their
# runs are short and their separators are not these.
_PHONE = re.compile(
    r"(?<![\d])\+?\d{10,15}(?![\d])"
    r"|(?<![\d])\+?\d{1,3}[ -]?\(\d{3}\)[ -]?\d{3}[ -]?\d{2}[ -]?\d{2}(?![\d])"
    r"|(?<![\d-])\+?[78][ -]\d{3}[ -]\d{3}[ -]\d{2}[ -]?\d{2}(?![\d])"
)


def _mask_one(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group())
    return f"{digits[:4]}***{digits[-4:]}"


def mask_phones(text: str) -> str:
    """``79001234567`` → ``7900***4567``: the country and operator code and the last four digits stay,
    enough to tell calls apart in a log, not enough to call anyone."""
    return _PHONE.sub(_mask_one, text) if any(c.isdigit() for c in text) else text


_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


class MaskPhones(logging.Filter):
    """Masks phone numbers in the message, its arguments, extras, the traceback and the stack."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = mask_phones(record.getMessage())
        record.args = None
        if record.exc_info:
            # Formatters format exc_info when present; hand them the masked text instead.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
        if record.exc_text:
            record.exc_text = mask_phones(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_phones(record.stack_info)
        for key, value in list(vars(record).items()):
            if key not in _STANDARD and isinstance(value, str):
                setattr(record, key, mask_phones(value))
        return True


class ContextIds(logging.Filter):
    """Adds ``request_id`` (X-Request-Id), ``callback_request_id`` and ``attempt_id`` where known."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in (
            ("request_id", http_request_id),
            ("callback_request_id", callback_request_id),
            ("attempt_id", attempt_id),
        ):
            value = var.get()
            if value is not None and getattr(record, name, None) is None:
                setattr(record, name, value)
        return True


@contextmanager
def attempt_context(request_id: int, attempt: int) -> Iterator[None]:
    """Log lines written while this block runs (in this task) name the callback request and attempt."""
    tokens = callback_request_id.set(request_id), attempt_id.set(attempt)
    try:
        yield
    finally:
        attempt_id.reset(tokens[1])
        callback_request_id.reset(tokens[0])


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
JSON_FIELDS = "%(levelname)s %(name)s %(message)s"
JSON_RENAMES = {"levelname": "level", "name": "logger"}


def logging_config(level: str = "info", fmt: str = "text") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` dict; also given to uvicorn, so ``--workers`` children use it."""
    formatter: dict[str, Any] = {"format": TEXT_FORMAT}
    if fmt == "json":
        formatter = {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": JSON_FIELDS,
            "rename_fields": JSON_RENAMES,
            "timestamp": "time",  # ISO 8601 in UTC, microseconds
            "json_ensure_ascii": False,
        }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"mask_phones": {"()": MaskPhones}, "context_ids": {"()": ContextIds}},
        "formatters": {"default": formatter},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "default",
                "filters": ["context_ids", "mask_phones"],
            }
        },
        "root": {"level": level.upper(), "handlers": ["default"]},
        # uvicorn's own loggers send their lines up to ours (same format, same masking).
        "loggers": {
            name: {"handlers": [], "propagate": True, "level": level.upper()}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
        },
    }


def configure_logging(level: str = "info", fmt: str = "text") -> None:
    logging.config.dictConfig(logging_config(level, fmt))
