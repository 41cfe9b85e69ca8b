"""Daily API points: spent atomically, so concurrent requests can never overshoot the budget together.

``take`` checks and spends in one step: a Redis script where Redis is configured (one round trip, atomic
on the server), else one SQL statement on PostgreSQL (an upsert whose update only applies within the
budget), else, on the embedded SQLite default, a counter in this process (no await between the check and
the add) that is loaded from ``api_points_usage`` on first use and written back there at most
``FLUSH_S`` later and on shutdown, so a restart remembers the day's spend. A crash loses at most the
last ``FLUSH_S`` of spend; a write per getRouteKeyData would cost the single SQLite writer a commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from ..store.db import Database
from ..store.tables import api_points_usage

log = logging.getLogger(__name__)
POINTS_TTL_S = 2 * 24 * 3600  # a day's count outlives the day in any time zone
FLUSH_S = 1.0

# KEYS[1] the day's counter; ARGV cost, budget, ttl. Returns {1, new total} or {0, current total}.
TAKE_SCRIPT = """
local spent = tonumber(redis.call('GET', KEYS[1]) or '0')
local cost = tonumber(ARGV[1])
if spent + cost > tonumber(ARGV[2]) then return {0, spent} end
local total = redis.call('INCRBY', KEYS[1], cost)
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
return {1, total}
"""

_u = api_points_usage.c


class PointsBook:
    """One site-day counter per key; subclasses differ only in where the count lives."""

    async def take(self, site_id: int, day: str, cost: int, budget: int) -> tuple[bool, int]:
        """Spend ``cost`` if the total stays within ``budget``: (taken, total after or as it stands)."""
        raise NotImplementedError

    async def spent(self, site_id: int, day: str) -> int:
        raise NotImplementedError

    async def give_back(self, site_id: int, day: str, cost: int) -> None:
        """Undo a ``take`` whose request was then not stored."""
        raise NotImplementedError

    async def close(self) -> None:
        return None

    async def reset(self) -> None:
        """Forget every count (tests)."""
        return None


class RedisPoints(PointsBook):
    def __init__(self, redis_url: str, namespace: str) -> None:
        from redis.asyncio import Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff
        from redis.exceptions import ConnectionError as RedisConnectionError

        # A pooled connection that Redis closed (a restart) is retried once on a fresh one, so service
        # resumes by itself; the timeouts keep an unreachable Redis from hanging a public call.
        self.redis = Redis.from_url(
            redis_url,
            socket_connect_timeout=5,
            socket_timeout=5,
            retry=Retry(NoBackoff(), 1),
            retry_on_error=[RedisConnectionError],
        )
        self.namespace = namespace
        self._take = self.redis.register_script(TAKE_SCRIPT)

    def _key(self, site_id: int, day: str) -> str:
        return f"{self.namespace}:points:{site_id}:{day}"

    async def take(self, site_id: int, day: str, cost: int, budget: int) -> tuple[bool, int]:
        taken, total = await self._take(keys=[self._key(site_id, day)], args=[cost, budget, POINTS_TTL_S])
        return bool(taken), int(total)

    async def spent(self, site_id: int, day: str) -> int:
        return int(await self.redis.get(self._key(site_id, day)) or 0)

    async def give_back(self, site_id: int, day: str, cost: int) -> None:
        await self.redis.decrby(self._key(site_id, day), cost)

    async def close(self) -> None:
        await self.redis.aclose()

    async def reset(self) -> None:
        async for key in self.redis.scan_iter(f"{self.namespace}:points:*"):
            await self.redis.delete(key)


class SqlPoints(PointsBook):
    """PostgreSQL: the check and the add are one statement, atomic across every process."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def take(self, site_id: int, day: str, cost: int, budget: int) -> tuple[bool, int]:
        if cost > budget:
            return False, await self.spent(site_id, day)
        statement = postgresql.insert(api_points_usage).values(site_id=site_id, day=day, points=cost)
        statement = statement.on_conflict_do_update(
            index_elements=[_u.site_id, _u.day],
            set_={"points": _u.points + statement.excluded.points},
            where=_u.points + statement.excluded.points <= budget,
        ).returning(_u.points)
        async with self.db.write() as conn:
            total = (await conn.execute(statement)).scalar()
        if total is None:  # the update's condition failed: over budget, nothing changed
            return False, await self.spent(site_id, day)
        return True, int(total)

    async def spent(self, site_id: int, day: str) -> int:
        async with self.db.read() as conn:
            query = select(_u.points).where(_u.site_id == site_id, _u.day == day)
            return int((await conn.execute(query)).scalar() or 0)

    async def give_back(self, site_id: int, day: str, cost: int) -> None:
        async with self.db.write() as conn:
            await conn.execute(
                update(api_points_usage).where(_u.site_id == site_id, _u.day == day).values(points=_u.points - cost)
            )


