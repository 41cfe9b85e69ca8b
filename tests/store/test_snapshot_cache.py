"""The site snapshot cache: one load for many callers, dropped on an admin change, its memo with it."""

from __future__ import annotations

import asyncio

from perezvon.store.snapshots import SnapshotCache

ALWAYS = {"utcTimezone": "UTC+00:00", "hours": [{"dayOfWeek": d, "hour": h} for d in range(1, 8) for h in range(24)]}


class CountingCache(SnapshotCache):
    loads = 0

    async def _load(self, site_key: str):
        self.loads += 1
        return await super()._load(site_key)


async def test_concurrent_readers_share_one_load_and_a_change_drops_it(app_client, admin) -> None:
    site, widget = await admin.site_with_widget(operatorPhones=["79990000010"], schedule=ALWAYS)
    cache = CountingCache(app_client.app.state.db, ttl=3600)
    first = await asyncio.gather(*(cache.by_key(site["siteKey"]) for _ in range(20)))
    assert cache.loads == 1 and all(s is first[0] for s in first)
    assert await cache.by_id(site["id"]) is first[0]
    cache.invalidate(site["id"])
    again = await cache.by_key(site["siteKey"])
    assert cache.loads == 2 and again is not first[0]


async def test_unknown_keys_are_remembered_until_a_site_may_have_been_created(app_client) -> None:
    cache = CountingCache(app_client.app.state.db, ttl=3600)
    assert await cache.by_key("no-such-site") is None
    assert await cache.by_key("no-such-site") is None and cache.loads == 1
    cache.invalidate(12345)
    assert await cache.by_key("no-such-site") is None and cache.loads == 2


async def test_the_schedule_is_parsed_once_per_snapshot(app_client, admin) -> None:
    site, widget = await admin.site_with_widget(operatorPhones=["79990000010"], schedule=ALWAYS)
    cache = SnapshotCache(app_client.app.state.db, ttl=3600)
    snapshot = await cache.by_key(site["siteKey"])
    row = snapshot.widget_by_id(widget["id"])
    assert row is not None and row["route_key"] == "my_form_1" and snapshot.widget_by_id(-1) is None
    schedule = snapshot.schedule(row)
    assert snapshot.schedule(row) is schedule and schedule.utc_timezone == "UTC+00:00"
    cache.invalidate(site["id"])
    fresh = await cache.by_key(site["siteKey"])
    assert fresh.schedule(fresh.widget_by_id(widget["id"])) is not schedule  # the memo died with its snapshot
