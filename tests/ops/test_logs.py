"""Logs: phones masked at every level and in every part of a line, JSON lines, the ids of what is done."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from perezvon.ops.logs import attempt_context, configure_logging, http_request_id, mask_phones


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("calling 79001234567 now", "calling 7900***4567 now"),
        ("+79001234567", "7900***4567"),
        ("to +7 (900) 123-45-67.", "to 7900***4567."),
        ("8 900 123-45-67", "8900***4567"),
        ("sip:79001234567@127.0.0.1", "sip:7900***4567@127.0.0.1"),
        ("phones=['79001234567', '79990000010']", "phones=['7900***4567', '7999***0010']"),
        ('{"phone":"79001234567"}', '{"phone":"7900***4567"}'),
    ],
)
def test_phones_are_masked(text: str, masked: str) -> None:
    assert mask_phones(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "request 12345 attempt 3",
        "due 2026-12-01 11:53:16",
        "at 2026-12-01T11:53:16.123Z",
        "127.0.0.1:5060",
        "took 0.1234567 s",
        "port 10000-20000",
    ],
)
def test_what_is_not_a_phone_stays(text: str) -> None:
    assert mask_phones(text) == text


@contextmanager
def configured(level: str, fmt: str) -> Iterator[io.StringIO]:
    """perezvon's logging set-up, writing to a buffer; the root logger as it was afterwards."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    buffer = io.StringIO()
    try:
        configure_logging(level, fmt)
        root.handlers[0].setStream(buffer)  # type: ignore[attr-defined]
        yield buffer
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    with configured("debug", "json") as buffer:
        yield buffer


def lines(buffer: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]


def test_a_json_line_has_time_level_logger_message(json_logs) -> None:  # type: ignore[no-untyped-def]
    logging.getLogger("perezvon.test").info("hello %s", "there")
    [line] = lines(json_logs)
    assert line["message"] == "hello there"
    assert line["level"] == "INFO" and line["logger"] == "perezvon.test"
    assert line["time"].endswith("+00:00") and "T" in line["time"]


def test_phones_are_masked_at_every_level_in_args_extras_and_tracebacks(json_logs) -> None:  # type: ignore[no-untyped-def]
    log = logging.getLogger("perezvon.test")
    log.debug("debug %s", "79001234567")
    log.warning("warning", extra={"phone": "79001234567"})
    try:
        raise ValueError("bad number 79001234567")
    except ValueError:
        log.exception("failed for %s", "+7 (900) 123-45-67")
    logging.getLogger("uvicorn.access").info(
        '%s - "%s %s HTTP/%s" %d', "127.0.0.1:1", "GET", "/api/admin/v1/requests?q=79001234567", "1.1", 200
    )
    out = lines(json_logs)
    assert len(out) == 4
    text = json.dumps(out)
    assert "79001234567" not in text and "123-45-67" not in text
    assert text.count("7900***4567") == 6  # the traceback shows it twice: the source line and the error
    assert "ValueError: bad number 7900***4567" in out[2]["exc_info"]


def test_lines_name_the_http_request_and_the_attempt(json_logs) -> None:  # type: ignore[no-untyped-def]
    log = logging.getLogger("perezvon.test")
    token = http_request_id.set("req-1")
    try:
        log.info("in a request")
    finally:
        http_request_id.reset(token)
    with attempt_context(42, 7):
        log.info("in an attempt")
    log.info("outside")
    first, second, third = lines(json_logs)
    assert first["request_id"] == "req-1" and "attempt_id" not in first
    assert second["callback_request_id"] == 42 and second["attempt_id"] == 7 and "request_id" not in second
    assert not {"request_id", "callback_request_id", "attempt_id"} & set(third)


def test_text_logs_are_masked_too() -> None:
    with configured("info", "text") as buffer:
        logging.getLogger("perezvon.test").info("calling %s", "79001234567")
    err = buffer.getvalue()
    assert "INFO perezvon.test: calling 7900***4567" in err and "79001234567" not in err