class MemoryPoints(PointsBook):
    """In-process counters, optionally backed by ``api_points_usage`` (the embedded SQLite default)."""

    def __init__(self, db: Database | None = None) -> None:
        self.db = db
        self.counts: dict[tuple[int, str], int] = {}
        self._loading: dict[tuple[int, str], asyncio.Future[None]] = {}
        self._dirty: set[tuple[int, str]] = set()
        self._flusher: asyncio.Task[None] | None = None

    async def _ensure(self, key: tuple[int, str]) -> None:
        if key in self.counts or self.db is None:
            self.counts.setdefault(key, 0)
            return
        loading = self._loading.get(key)
        if loading is None:  # the first touch of this site-day loads it; the others wait for that load
            loading = self._loading[key] = asyncio.get_running_loop().create_future()
            try:
                async with self.db.read() as conn:
                    query = select(_u.points).where(_u.site_id == key[0], _u.day == key[1])
                    stored = int((await conn.execute(query)).scalar() or 0)
                self.counts[key] = max(self.counts.get(key, 0), stored)
                loading.set_result(None)
            except BaseException as exc:
                loading.set_exception(exc)
                raise
            finally:
                self._loading.pop(key, None)
        else:
            await asyncio.shield(loading)

    async def take(self, site_id: int, day: str, cost: int, budget: int) -> tuple[bool, int]:
        key = (site_id, day)
        await self._ensure(key)
        # No await from here on: the check and the add cannot be split by another request.
        if self.counts[key] + cost > budget:
            return False, self.counts[key]
        self.counts[key] += cost
        self._changed(key)
        return True, self.counts[key]

    async def spent(self, site_id: int, day: str) -> int:
        await self._ensure((site_id, day))
        return self.counts[(site_id, day)]

    async def give_back(self, site_id: int, day: str, cost: int) -> None:
        key = (site_id, day)
        await self._ensure(key)
        self.counts[key] = max(0, self.counts[key] - cost)
        self._changed(key)

    def _changed(self, key: tuple[int, str]) -> None:
        if self.db is None:
            return
        self._dirty.add(key)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush_later())

    async def _flush_later(self) -> None:
        await asyncio.sleep(FLUSH_S)
        try:
            await self.flush()
        except Exception:  # the counts stay dirty in memory: the next change or shutdown writes them
            log.warning("could not store API points spent; will retry", exc_info=True)

    async def flush(self) -> None:
        if self.db is None or not self._dirty:
            return
        dirty, self._dirty = self._dirty, set()
        rows = [{"site_id": s, "day": d, "points": self.counts[(s, d)]} for s, d in dirty]
        statement = sqlite.insert(api_points_usage)
        statement = statement.on_conflict_do_update(
            index_elements=[_u.site_id, _u.day], set_={"points": statement.excluded.points}
        )
        try:
            async with self.db.write() as conn:
                await conn.execute(statement, rows)
        except IntegrityError:  # a site deleted meanwhile: store the others, drop its count
            for row in rows:
                with contextlib.suppress(IntegrityError):
                    async with self.db.write() as conn:
                        await conn.execute(statement, [row])
        except BaseException:
            self._dirty |= dirty
            raise

    async def close(self) -> None:
        if self._flusher is not None and not self._flusher.done():
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        with contextlib.suppress(Exception):
            await self.flush()


def points_book(redis_url: str, namespace: str, db: Any | None) -> PointsBook:
    if redis_url:
        return RedisPoints(redis_url, namespace)
    if db is not None and not db.is_sqlite:
        return SqlPoints(db)
    return MemoryPoints(db)
