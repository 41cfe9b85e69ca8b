"""Group commit: the writes of many concurrent callers applied in shared transactions, one commit for many.

Every commit is a round of BEGIN/COMMIT/fsync and, through the async drivers, several thread or network
hops; a transaction per write caps a process at a few hundred writes a second (and SQLite, with its
single writer, queues every caller behind the write lock). Items submitted while one transaction runs
go together into the next, where ``apply`` may handle them with a few set-wise statements.

Durability is unchanged: a caller's ``submit`` returns only after the transaction holding its item has
committed. If a batch fails, each of its items is retried in a transaction of its own, so one bad item
fails only its own caller. A caller that went away before its batch began gets nothing written, as it
would not have reached its own transaction without batching either.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from .db import Database

T = TypeVar("T")
R = TypeVar("R")

Apply = Callable[[Any, list[T]], Awaitable[list[R]]]


class GroupCommit(Generic[T, R]):
    """``await submit(item)`` → ``apply(conn, [item, ...])``'s result for that item, once committed."""

    def __init__(self, db: Database, apply: Apply[T, R], max_batch: int = 256) -> None:
        self.db = db
        self.apply = apply
        self.max_batch = max_batch
        self._queue: list[tuple[T, asyncio.Future[R]]] = []
        self._flusher: asyncio.Task[None] | None = None

    @property
    def waiting(self) -> int:
        """Items submitted and not yet in a transaction."""
        return len(self._queue)

    async def submit(self, item: T) -> R:
        loop = asyncio.get_running_loop()
        if self._flusher is not None and self._flusher.get_loop() is not loop:
            # Left over from an event loop that is gone (tests run one per test): it will never run again.
            self._flusher = None
            self._queue = [(i, f) for i, f in self._queue if f.get_loop() is loop]
        future: asyncio.Future[R] = loop.create_future()
        self._queue.append((item, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = loop.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        batch: list[tuple[T, asyncio.Future[R]]] = []
        try:
            while self._queue:
                batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
                batch = [(item, future) for item, future in batch if not future.done()]
                if batch:
                    await self._commit(batch)
                batch = []
        finally:
            self._flusher = None
            # Only on cancellation (shutdown) can callers be left waiting: fail them rather than hang them.
            for _item, future in batch + self._queue:
                if not future.done():
                    future.set_exception(RuntimeError("not written: the server is stopping"))
            self._queue = []

    async def _commit(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            # One trip to SQLite's writer thread for the whole transaction (Database.transaction).
            items = [item for item, _future in batch]
            results = await self.db.transaction(lambda conn: self.apply(conn, items))
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0][1], error=exc)
                return
            for item, future in batch:
                await self._commit([(item, future)])
            return
        for (_item, future), result in zip(batch, results, strict=True):
            _settle(future, result)


def _settle(future: asyncio.Future[Any], result: Any = None, *, error: BaseException | None = None) -> None:
    if future.done():  # its caller gave up (cancelled) meanwhile
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
