"""Read-mostly site configuration kept in memory for the hot public API path.

Every admin change in this process invalidates its site at once; other processes (several API workers)
see a change within ``ttl`` seconds.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from ..domain.schedule import WeeklySchedule
from .db import Database
from .tables import blacklist, sites, units, widgets


@dataclass(frozen=True)
class SiteSnapshot:
    site: dict[str, Any]
    widgets: dict[str, dict[str, Any]]  # by route_key
    units: dict[int, dict[str, Any]]
    blacklist: frozenset[str]
    loaded_at: float
    # Values derived from this snapshot alone (a widget's parsed schedule, its getRouteKeyData answer),
    # computed on first use. They live and die with the snapshot, so an admin change or the TTL reload
    # drops them together with the data they came from: never stale, never recomputed per request.
    memo: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def id(self) -> int:
        return self.site["id"]

    def schedule(self, widget: dict[str, Any]) -> WeeklySchedule:
        """The widget's schedule, parsed once per snapshot (168 cells: not per request or call); the one
        schedule cache, shared by the intake and the worker."""
        key = ("schedule", widget["id"])
        schedule = self.memo.get(key)
        if schedule is None:
            schedule = self.memo[key] = WeeklySchedule.build(
                widget["schedule_timezone"], (tuple(cell) for cell in widget["schedule_hours"])
            )
        return schedule

    def widget_by_id(self, widget_id: int | None) -> dict[str, Any] | None:
        return next((w for w in self.widgets.values() if w["id"] == widget_id), None)

    @property
    def callback_active(self) -> bool:
        """The service answers for this site: switched on and minutes left (DESIGN §2)."""
        return bool(self.site["callback_active"]) and self.site["minutes_balance"] > 0


class SnapshotCache:
    def __init__(self, db: Database, ttl: float = 2.0) -> None:
        self.db = db
        self.ttl = ttl
        self._by_key: dict[str, SiteSnapshot | None] = {}
        self._key_by_id: dict[int, str] = {}
        # One load per key at a time: when a snapshot expires under load, every request arriving during
        # its reload used to start a reload of its own (tens of them, each four queries, each query
        # several trips to the SQLite thread), which showed as latency spikes every ``ttl`` seconds.
        self._loading: dict[str, asyncio.Future[SiteSnapshot | None]] = {}
        # Bumped by invalidate(): a load that began before an admin change must not be cached after it.
        self._generation = 0

    async def by_key(self, site_key: str) -> SiteSnapshot | None:
        cached = self._by_key.get(site_key, False)
        if cached is not False and (cached is None or time.monotonic() - cached.loaded_at < self.ttl):
            if cached is None and len(self._by_key) > 10_000:
                self._by_key.clear()  # unknown keys must not grow memory without bound
            return cached  # type: ignore[return-value]
        loading = self._loading.get(site_key)
        # A load left over from another event loop (tests run one per test) cannot be awaited from this one.
        if loading is None or loading.get_loop() is not asyncio.get_running_loop():
            loading = asyncio.ensure_future(self._load_and_keep(site_key, self._generation))
            self._loading[site_key] = loading
            loading.add_done_callback(lambda done: self._forget_load(site_key, done))
        # Shielded: a caller that goes away must not cancel the load the others are waiting for.
        return await asyncio.shield(loading)

    async def _load_and_keep(self, site_key: str, generation: int) -> SiteSnapshot | None:
        snapshot = await self._load(site_key)
        if generation == self._generation:
            self._by_key[site_key] = snapshot
            if snapshot is not None:
                self._key_by_id[snapshot.id] = site_key
        return snapshot

    def _forget_load(self, site_key: str, done: asyncio.Future[SiteSnapshot | None]) -> None:
        if self._loading.get(site_key) is done:
            del self._loading[site_key]
        if not done.cancelled():
            done.exception()  # retrieved here, so a failure nobody awaited any more is not logged as lost

    async def by_id(self, site_id: int) -> SiteSnapshot | None:
        key = self._key_by_id.get(site_id)
        if key is None:
            async with self.db.read() as conn:
                key = (await conn.execute(select(sites.c.site_key).where(sites.c.id == site_id))).scalar()
            if key is None:
                return None
        return await self.by_key(key)

    def invalidate(self, site_id: int | None = None) -> None:
        # Loads in flight may have read the old rows: let them answer their waiters, but cache nothing,
        # and make later callers start a fresh load.
        self._generation += 1
        self._loading.clear()
        if site_id is None:
            self._by_key.clear()
            return
        key = self._key_by_id.pop(site_id, None)
        if key is not None:
            self._by_key.pop(key, None)
        # Unknown-key misses may now be a newly created site.
        for k in [k for k, v in self._by_key.items() if v is None]:
            del self._by_key[k]

    async def _load(self, site_key: str) -> SiteSnapshot | None:
        async with self.db.read() as conn:
            site = (await conn.execute(select(sites).where(sites.c.site_key == site_key))).mappings().first()
            if site is None:
                return None
            site_id = site["id"]
            widget_rows = (await conn.execute(select(widgets).where(widgets.c.site_id == site_id))).mappings()
            unit_rows = (await conn.execute(select(units).where(units.c.site_id == site_id))).mappings()
            phones = (await conn.execute(select(blacklist.c.phone).where(blacklist.c.site_id == site_id))).scalars()
            return SiteSnapshot(
                site=dict(site),
                widgets={w["route_key"]: dict(w) for w in widget_rows},
                units={u["id"]: dict(u) for u in unit_rows},
                blacklist=frozenset(phones),
                loaded_at=time.monotonic(),
            )
