"""Real ``perezvon worker`` processes: exactly-once dialling with two workers, recovery after SIGKILL,
and a clean stop on SIGTERM."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

import pytest
from sqlalchemy import func, select

from perezvon.store.db import Database
from perezvon.store.tables import call_attempts, callback_requests

from .workers import seed, start_worker

pytestmark = pytest.mark.e2e


async def poll(db: Database, query: Any, done: Any, timeout: float) -> Any:
    """Re-read ``query`` until ``done(value)``: other processes' progress has no event we can await here."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        async with db.read() as conn:
            value = (await conn.execute(query)).all()
        if done(value) or loop.time() > deadline:
            return value
        await asyncio.sleep(0.1)


def status_counts(rows: list[Any]) -> dict[str, int]:
    return {status: count for status, count in rows}


STATUS_QUERY = select(callback_requests.c.status, func.count()).group_by(callback_requests.c.status)


async def attempts_by_request(db: Database) -> dict[int, list[dict[str, Any]]]:
    async with db.read() as conn:
        rows = (await conn.execute(select(call_attempts).order_by(call_attempts.c.request_id,
                                                                  call_attempts.c.number))).mappings().all()
    grouped: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        grouped[row["request_id"]].append(dict(row))
    return grouped


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_two_workers_on_postgresql_dial_each_of_500_requests_exactly_once(database_url: str) -> None:
    db = Database(database_url)
    workers = []
    try:
        env = {"PEREZVON_WORKER_CONCURRENCY": "50"}
        workers = list(await asyncio.gather(start_worker(database_url, **env), start_worker(database_url, **env)))
        _site, ids = await seed(db, 500)  # one transaction: NOTIFY wakes both workers at once
        counts = status_counts(await poll(db, STATUS_QUERY, lambda v: status_counts(v).get("completed") == 500, 60))
        assert counts == {"completed": 500}, counts
        attempts = await attempts_by_request(db)
        assert set(attempts) == set(ids)
        assert all(len(a) == 1 for a in attempts.values()), [r for r, a in attempts.items() if len(a) != 1]
        assert all(a[0]["outcome"] == "connected" for a in attempts.values())
        made_by = defaultdict(int)
        for (attempt,) in attempts.values():
            made_by[attempt["worker"]] += 1
        assert len(made_by) == 2 and sum(made_by.values()) == 500, made_by  # both took part, no overlap
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            await worker.wait()
        await db.dispose()


async def test_after_a_sigkill_every_request_is_finished_and_never_dialled_twice_at_once(database_url: str) -> None:
    db = Database(database_url)
    env = {"PEREZVON_SIM_RING_S": "0.05", "PEREZVON_SIM_TALK_S": "3", "PEREZVON_WORKER_LEASE_S": "1.5",
           "PEREZVON_WORKER_CONCURRENCY": "10"}
    first = await start_worker(database_url, **env)
    second = None
    try:
        _site, ids = await seed(db, 15)  # 10 in hand at once, 5 waiting
        bridged = select(func.count()).select_from(call_attempts).where(call_attempts.c.client_answered_at.is_not(None))
        [(in_call,)] = await poll(db, bridged, lambda v: v[0][0] >= 10, 20)
        assert in_call == 10
        first.kill()
        assert await first.wait() == -9
        second = await start_worker(database_url, **{**env, "PEREZVON_SIM_TALK_S": "0.05"})
        counts = status_counts(await poll(db, STATUS_QUERY, lambda v: status_counts(v).get("completed") == 15, 30))
        assert counts == {"completed": 15}, counts
    finally:
        if second is not None:
            second.terminate()
            await second.wait()
        await db.dispose()
    attempts = await attempts_by_request(db)
    interrupted = [r for r, a in attempts.items() if a[0]["outcome"] == "interrupted"]
    assert len(interrupted) == 10  # the ten calls in hand when the worker died
    for request_id in ids:
        made = attempts[request_id]
        assert made[-1]["outcome"] == "connected"
        assert all(a["ended_at"] is not None for a in made)
        for earlier, later in zip(made, made[1:], strict=False):
            # The next attempt starts only once the dead worker's lease ran out and its attempt was closed.
            assert earlier["ended_at"] <= later["started_at"], (request_id, earlier, later)
            assert earlier["worker"] != later["worker"]
        assert [a["number"] for a in made] == list(range(1, len(made) + 1))
    assert len({a[-1]["worker"] for a in attempts.values()}) == 1  # the restarted worker finished them all


async def test_sigterm_finishes_the_calls_in_hand_then_exits(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    worker = await start_worker(sqlite_url, PEREZVON_SIM_RING_S="0.05", PEREZVON_SIM_TALK_S="1",
                                PEREZVON_WORKER_CONCURRENCY="4")
    try:
        await seed(db, 6)
        bridged = select(func.count()).select_from(call_attempts).where(call_attempts.c.client_answered_at.is_not(None))
        await poll(db, bridged, lambda v: v[0][0] >= 4, 20)
        worker.terminate()
        assert await worker.wait() == 0, worker.output
        attempts = await attempts_by_request(db)
        assert len(attempts) == 4
        # 1 s of talk plus scheduling: whole seconds are rounded up.
        assert all(a[0]["outcome"] == "connected" and a[0]["billed_seconds"] in (1, 2) for a in attempts.values())
        counts = status_counts(await poll(db, STATUS_QUERY, lambda v: True, 0))
        assert counts == {"completed": 4, "pending": 2}  # the two not yet claimed wait for the next worker
    finally:
        if worker.process.returncode is None:
            worker.kill()
        await db.dispose()
