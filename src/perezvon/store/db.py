"""Engine creation and transactions: one code path for SQLite (the default) and PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

log = logging.getLogger(__name__)
T = TypeVar("T")


def async_url(database_url: str) -> str:
    """Map the documented URL forms onto the drivers we ship (aiosqlite, asyncpg)."""
    url = make_url(database_url)
    backend = url.get_backend_name()
    if backend == "sqlite":
        return str(url.set(drivername="sqlite+aiosqlite"))
    if backend in ("postgresql", "postgres"):
        return url.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    raise ValueError(f"unsupported database URL scheme {url.drivername!r}")


class _InThread:
    """What a transaction body sees when it runs in the SQLite writer thread: ``await conn.execute(...)``
    returns at once, straight from the synchronous driver, so the body's awaits never suspend."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def execute(self, statement: Any, parameters: Any = None) -> Any:
        return self._conn.execute(statement, parameters)


def _run_to_end(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends (its only awaits are ``_InThread.execute``) to its result."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coroutine.close()
    raise RuntimeError("a transaction body awaited something other than conn.execute: use Database.write()")


def sqlite_path(database_url: str) -> Path | None:
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database)


def is_transient(error: BaseException) -> bool:
    """A database error worth retrying: the server is away or the connection broke, not a bad statement."""
    if isinstance(error, (OSError, TimeoutError, exc.DisconnectionError)):
        return True  # ConnectionRefusedError on connect, a reset socket, a pool that could not reconnect
    if isinstance(error, exc.DBAPIError):
        if error.connection_invalidated or isinstance(error, (exc.OperationalError, exc.InterfaceError)):
            return True
        error = error.orig or error
    # PostgreSQL's own word (asyncpg raises these raw on connect): a connection exception (class 08), or
    # the server shutting down or still starting up (57P01-57P03, "not yet accepting connections").
    sqlstate = getattr(error, "sqlstate", None)
    return isinstance(sqlstate, str) and (sqlstate.startswith("08") or sqlstate in ("57P01", "57P02", "57P03"))


