"""Shared fixtures: real databases (a SQLite file, PostgreSQL), the app in-process, a live server.

Every test that takes ``database_url`` runs on SQLite and on PostgreSQL. Each test gets its own fresh
database cloned from a migrated template, so tests never see each other's rows and may run while
other suites use the same PostgreSQL server.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from perezvon.store.db import Database
from perezvon.store.migrate import upgrade
from support import Admin, LiveServer, make_settings, pg_exec, pg_url, start_server, stop_server


def _pg_reachable() -> str | None:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return None
    except OSError as exc:
        return f"PostgreSQL is not reachable at 127.0.0.1:5432 ({exc})"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    reason = _pg_reachable()
    if reason:
        pytest.skip(reason)
    name = f"pzv_tmpl_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    asyncio.run(pg_exec(f'CREATE DATABASE "{name}"'))
    upgrade(pg_url(name))
    yield name
    asyncio.run(pg_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def make_sqlite_db(template: Path, directory: Path) -> str:
    target = directory / "perezvon.db"
    shutil.copyfile(template, target)
    return f"sqlite:///{target}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated database: once as a SQLite file, once on PostgreSQL."""
    if request.param == "sqlite":
        yield make_sqlite_db(request.getfixturevalue("sqlite_template"), tmp_path)
        return
    template = request.getfixturevalue("pg_template")
    name = f"pzv_t_{uuid.uuid4().hex[:12]}"
    asyncio.run(pg_exec(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    yield pg_url(name)
    asyncio.run(pg_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    """A fresh SQLite database only (for tests whose subject is not storage)."""
    return make_sqlite_db(sqlite_template, tmp_path)


@pytest.fixture
async def app_client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The app in-process (no worker), per-IP limit off, on both databases."""
    from perezvon.app import create_app

    app = create_app(make_settings(database_url))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            client.app = app  # type: ignore[attr-defined]
            yield client


@pytest.fixture
def admin(app_client: httpx.AsyncClient) -> Admin:
    return Admin(app_client)


@pytest.fixture
def live_server(sqlite_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    """A real ``perezvon serve`` on a SQLite file, worker in-process, simulated line."""
    server = start_server(sqlite_url, tmp_path)
    yield server
    stop_server(server)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """A Database on a fresh migrated database, both kinds (for store and service tests)."""
    database = Database(database_url)
    try:
        yield database
    finally:
        await database.dispose()
