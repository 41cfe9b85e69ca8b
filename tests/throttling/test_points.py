"""API points are spent atomically on every backend, and the embedded default remembers them."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from perezvon.store.db import Database
from perezvon.throttling.points import MemoryPoints, PointsBook, RedisPoints, SqlPoints
from support import redis_unreachable

DAY = "2026-12-01"


async def _site(db: Database) -> int:
    from catalog_rows import add_site
    from perezvon.services.accounts import OPERATOR
    from perezvon.services.catalog import Catalog
    from perezvon.store.snapshots import SnapshotCache

    return await add_site(Catalog(db, SnapshotCache(db)), OPERATOR)


@pytest.fixture(params=["memory", "redis", "database"])
async def book(request: pytest.FixtureRequest, database_url: str):  # type: ignore[no-untyped-def]
    db = Database(database_url)
    if request.param == "redis":
        reason = redis_unreachable()
        if reason:
            pytest.skip(reason)
        made: PointsBook = RedisPoints("redis://127.0.0.1:6379/0", f"t{uuid.uuid4().hex}")
    elif request.param == "database":
        made = MemoryPoints(db) if db.is_sqlite else SqlPoints(db)
    else:
        made = MemoryPoints()
    made.site_id = await _site(db)  # type: ignore[attr-defined]
    yield made
    await made.reset()
    await made.close()
    await db.dispose()


async def test_it_never_overshoots_the_budget_under_concurrent_spends(book) -> None:  # type: ignore[no-untyped-def]
    results = await asyncio.gather(*(book.take(book.site_id, DAY, 3, 100) for _ in range(60)))
    taken = [total for ok, total in results if ok]
    assert len(taken) == 33 and max(taken) == 99  # 33 × 3 = 99; the 34th would make 102
    assert await book.spent(book.site_id, DAY) == 99
    assert all(total == 99 or total in taken for ok, total in results if not ok)


async def test_it_refuses_a_cost_above_the_whole_budget_and_gives_back(book) -> None:  # type: ignore[no-untyped-def]
    assert await book.take(book.site_id, DAY, 11, 10) == (False, 0)
    assert await book.take(book.site_id, DAY, 4, 10) == (True, 4)
    await book.give_back(book.site_id, DAY, 4)
    assert await book.spent(book.site_id, DAY) == 0


async def test_the_embedded_default_remembers_the_day_after_a_restart(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    site_id = await _site(db)
    first = MemoryPoints(db)
    assert await first.take(site_id, DAY, 7, 10) == (True, 7)
    await first.close()  # a clean stop writes the count back
    second = MemoryPoints(db)
    assert await second.spent(site_id, DAY) == 7
    assert await second.take(site_id, DAY, 4, 10) == (False, 7)
    await second.close()
    await db.dispose()
