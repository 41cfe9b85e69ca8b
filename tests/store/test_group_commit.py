"""The group commit: many callers, shared transactions, each caller answered only after its commit."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import insert, select

from perezvon.clock import utcnow
from perezvon.store.db import Database
from perezvon.store.group_commit import GroupCommit
from perezvon.store.tables import accounts


class Recorder:
    """An ``apply`` that inserts one account per item and remembers every batch it was given."""

    def __init__(self, bad: set[str] | None = None) -> None:
        self.batches: list[list[str]] = []
        self.bad = bad or set()

    async def __call__(self, conn, items: list[str]) -> list[str]:
        self.batches.append(list(items))
        await conn.execute(
            insert(accounts),
            [{"email": f"{item}@example.org", "password_hash": "x", "created_at": utcnow()} for item in items],
        )
        if self.bad & set(items):
            raise ValueError(f"bad item in {items}")
        return [item.upper() for item in items]


async def stored(db: Database) -> set[str]:
    async with db.read() as conn:
        return {e.split("@")[0] for e in (await conn.execute(select(accounts.c.email))).scalars()}


async def test_concurrent_items_share_one_transaction_and_each_gets_its_result(db: Database) -> None:
    apply = Recorder()
    commits = GroupCommit(db, apply)
    names = [f"u{i}" for i in range(20)]
    results = await asyncio.gather(*(commits.submit(n) for n in names))
    assert results == [n.upper() for n in names]
    assert len(apply.batches) == 1 and apply.batches[0] == names  # submitted in one tick: one commit
    assert await stored(db) == set(names)


async def test_a_bad_item_fails_alone_and_the_others_are_stored(db: Database) -> None:
    apply = Recorder(bad={"u3"})
    commits = GroupCommit(db, apply)
    names = [f"u{i}" for i in range(6)]
    results = await asyncio.gather(*(commits.submit(n) for n in names), return_exceptions=True)
    assert isinstance(results[3], ValueError)
    assert [r for i, r in enumerate(results) if i != 3] == [n.upper() for n in names if n != "u3"]
    # The failed batch was rolled back whole, then each item retried in a transaction of its own.
    assert await stored(db) == set(names) - {"u3"}
    assert apply.batches[0] == names and all(len(b) == 1 for b in apply.batches[1:])


async def test_batches_are_capped_and_items_arriving_during_a_commit_join_the_next(db: Database) -> None:
    apply = Recorder()
    commits = GroupCommit(db, apply, max_batch=4)
    first = [asyncio.ensure_future(commits.submit(f"a{i}")) for i in range(6)]
    await asyncio.sleep(0)  # the flusher has started its first transaction
    later = [asyncio.ensure_future(commits.submit(f"b{i}")) for i in range(3)]
    await asyncio.gather(*first, *later)
    assert [len(b) for b in apply.batches][0] == 4
    assert sum(len(b) for b in apply.batches) == 9 and all(len(b) <= 4 for b in apply.batches)
    assert len(await stored(db)) == 9


async def test_a_caller_gone_before_its_batch_began_gets_nothing_written(db: Database) -> None:
    apply = Recorder()
    commits = GroupCommit(db, apply)
    kept = asyncio.ensure_future(commits.submit("kept"))
    gone = asyncio.ensure_future(commits.submit("gone"))
    await asyncio.sleep(0)  # both are queued; the flusher has not begun its transaction yet
    assert commits.waiting == 2
    gone.cancel()
    assert await kept == "KEPT"
    assert await stored(db) == {"kept"}
    assert commits.waiting == 0


class Seen(Recorder):
    """A Recorder that also remembers the connection (hence the transaction) each batch ran in."""

    def __init__(self, bad: set[str] | None = None) -> None:
        super().__init__(bad)
        self.conns: list[object] = []

    async def __call__(self, conn, items: list[str]) -> list[str]:
        self.conns.append(conn)
        return await super().__call__(conn, items)


async def test_on_sqlite_every_group_commit_of_a_database_shares_one_transaction(db: Database) -> None:
    accepts, closings = Seen(), Seen()
    first, second = GroupCommit(db, accepts), GroupCommit(db, closings)
    results = await asyncio.gather(*(first.submit(f"a{i}") for i in range(3)), second.submit("c0"))
    assert results == ["A0", "A1", "A2", "C0"]
    assert await stored(db) == {"a0", "a1", "a2", "c0"}
    shared = accepts.conns[0] is closings.conns[0]
    # SQLite has one writer: one transaction (one fsync) for both kinds. PostgreSQL keeps them apart.
    assert shared is db.is_sqlite


async def test_a_failing_kind_in_a_shared_transaction_leaves_the_others_stored(db: Database) -> None:
    good, bad = Seen(), Seen(bad={"b1"})
    first, second = GroupCommit(db, good), GroupCommit(db, bad)
    results = await asyncio.gather(
        first.submit("g0"), first.submit("g1"), second.submit("b0"), second.submit("b1"), return_exceptions=True
    )
    assert results[:3] == ["G0", "G1", "B0"] and isinstance(results[3], ValueError)
    assert await stored(db) == {"g0", "g1", "b0"}


async def test_a_transaction_body_may_only_await_the_database(db: Database) -> None:
    async def body(conn) -> None:  # type: ignore[no-untyped-def]
        await conn.execute(insert(accounts), [{"email": "x@example.org", "password_hash": "x", "created_at": utcnow()}])
        await asyncio.sleep(0)

    if db.is_sqlite:
        with pytest.raises(RuntimeError, match="awaited something other than conn.execute"):
            await db.transaction(body)
        assert await stored(db) == set()  # rolled back
    else:
        await db.transaction(body)  # an ordinary transaction there
        assert await stored(db) == {"x"}
