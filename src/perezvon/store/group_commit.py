"""Group commit: the writes of many concurrent callers applied in shared transactions, one commit for many.

Every commit is a round of BEGIN/COMMIT/fsync and, through the async drivers, several thread or network
hops; a transaction per write caps a process at a few hundred writes a second (and SQLite, with its
single writer, queues every caller behind the write lock). Items submitted while one transaction runs
go together into the next, where ``apply`` may handle them with a few set-wise statements.

Durability is unchanged: a caller's ``submit`` returns only after the transaction holding its item has
committed. If a batch fails, each of its items is retried in a transaction of its own, so one bad item
fails only its own caller. A caller that went away before its batch began gets nothing written, as it
would not have reached its own transaction without batching either.

On SQLite every group commit of one database flushes through one *lane*: whatever waits in any of them
(accepted requests, the worker's claims, closing attempts, live progress) goes into the same transaction,
so the process pays one BEGIN IMMEDIATE / COMMIT / fsync for all of it instead of one per kind of write
queued behind SQLite's single write lock. If that shared transaction fails, each group commit's batch is
retried on its own (and then item by item, as above). On PostgreSQL each group commit flushes alone:
writers do not queue there, and keeping the kinds apart keeps their row locks apart.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from .db import Database

T = TypeVar("T")
R = TypeVar("R")

Apply = Callable[[Any, list[T]], Awaitable[list[R]]]
Batch = list[tuple[Any, "asyncio.Future[Any]"]]


class GroupCommit(Generic[T, R]):
    """``await submit(item)`` → ``apply(conn, [item, ...])``'s result for that item, once committed.

    ``apply`` may only ``await conn.execute(...)`` (it runs through ``Database.transaction``)."""

    def __init__(self, db: Database, apply: Apply[T, R], max_batch: int = 256) -> None:
        self.db = db
        self.apply = apply
        self.max_batch = max_batch
        self._queue: list[tuple[T, asyncio.Future[R]]] = []
        self._lane = _lane_of(db) if db.is_sqlite else _Lane(db)

    @property
    def waiting(self) -> int:
        """Items submitted and not yet in a transaction."""
        return len(self._queue)

    async def submit(self, item: T) -> R:
        loop = asyncio.get_running_loop()
        if self._queue and self._queue[0][1].get_loop() is not loop:
            # Left over from an event loop that is gone (tests run one per test): never to be answered.
            self._queue = [(i, f) for i, f in self._queue if f.get_loop() is loop]
        future: asyncio.Future[R] = loop.create_future()
        self._queue.append((item, future))
        self._lane.kick(self, loop)
        return await future

    def _take(self) -> Batch:
        """The next batch: up to ``max_batch`` items whose callers are still waiting."""
        batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
        return [(item, future) for item, future in batch if not future.done()]

    async def _commit(self, batch: Batch) -> None:
        """``batch`` in a transaction of its own; if it fails, each item in one of its own."""
        try:
            results = await self.db.transaction(lambda conn: self.apply(conn, [item for item, _future in batch]))
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0][1], error=exc)
                return
            for one in batch:
                await self._commit([one])
            return
        for (_item, future), result in zip(batch, results, strict=True):
            _settle(future, result)


class _Lane:
    """Flushes the group commits that have items waiting, all of them in one transaction per round."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._ready: dict[GroupCommit[Any, Any], None] = {}  # an ordered set: first come, first applied
        self._flusher: asyncio.Task[None] | None = None

    def kick(self, commit: GroupCommit[Any, Any], loop: asyncio.AbstractEventLoop) -> None:
        self._ready[commit] = None
        if self._flusher is not None and (self._flusher.done() or self._flusher.get_loop() is not loop):
            self._flusher = None  # finished, or left over from an event loop that is gone
        if self._flusher is None:
            self._flusher = loop.create_task(self._flush())

    async def _flush(self) -> None:
        batches: list[tuple[GroupCommit[Any, Any], Batch]] = []
        try:
            while self._ready:
                commits, self._ready = list(self._ready), {}
                batches = [(commit, commit._take()) for commit in commits]
                for commit, _batch in batches:
                    if commit._queue:
                        self._ready[commit] = None  # more than one batch waits: again next round
                batches = [(commit, batch) for commit, batch in batches if batch]
                if len(batches) == 1:
                    await batches[0][0]._commit(batches[0][1])
                elif batches:
                    await self._commit_together(batches)
                batches = []
        finally:
            self._flusher = None
            # Only on cancellation (shutdown) can callers be left waiting: fail them rather than hang them.
            waiting = [f for _c, batch in batches for _i, f in batch]
            waiting += [f for commit in self._ready for _i, f in commit._queue]
            for future in waiting:
                _settle(future, error=RuntimeError("not written: the server is stopping"))
            for commit in self._ready:
                commit._queue = []
            self._ready = {}

    async def _commit_together(self, batches: list[tuple[GroupCommit[Any, Any], Batch]]) -> None:
        async def apply_all(conn: Any) -> list[list[Any]]:
            return [await commit.apply(conn, [item for item, _f in batch]) for commit, batch in batches]

        try:
            results = await self.db.transaction(apply_all)
        except Exception:
            for commit, batch in batches:  # rolled back whole: each kind again on its own
                await commit._commit(batch)
            return
        for (_commit, batch), batch_results in zip(batches, results, strict=True):
            for (_item, future), result in zip(batch, batch_results, strict=True):
                _settle(future, result)


_lanes: weakref.WeakKeyDictionary[Database, _Lane] = weakref.WeakKeyDictionary()


def _lane_of(db: Database) -> _Lane:
    lane = _lanes.get(db)
    if lane is None:
        lane = _lanes[db] = _Lane(db)
    return lane


def _settle(future: asyncio.Future[Any], result: Any = None, *, error: BaseException | None = None) -> None:
    if future.done():  # its caller gave up (cancelled) meanwhile
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
