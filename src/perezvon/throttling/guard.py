"""One object that answers "may this go on?" for every limit of DESIGN §3."""

from __future__ import annotations

import asyncio
import bisect
import ipaddress
import math
import time
from collections.abc import Iterable
from typing import Any

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from .points import PointsBook, points_book

# Tracking sessions are not counted against the per-IP API limit (DESIGN §3), but each one is a row:
# a generous limit of their own keeps a script from filling the database. A browser makes one.
SESSIONS_PER_IP_PER_MINUTE = 60
# The drop-in widget polls its request's status every few seconds; a whole office behind one IP fits.
STATUS_READS_PER_IP_PER_MINUTE = 600


SWEEP_INTERVAL_S = 1.0
SWEEP_CHUNK = 2000


class _MemoryStorage(MemoryStorage):
    """limits' in-process storage with cheaper housekeeping; every count and decision is unchanged.

    Upstream drops expired entries in a background task that restarts as soon as it ends and hands
    every key to a thread (``asyncio.to_thread``) for a bisect of a short list. With one key per phone
    (and per IP and user) that is thousands of thread round trips per sweep, sweeping without pause
    under load: measured, it cost createRequest about a third of its throughput. Here the sweep waits
    ``SWEEP_INTERVAL_S``, skips keys whose oldest entry is still alive and trims the others inline.
    Expired entries never influence a decision (the limiter compares timestamps itself), so only memory
    housekeeping changes; each key is checked and trimmed without an await in between, so no hit can
    interleave with its trim. If a limits release renames the private hook,
    this override is simply not called and upstream housekeeping runs as before.
    """

    async def _MemoryStorage__expire_events(self) -> None:  # overrides MemoryStorage.__expire_events
        try:
            await asyncio.sleep(SWEEP_INTERVAL_S)
        except asyncio.CancelledError:
            return
        now = time.time()
        for done, key in enumerate(list(self.events)):
            if done % SWEEP_CHUNK == SWEEP_CHUNK - 1:
                # Tens of thousands of phone keys: let requests run between chunks, not wait for the sweep.
                await asyncio.sleep(0)
                now = time.time()
            events = self.events.get(key)
            if events and events[-1].expiry > now:
                continue  # newest first: if the oldest entry is alive, all are (the common case, no bisect)
            # Same trim as upstream: the expired entries are a tail.
            cutoff = bisect.bisect_left(events or [], -now, key=lambda event: -event.expiry)
            if cutoff:
                self.events[key] = events[:cutoff]  # type: ignore[index]
            else:
                self.events.pop(key, None)
                self.locks.pop(key, None)
        for key, expires in list(self.expirations.items()):
            if expires <= now:
                self.storage.pop(key, None)
                self.expirations.pop(key, None)
                self.locks.pop(key, None)


def _redis_storage_url(redis_url: str) -> str:
    # limits names its asyncio Redis backend "async+redis://"; we take the ordinary redis:// URL.
    for scheme in ("redis://", "rediss://"):
        if redis_url.startswith(scheme):
            return "async+" + redis_url
    return redis_url


def _per_seconds(amount: int, seconds: int) -> RateLimitItem:
    return RateLimitItemPerSecond(amount, max(1, seconds))


