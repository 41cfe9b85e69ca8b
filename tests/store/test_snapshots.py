"""The site snapshot cache: one load serves many readers, invalidation and the TTL bring changes in."""

from __future__ import annotations

import asyncio

from sqlalchemy import update

from catalog_rows import add_site, add_widget
from perezvon.services.accounts import OPERATOR
from perezvon.services.catalog import Catalog
from perezvon.store.db import Database
from perezvon.store.snapshots import SiteSnapshot, SnapshotCache
from perezvon.store.tables import sites


class CountingCache(SnapshotCache):
    """Counts loads and says when one starts; ``gate``, when set, holds every load until the test opens it."""

    def __init__(self, db: Database, ttl: float = 60.0) -> None:
        super().__init__(db, ttl=ttl)
        self.loads = 0
        self.started = asyncio.Event()
        self.gate: asyncio.Event | None = None

    async def _load(self, site_key: str) -> SiteSnapshot | None:
        self.loads += 1
        self.started.set()
        if self.gate is not None:
            await self.gate.wait()
        return await super()._load(site_key)


async def _shop(db: Database) -> tuple[Catalog, int, str]:
    """A site with a widget, a unit and a blacklisted number, made through a catalog with its own cache."""
    catalog = Catalog(db, SnapshotCache(db))
    site_id = await add_site(catalog, OPERATOR, "shop")
    await add_widget(catalog, OPERATOR, site_id, "order")
    await catalog.create_unit(OPERATOR, site_id, {"name": "sales", "phone": "+79001112233"})
    await catalog.add_blacklist(OPERATOR, site_id, "+79009998877")
    return catalog, site_id, (await catalog.get_site(OPERATOR, site_id))["site_key"]


async def _rename(db: Database, site_id: int, name: str) -> None:
    """A change made behind this cache's back, as another process would make it."""
    async with db.write() as conn:
        await conn.execute(update(sites).where(sites.c.id == site_id).values(name=name))


async def test_a_snapshot_holds_the_site_its_widgets_units_and_blacklist(db: Database) -> None:
    _, site_id, site_key = await _shop(db)
    cache = SnapshotCache(db)

    snapshot = await cache.by_key(site_key)

    assert snapshot is not None and snapshot.id == site_id
    assert snapshot.site["name"] == "shop"
    assert list(snapshot.widgets) == ["order"]
    assert [u["name"] for u in snapshot.units.values()] == ["sales"]
    assert snapshot.blacklist == frozenset({"+79009998877"})
    assert await cache.by_id(site_id) is snapshot
    assert await cache.by_key("no-such-key") is None
    assert await cache.by_id(site_id + 1000) is None


async def test_readers_share_one_load_and_the_cached_snapshot(db: Database) -> None:
    _, _, site_key = await _shop(db)
    cache = CountingCache(db)
    cache.gate = asyncio.Event()

    readers = [asyncio.ensure_future(cache.by_key(site_key)) for _ in range(20)]
    await cache.started.wait()  # the readers were scheduled before the load: all of them have arrived
    cache.gate.set()
    snapshots = await asyncio.gather(*readers)

    assert cache.loads == 1
    assert all(s is snapshots[0] for s in snapshots)
    assert await cache.by_key(site_key) is snapshots[0] and cache.loads == 1


async def test_a_change_shows_after_invalidate_or_when_the_ttl_has_passed(db: Database) -> None:
    _, site_id, site_key = await _shop(db)
    kept, expiring = SnapshotCache(db, ttl=60.0), SnapshotCache(db, ttl=0.0)
    await kept.by_key(site_key)
    await expiring.by_key(site_key)

    await _rename(db, site_id, "renamed")

    assert (await kept.by_key(site_key)).site["name"] == "shop"  # type: ignore[union-attr]
    assert (await expiring.by_key(site_key)).site["name"] == "renamed"  # type: ignore[union-attr]
    kept.invalidate(site_id)
    assert (await kept.by_key(site_key)).site["name"] == "renamed"  # type: ignore[union-attr]


async def test_a_load_that_began_before_an_invalidate_is_not_cached(db: Database) -> None:
    _, site_id, site_key = await _shop(db)
    cache = CountingCache(db)
    cache.gate = asyncio.Event()
    early = asyncio.ensure_future(cache.by_key(site_key))
    await cache.started.wait()

    cache.invalidate(site_id)  # an admin change lands while that load is in flight
    cache.gate.set()
    await early
    cache.gate = None

    assert cache.loads == 1
    await cache.by_key(site_key)
    assert cache.loads == 2  # the early answer was handed to its reader but not kept


async def test_a_new_site_is_found_after_a_miss_once_anything_is_invalidated(db: Database) -> None:
    catalog = Catalog(db, SnapshotCache(db))
    cache = SnapshotCache(db)
    assert await cache.by_key("not-yet") is None

    site_id = await add_site(catalog, OPERATOR, "new shop")
    async with db.write() as conn:
        await conn.execute(update(sites).where(sites.c.id == site_id).values(site_key="not-yet"))

    assert await cache.by_key("not-yet") is None  # the miss is cached like a hit
    cache.invalidate(site_id)
    snapshot = await cache.by_key("not-yet")
    assert snapshot is not None and snapshot.id == site_id


async def test_a_reader_that_goes_away_does_not_cancel_the_load_others_wait_for(db: Database) -> None:
    _, _, site_key = await _shop(db)
    cache = CountingCache(db)
    cache.gate = asyncio.Event()
    impatient = asyncio.ensure_future(cache.by_key(site_key))
    patient = asyncio.ensure_future(cache.by_key(site_key))
    await cache.started.wait()

    impatient.cancel()
    cache.gate.set()

    assert (await patient) is not None
    assert impatient.cancelled() and cache.loads == 1
