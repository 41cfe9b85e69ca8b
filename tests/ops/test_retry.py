"""Which database errors a write waits out (store/db.py), and for how long."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy import exc

from perezvon.store.db import is_transient, retry_transient


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(111, "Connect call failed"),
        TimeoutError(),
        asyncpg.exceptions.CannotConnectNowError("the database system is not yet accepting connections"),
        asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command"),
        exc.OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly")),
        exc.InterfaceError("SELECT 1", {}, Exception("connection is closed")),
    ],
    ids=lambda e: type(e).__name__,
)
def test_an_unreachable_server_is_transient(error: BaseException) -> None:
    assert is_transient(error)


@pytest.mark.parametrize(
    "error",
    [
        ValueError("bad"),
        exc.IntegrityError("INSERT", {}, Exception("duplicate key")),
        asyncpg.exceptions.UndefinedTableError("no such table"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_a_bad_statement_is_not(error: BaseException) -> None:
    assert not is_transient(error)


async def test_a_transient_error_is_waited_out_and_others_are_raised_at_once() -> None:
    calls = []

    async def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionRefusedError(111, "refused")
        return "done"

    assert await retry_transient(flaky, give_up_after=5, what="test", first_delay=0.001) == "done"
    assert len(calls) == 3

    async def broken() -> None:
        calls.append(1)
        raise ValueError("a bug, not an outage")

    calls.clear()
    with pytest.raises(ValueError):
        await retry_transient(broken, give_up_after=5, what="test", first_delay=0.001)
    assert len(calls) == 1


async def test_it_gives_up_after_the_window() -> None:
    async def down() -> None:
        raise ConnectionRefusedError(111, "refused")

    with pytest.raises(ConnectionRefusedError):
        await retry_transient(down, give_up_after=0.01, what="test", first_delay=0.005)
