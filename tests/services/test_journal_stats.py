"""The dashboard's aggregates equal a recount of the journal after any mix of new requests,
attempts, redials, cancels and finishes, whoever writes the rows; the migration's backfill too."""

from __future__ import annotations

import asyncio
import importlib.util
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from alembic import command
from sqlalchemy import select, update

from perezvon.services.stats import daily, median_of_buckets
from perezvon.store.db import Database
from perezvon.store.migrate import alembic_config
from perezvon.store.tables import (
    STATS_SLOT_S,
    WAIT_COLUMNS,
    WAIT_EDGES,
    call_attempts,
    callback_requests,
    request_stats,
)

from .conftest import T0

MIGRATION = Path(__file__).parents[2] / "src/perezvon/store/migrations/versions/0004_journal_search.py"


def _bucket(seconds: float) -> int:
    return next((i for i, edge in enumerate(WAIT_EDGES) if seconds < edge), len(WAIT_EDGES))


def _slot(moment: datetime) -> int:
    return int(moment.timestamp()) // STATS_SLOT_S * STATS_SLOT_S


async def recount(db: Database) -> tuple[dict, dict]:
    """What the aggregates must say, computed from the journal's rows alone."""
    async with db.read() as conn:
        requests = (await conn.execute(select(callback_requests))).mappings().all()
        attempts = (await conn.execute(select(call_attempts).order_by(call_attempts.c.number))).mappings().all()
    by_request = {}
    for a in attempts:
        by_request.setdefault(a["request_id"], []).append(a)
    stats: dict = {}
    waits: Counter = Counter()
    for r in requests:
        key = (r["site_id"], _slot(r["created_at"]))
        n, done, fin, billed = stats.get(key, (0, 0, 0, 0))
        tries = by_request.get(r["id"], [])
        stats[key] = (
            n + 1,
            done + (r["status"] == "completed"),
            fin + (r["status"] in ("completed", "failed")),
            billed + sum(a["billed_seconds"] for a in tries),
        )
        answered = [a for a in tries if a["client_answered_at"] is not None]
        if answered:
            wait = max(0.0, (answered[0]["client_answered_at"] - r["due_at"]).total_seconds())
            waits[(*key, _bucket(wait))] += 1
    return stats, dict(waits)


async def aggregates(db: Database) -> tuple[dict, dict]:
    stats, waits = {}, {}
    async with db.read() as conn:
        for row in (await conn.execute(select(request_stats))).mappings():
            key = (row["site_id"], row["slot"])
            counts = (row["requests"], row["completed"], row["finished"], row["billed_seconds"])
            if counts != (0, 0, 0, 0):
                stats[key] = counts
            waits |= {(*key, i): row[name] for i, name in enumerate(WAIT_COLUMNS) if row[name]}
    return stats, waits


async def _set_request(db: Database, request_id: int, **values) -> None:  # type: ignore[no-untyped-def]
    async with db.write() as conn:
        await conn.execute(update(callback_requests).where(callback_requests.c.id == request_id).values(**values))


async def _set_attempt(db: Database, attempt_id: int, **values) -> None:  # type: ignore[no-untyped-def]
    async with db.write() as conn:
        await conn.execute(update(call_attempts).where(call_attempts.c.id == attempt_id).values(**values))