async def retry_transient(
    operation: Callable[[], Awaitable[T]], *, give_up_after: float, what: str, first_delay: float = 0.25
) -> T:
    """Run ``operation`` until it succeeds, waiting out transient database errors (``is_transient``) for at
    most ``give_up_after`` seconds; any other error, or one past that, is raised. For writes that must
    not be lost to a short outage and are safe to repeat (conditional on still holding the row)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + give_up_after
    delay = first_delay
    while True:
        try:
            return await operation()
        except Exception as error:
            if not is_transient(error) or loop.time() + delay > deadline:
                raise
            log.warning("%s: the database is unreachable (%s); retrying in %.2g s", what, error, delay)
        await asyncio.sleep(delay)
        delay = min(delay * 2, 2.0)


class Database:
    """Owns the engine. ``read()`` for queries, ``write()`` for a transaction that commits durably."""

    def __init__(self, database_url: str, *, pool_size: int = 10) -> None:
        self.url = database_url
        self.is_sqlite = make_url(database_url).get_backend_name() == "sqlite"
        # SQLite allows one writer: serialise this process's writers here rather than have them
        # spin on SQLITE_BUSY; other processes wait on busy_timeout.
        self._write_lock = asyncio.Lock() if self.is_sqlite else None
        if self.is_sqlite:
            path = sqlite_path(database_url)
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
            self.engine: AsyncEngine = create_async_engine(async_url(database_url), pool_size=pool_size)
            _configure_sqlite(self.engine.sync_engine)
            # The hot write paths (group commits, the worker's claim) run whole transactions on one
            # synchronous connection in one thread: a single trip per transaction, where through aiosqlite
            # every statement, BEGIN and COMMIT is several trips between the event loop and its thread.
            # (A file only: a second connection to ":memory:" would be another, empty database.)
            self._writer_engine: Engine | None = None
            if path is not None:
                self._writer_engine = create_engine(
                    make_url(database_url).set(drivername="sqlite+pysqlite"), pool_size=1, max_overflow=0
                )
                _configure_sqlite(self._writer_engine)
                self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")
        else:
            # No pool_pre_ping: on asyncpg it costs three round trips per checkout. _configure_postgresql
            # checks what is free instead, and pings only connections that sat idle.
            self.engine = create_async_engine(
                async_url(database_url),
                pool_size=pool_size,
                max_overflow=pool_size,
                pool_pre_ping=False,
                connect_args={"timeout": CONNECT_TIMEOUT_S},
            )
            _configure_postgresql(self.engine)
            self._writer_engine = None

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn:
            yield conn

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A transaction; committed (and on SQLite fsynced) when the block exits without error."""
        if self._write_lock is None:
            async with self.engine.begin() as conn:
                yield conn
            return
        async with self._write_lock:
            async with self.engine.connect() as conn:
                conn = await conn.execution_options(sqlite_immediate=True)
                async with conn.begin():
                    yield conn

    async def transaction(self, body: Callable[[Any], Awaitable[T]]) -> T:
        """``await body(conn)`` in one transaction, committed (and on SQLite fsynced) before returning.

        The body may only ``await conn.execute(...)``. On SQLite it runs in the writer thread in one trip
        (BEGIN IMMEDIATE, every statement, COMMIT), under the same lock as ``write()``; on PostgreSQL it is
        an ordinary ``write()`` transaction."""
        if self._writer_engine is None or self._write_lock is None:
            async with self.write() as conn:
                return await body(conn)
        async with self._write_lock:
            return await asyncio.get_running_loop().run_in_executor(self._writer, self._in_writer, body)

    def _in_writer(self, body: Callable[[Any], Awaitable[T]]) -> T:
        assert self._writer_engine is not None
        with self._writer_engine.connect() as conn:
            conn.execution_options(sqlite_immediate=True)
            with conn.begin():
                return _run_to_end(body(_InThread(conn)))  # type: ignore[arg-type]

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self._writer_engine is not None:
            await asyncio.get_running_loop().run_in_executor(self._writer, self._writer_engine.dispose)


CONNECT_TIMEOUT_S = 5.0  # an unreachable server fails a request in seconds, not asyncpg's default minute
IDLE_PING_S = 10.0


def _configure_postgresql(engine: AsyncEngine) -> None:
    """Hand out no pooled connection that is known dead, so every process recovers from a database restart
    by itself, idle ones included: a connection the server closed (asyncpg notices at once, even while
    it sits in the pool) is replaced, and one idle for over ``IDLE_PING_S`` (a silent network drop) is
    pinged first. Raising DisconnectionError makes the pool discard it and connect anew."""
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "checkout")
    def _on_checkout(dbapi_connection, record, _proxy) -> None:  # type: ignore[no-untyped-def]
        driver = getattr(dbapi_connection, "_connection", None)
        if driver is not None and driver.is_closed():
            raise exc.DisconnectionError("the server closed this pooled connection")
        if time.monotonic() - record.info.get("checked_in_at", time.monotonic()) > IDLE_PING_S:
            try:
                dbapi_connection.ping()
            except Exception as error:
                raise exc.DisconnectionError(f"idle pooled connection is gone: {error}") from error

    @event.listens_for(sync_engine, "checkin")
    def _on_checkin(_dbapi_connection, record) -> None:  # type: ignore[no-untyped-def]
        record.info["checked_in_at"] = time.monotonic()


def _configure_sqlite(sync_engine: Engine) -> None:
    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        # Let us emit BEGIN ourselves (pysqlite's implicit transactions defer the write lock,
        # which turns concurrent writers into SQLITE_BUSY instead of waiting).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit is on disk before we answer with its id (DESIGN: nothing accepted is lost).
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn) -> None:  # type: ignore[no-untyped-def]
        immediate = conn.get_execution_options().get("sqlite_immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
