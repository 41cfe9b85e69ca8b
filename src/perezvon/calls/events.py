"""A tiny in-process pub/sub for live UIs: the engine publishes every status or attempt change.

    bus = app.state.events
    async for event in bus.subscribe():   # {"requestId": 7, "siteId": 1, "status": "dialing", ...}
        ...

``publish`` never blocks and never fails: a subscriber that does not keep up loses its oldest events
(a live journal only needs the latest state, and it can always re-read the request). Events exist only
in the process that runs the engine; other processes read the journal.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

Event = dict[str, Any]


class EventBus:
    def __init__(self, queue_size: int = 1000) -> None:
        self.queue_size = queue_size
        self._subscribers: set[asyncio.Queue[Event]] = set()

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def publish(self, event: Event) -> None:
        for queue in self._subscribers:
            if queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()  # drop the oldest: a slow reader must not stall the engine
            queue.put_nowait(event)

    def subscribe(self) -> Subscription:
        """Events published from now on (registered at once, before the first ``await``), until closed.

        Use ``async for event in bus.subscribe()``, or ``with bus.subscribe() as events`` and ``events.next()``.
        """
        return Subscription(self)


class Subscription:
    """An async iterator over a bus's events; leaving ``async with`` or calling ``close()`` ends it."""

    def __init__(self, bus: EventBus) -> None:
        self._bus = bus
        self._queue: asyncio.Queue[Event] = asyncio.Queue(bus.queue_size)
        bus._subscribers.add(self._queue)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        if self._queue not in self._bus._subscribers and self._queue.empty():
            raise StopAsyncIteration
        return await self._queue.get()

    async def next(self, timeout: float) -> Event:
        """The next event, or TimeoutError after ``timeout`` seconds."""
        return await asyncio.wait_for(self._queue.get(), timeout)

    def close(self) -> None:
        self._bus._subscribers.discard(self._queue)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
