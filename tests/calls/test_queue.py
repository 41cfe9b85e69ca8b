"""Claiming due requests: never more than asked, never one request twice, leases renew and expire."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from perezvon.store.db import Database
from perezvon.store.due_queue import DueQueue
from perezvon.store.tables import call_attempts, callback_requests

from .workers import add_requests, seed


async def test_concurrent_claims_take_disjoint_sets_and_respect_the_limit(database_url: str) -> None:
    db = Database(database_url)
    try:
        _site, ids = await seed(db, 120)
        queues = [DueQueue(db, f"w{i}") for i in range(4)]
        rounds = await asyncio.gather(*(q.claim(25) for q in queues), *(q.claim(25) for q in queues))
        claimed = [c.request_id for batch in rounds for c in batch]
        assert all(len(batch) <= 25 for batch in rounds)
        assert len(claimed) == len(set(claimed)) == 120  # 8 × 25 asked for, 120 there: each once
        assert sorted(claimed) == sorted(ids)
        async with db.read() as conn:
            attempts = (await conn.execute(select(call_attempts.c.request_id, call_attempts.c.number,
                                                  call_attempts.c.worker))).all()
            statuses = set((await conn.execute(select(callback_requests.c.status))).scalars())
        assert len(attempts) == 120 and {n for _r, n, _w in attempts} == {1}
        assert statuses == {"dialing"}
        assert await queues[0].claim(10) == []
    finally:
        await db.dispose()


async def test_requests_due_later_are_not_claimed_and_next_due_says_when(database_url: str) -> None:
    db = Database(database_url)
    try:
        later = datetime.now(UTC) + timedelta(minutes=5)
        site_id, _ = await seed(db, 0)
        async with db.read() as conn:
            from perezvon.store.tables import widgets

            widget_id = (await conn.execute(select(widgets.c.id).where(widgets.c.site_id == site_id))).scalar()
        await add_requests(db, site_id, widget_id, 3, due=later)
        queue = DueQueue(db, "w")
        assert await queue.claim(10) == []
        assert abs((await queue.next_due()) - later) < timedelta(milliseconds=1)
        assert len(await queue.claim(10, now=later)) == 3
        assert await queue.next_due() is None
    finally:
        await db.dispose()


async def test_leases_renew_for_their_owner_only_and_expire(database_url: str) -> None:
    db = Database(database_url)
    try:
        await seed(db, 2)
        mine, other = DueQueue(db, "mine", lease_s=10), DueQueue(db, "other", lease_s=10)
        claims = await mine.claim(2)
        ids = {c.request_id for c in claims}
        assert await other.renew(ids) == set()
        assert await mine.renew(ids) == ids
        assert await mine.expired() == []
        expired = await mine.expired(now=datetime.now(UTC) + timedelta(seconds=11))
        assert {r["id"] for r in expired} == ids
    finally:
        await db.dispose()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_request_written_by_another_process_wakes_the_worker_through_notify(database_url: str) -> None:
    """The safety poll is made very slow: only LISTEN/NOTIFY can explain a prompt claim."""
    from dataclasses import replace

    from perezvon.calls.dialer.simulated import SimulatedDialer
    from perezvon.calls.runtime import Runtime
    from perezvon.calls.speech import silent_speaker
    from perezvon.store.snapshots import SnapshotCache
    from support import make_settings

    db = Database(database_url)
    other = Database(database_url)  # "another process": its own connections, no in-process hook
    runtime = Runtime(db, SnapshotCache(db), replace(make_settings(database_url)),
                      dialer=SimulatedDialer(0.01, 0.01, 0), speaker=silent_speaker)
    try:
        site_id, _ = await seed(other, 0)
        async with other.read() as conn:
            from perezvon.store.tables import widgets

            widget_id = (await conn.execute(select(widgets.c.id).where(widgets.c.site_id == site_id))).scalar()
        await runtime.start()
        runtime.worker.poll_s = 3600
        with runtime.bus.subscribe() as events:
            await asyncio.wait_for(runtime.listening.wait(), 10)
            [rid] = await add_requests(other, site_id, widget_id, 1)
            loop = asyncio.get_running_loop()
            began = loop.time()
            event = await events.next(1.5)  # the first poll would come only after 2 s (POLL_S)
            assert event["requestId"] == rid and event["status"] == "dialing"
            assert loop.time() - began < 1.0
    finally:
        await runtime.stop(grace=5)
        await db.dispose()
        await other.dispose()