class Guard:
    def __init__(
        self, *, ip_rate_limit: int = 5, redis_url: str = "", namespace: str = "perezvon", db: Any = None
    ) -> None:
        self.ip_rate_limit = ip_rate_limit
        # API points: atomic check-and-spend, durable where there is a database (see points.py).
        self.points: PointsBook = points_book(redis_url, namespace, db)
        self.namespace = namespace
        self.storage: Storage = (
            storage_from_string(_redis_storage_url(redis_url), key_prefix=namespace) if redis_url else _MemoryStorage()
        )
        # A moving window, not a fixed one: of 11 requests inside any one second exactly 5 pass.
        self.limiter = MovingWindowRateLimiter(self.storage)
        self._ip_item = RateLimitItemPerSecond(ip_rate_limit, 1) if ip_rate_limit > 0 else None

    async def _retry_after(self, item: RateLimitItem, *identifiers: str) -> int:
        stats = await self.limiter.get_window_stats(item, *identifiers)
        return max(1, math.ceil(stats.reset_time - time.time()))

    async def hit_ip(self, ip: str) -> int | None:
        """Count one public API request from ``ip``; seconds to wait when over the limit, else None."""
        if self._ip_item is None:
            return None
        if await self.limiter.hit(self._ip_item, "ip", ip):
            return None
        return await self._retry_after(self._ip_item, "ip", ip)

    async def hit_session(self, ip: str) -> int | None:
        """Count one tracking-session creation from ``ip``; seconds to wait when over the limit."""
        item = RateLimitItemPerSecond(SESSIONS_PER_IP_PER_MINUTE, 60)
        if await self.limiter.hit(item, "session", ip):
            return None
        return await self._retry_after(item, "session", ip)

    async def hit_status(self, ip: str) -> int | None:
        """Count one visitor request-status read from ``ip``; seconds to wait when over the limit."""
        item = RateLimitItemPerSecond(STATUS_READS_PER_IP_PER_MINUTE, 60)
        if await self.limiter.hit(item, "status", ip):
            return None
        return await self._retry_after(item, "status", ip)

    async def hit_user_cooldown(self, widget_id: int, user_key: str, seconds: int) -> int | None:
        """One accepted request per ``seconds`` per user and widget; 0 switches it off."""
        if seconds <= 0:
            return None
        item = _per_seconds(1, seconds)
        if await self.limiter.hit(item, "user", str(widget_id), user_key):
            return None
        return await self._retry_after(item, "user", str(widget_id), user_key)

    async def hit_phone_count(self, widget_id: int, phone: str, max_requests: int, period_s: int) -> int | None:
        """At most ``max_requests`` accepted per phone and widget per ``period_s``; 0 switches it off."""
        if max_requests <= 0 or period_s <= 0:
            return None
        item = _per_seconds(max_requests, period_s)
        if await self.limiter.hit(item, "phone", str(widget_id), phone):
            return None
        return await self._retry_after(item, "phone", str(widget_id), phone)

    async def hit_number_day(self, site_id: int, day: str, phone: str, cap: int) -> bool:
        """Count one request for ``phone`` on the site's calendar ``day``; False once over ``cap``.
        The key names the day, so the count starts afresh at the site's midnight; the window is two days
        so that no entry of the day expires before the day does, in any time zone."""
        return await self.limiter.hit(_per_seconds(cap, 2 * 86400), "number", str(site_id), day, phone)

    async def points_spent(self, site_id: int, day: str) -> int:
        return await self.points.spent(site_id, day)

    async def take_points(self, site_id: int, day: str, cost: int, budget: int) -> tuple[bool, int]:
        """Spend ``cost`` of the site's ``budget`` for ``day`` in one atomic step: (taken, points spent)."""
        if cost <= 0:
            return True, await self.points.spent(site_id, day)
        return await self.points.take(site_id, day, cost, budget)

    async def give_back_points(self, site_id: int, day: str, cost: int) -> None:
        if cost > 0:
            await self.points.give_back(site_id, day, cost)

    async def reset(self) -> None:
        await self.storage.reset()
        await self.points.reset()

    async def close(self) -> None:
        await self.points.close()


def client_ip(peer: str | None, forwarded_for: str | None, trusted_proxies: Iterable[str]) -> str:
    """The client's address: the socket peer, or X-Forwarded-For's nearest untrusted hop when the peer
    is a configured trusted proxy (never trust the header from anyone else: it is trivially forged)."""
    peer = peer or "unknown"
    networks = [ipaddress.ip_network(p, strict=False) for p in trusted_proxies]
    if not networks or not forwarded_for:
        return peer

    def trusted(address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in networks)

    if not trusted(peer):
        return peer
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        if not trusted(hop):
            return hop
    return hops[0] if hops else peer