async def play(book, rng: random.Random, steps: int) -> None:  # type: ignore[no-untyped-def]
    """Random lives of requests, step by step as the engine, the API and admins write them."""
    live: dict[int, dict] = {}
    for _ in range(steps):
        action = rng.choice(["new", "new", "dial", "answer", "end", "redial", "finish", "cancel", "reopen"])
        if action == "new" or not live:
            created = T0 + timedelta(minutes=rng.randrange(0, 3 * 24 * 60), seconds=rng.random() * 60)
            site = rng.choice(["shop", "blog", "bobs"])
            rid = await book.request(site, created=created, status=rng.choice(["pending"] * 5 + ["completed"]))
            live[rid] = {"attempt": None, "answered": False, "number": 0, "created": created}
            continue
        rid = rng.choice(list(live))
        life = live[rid]
        moment = life["created"] + timedelta(seconds=rng.choice([rng.randrange(0, 120), rng.randrange(0, 20_000)]))
        if action == "dial" and life["attempt"] is None:
            life["number"] += 1
            life["attempt"], life["answered"] = await book.attempt(rid, life["number"], started_at=moment), False
            await _set_request(book.db, rid, status="dialing")
        elif action == "answer" and life["attempt"] is not None and not life["answered"]:
            life["answered"] = True  # an attempt is answered once; attempts follow one another
            await _set_attempt(book.db, life["attempt"], client_answered_at=moment, operator_answered_at=moment)
        elif action == "end" and life["attempt"] is not None:
            await _set_attempt(book.db, life["attempt"], ended_at=moment, billed_seconds=rng.randrange(0, 600))
            life["attempt"] = None
        elif action == "redial":
            life["attempt"] = None
            await _set_request(book.db, rid, status="pending", next_attempt_at=moment)
        elif action == "finish":
            await _set_request(book.db, rid, status=rng.choice(["completed", "failed"]), finished_at=moment)
        elif action == "cancel":
            await _set_request(book.db, rid, status="cancelled")
        elif action == "reopen":  # a finished request called again (reschedule)
            await _set_request(book.db, rid, status="pending")
        if (
            rng.random() < 0.1 and life["attempt"] is None
        ):  # an attempt recorded in one go, as a bulk load or a recovery writes it
            life["number"] += 1
            answered = moment if rng.random() < 0.5 else None
            await book.attempt(rid, life["number"], client_answered_at=answered, billed_seconds=rng.randrange(0, 90))


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_aggregates_equal_a_recount_after_any_mix_of_writes(book, seed):
    await play(book, random.Random(seed), 250)
    expected = await recount(book.db)
    assert len(expected[0]) > 30 and sum(expected[1].values()) > 5  # a real mix, not an empty journal
    assert await aggregates(book.db) == expected


async def test_the_dashboard_sums_slots_into_the_days_of_any_zone(book):
    kolkata = ZoneInfo("Asia/Kolkata")  # +05:30: a day starts at 18:30 UTC
    late = datetime(2026, 11, 20, 18, 20, tzinfo=UTC)  # 23:50 on the 20th in Kolkata
    early = datetime(2026, 11, 20, 18, 40, tzinfo=UTC)  # 00:10 on the 21st
    for moment in (late, early, early):
        await book.request("blog", created=moment, due_at=moment)
    rid = await book.request("blog", created=early, due_at=early, status="completed")
    await book.attempt(rid, 1, client_answered_at=early + timedelta(seconds=50), billed_seconds=120)
    summary = await daily(book.db, [book.sites["blog"]], "Asia/Kolkata", early.astimezone(kolkata).date(), 2)
    (day20, day21) = summary.days
    assert (day20.requests, day21.requests) == (1, 3)
    assert (day21.completed, day21.finished, day21.minutes) == (1, 1, 2)
    assert 45 <= day21.median_wait <= 60  # inside the bucket that holds 50 s
    assert day20.median_wait is None and summary.requests == 4


def test_medians_are_read_inside_their_bucket():
    counts = [0] * (len(WAIT_EDGES) + 1)
    assert median_of_buckets(counts) is None
    counts[1] = 2  # two waits in [10, 20)
    assert median_of_buckets(counts) == 15
    counts[3] = 2  # and two in [30, 45)
    assert median_of_buckets(counts) == 20
    counts[-1] = 10  # most over a day: the open bucket's lower bound
    assert median_of_buckets(counts) == WAIT_EDGES[-1]


def test_the_migration_buckets_waits_as_the_store_reads_them():
    spec = importlib.util.spec_from_file_location("m0004", MIGRATION)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    assert module.WAIT_EDGES == WAIT_EDGES and module.SLOT_S == STATS_SLOT_S


async def test_the_migration_backfills_existing_history(book):
    await play(book, random.Random(7), 150)
    expected = await recount(book.db)
    url = book.db.url
    await book.db.dispose()
    config = alembic_config(url)
    # Down to the schema before the aggregates and back up: the backfill rebuilds them from the rows.
    await asyncio.to_thread(command.downgrade, config, "0004-1")
    await asyncio.to_thread(command.upgrade, config, "head")
    db = Database(url)
    try:
        assert await aggregates(db) == expected
    finally:
        await db.dispose()
