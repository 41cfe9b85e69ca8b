"""Fixtures for the journal's service tests: a migrated database (SQLite and PostgreSQL), alice's and
bob's sites, and requests written straight through the store, as any writer would."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

import pytest
from sqlalchemy import insert

from perezvon.services.accounts import Principal, create_account
from perezvon.services.catalog import Catalog
from perezvon.services.journal import Journal
from perezvon.store.db import Database
from perezvon.store.snapshots import SnapshotCache
from perezvon.store.tables import call_attempts, callback_requests

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


@dataclass
class Book:
    """The journal under test with two tenants: alice (two sites) and bob (one)."""

    db: Database
    journal: Journal
    alice: Principal
    bob: Principal
    sites: dict[str, int]
    _serial = count(1)

    async def request(self, site: str = "shop", *, created: datetime | None = None, **values: Any) -> int:
        n = next(self._serial)
        created = created or T0 + timedelta(minutes=n)
        row = {
            "site_id": self.sites[site],
            "route_key": "form",
            "phone": f"7900{n:07d}",
            "fields": [],
            "custom_fields": [],
            "tags": [],
            "due_at": created,
            "source": "js",
            "utm": {},
            "status": "pending",
            "updated_at": created,
            "created_at": created,
            **values,
        }
        async with self.db.write() as conn:
            return int((await conn.execute(insert(callback_requests).values(**row))).inserted_primary_key[0])

    async def attempt(self, request_id: int, number: int, **values: Any) -> int:
        row = {"request_id": request_id, "number": number, "started_at": T0, **values}
        async with self.db.write() as conn:
            return int((await conn.execute(insert(call_attempts).values(**row))).inserted_primary_key[0])


@pytest.fixture
async def book(database_url: str) -> AsyncIterator[Book]:
    db = Database(database_url)
    catalog = Catalog(db, SnapshotCache(db))
    operator = Principal(account_id=None)
    alice = Principal(account_id=await create_account(db, "alice@example.com", None))
    bob = Principal(account_id=await create_account(db, "bob@example.com", None))
    sites = {}
    for name, owner, zone in (("shop", alice, "Europe/Moscow"), ("blog", alice, "Asia/Kolkata"), ("bobs", bob, "UTC")):
        site = await catalog.create_site(
            operator,
            {
                "account_id": owner.account_id,
                "name": name,
                "allowed_origins": [],
                "timezone": zone,
                "minutes_balance": 100,
                "callback_active": True,
                "api_points_per_day": 1000,
                "webhook_urls": [],
            },
        )
        sites[name] = site["id"]
    yield Book(db, Journal(db), alice, bob, sites)
    await db.dispose()
