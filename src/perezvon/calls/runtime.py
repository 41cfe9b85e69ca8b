"""Running the callback worker: inside the API process (``perezvon serve``) or alone (``perezvon worker``).

Both build the same pieces — dialer, engine, worker loop, webhook sender, event bus — and wake the
worker at once when a request is accepted: in-process through ``Intake.on_created``, across processes
through PostgreSQL ``LISTEN`` (migration 0002 makes every pending request ``NOTIFY``). A timer to the
next due request and a slow safety poll cover the rest (SQLite has no NOTIFY: a separate worker
process on SQLite notices new requests within ``POLL_S``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..settings import Settings
from ..store.db import Database
from ..store.snapshots import SnapshotCache
from .dialer.base import Dialer
from .engine import CallbackEngine, Speaker, Worker, new_worker_id, silent_speaker
from .events import EventBus
from .queue import DUE_CHANNEL, WEBHOOK_CHANNEL, DueQueue, asyncpg_dsn
from .webhooks import WebhookSender

log = logging.getLogger(__name__)

POLL_S = 2.0
STOP_GRACE_S = 60.0  # serve's shutdown waits this long for calls in hand, then interrupts them


def make_dialer(settings: Settings) -> tuple[Dialer, Speaker]:
    """The configured dialer and how announcements are voiced on it."""
    if settings.dialer == "sip":
        from .lines import sip_dialer_from_settings  # imported only when used: the SIP stack is big

        return sip_dialer_from_settings(settings), _rendered_speaker()
    from .dialer.simulated import SimulatedDialer

    # The simulated line hears nothing: silence of the announcement's length keeps the timing honest
    # without running espeak-ng for every demo or test call.
    return SimulatedDialer(ring_s=settings.sim_ring_s, talk_s=settings.sim_talk_s), silent_speaker


def _rendered_speaker() -> Speaker:
    async def speak(text: str, language: str) -> Any:
        from .engine import silence_for

        try:
            from .speech import render_speech

            return await render_speech(text, language)
        except Exception:  # no espeak-ng, a failed render: the call goes on without the announcement
            log.warning("speech rendering failed; the operator hears silence instead", exc_info=True)
            return silence_for(text)

    return speak


class CreatedWebhooks:
    """Queues ``request.created`` webhooks after accepted requests' commits (an Intake hook).

    Used by the worker runtime and, in API-only processes, on its own: the deliveries it writes are
    sent by whichever worker runs (woken by NOTIFY on PostgreSQL, by its poll on SQLite). Requests
    accepted in one burst are looked at together: one read finds their sites, and only sites with
    webhook URLs (per the cached snapshot) cost a write.
    """

    def __init__(self, db: Database, snapshots: SnapshotCache, on_queued: Callable[[], None] | None = None) -> None:
        self.db = db
        self.snapshots = snapshots
        self.on_queued = on_queued or (lambda: None)
        self._pending: list[int] = []
        self._site_of: dict[int, int] = {}  # what the intake told us, so most bursts need no read
        self._flusher: asyncio.Task[None] | None = None

    def __call__(self, request_id: int, due_at: datetime, site_id: int | None = None) -> None:
        self._pending.append(request_id)
        if site_id is not None:
            self._site_of[request_id] = site_id
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        await asyncio.sleep(0)  # let the rest of this burst's commits add their ids
        while self._pending:
            ids, self._pending = self._pending, []
            try:
                await self.queue(ids)
            except Exception:
                log.exception("could not queue request.created webhooks for requests %s", ids[:20])

    async def queue(self, request_ids: list[int]) -> int:
        from sqlalchemy import select

        from ..clock import utcnow
        from ..shapes.resources import request_resource
        from ..store.tables import callback_requests, sites
        from .webhooks import CREATED, enqueue

        site_of = {rid: self._site_of.pop(rid) for rid in request_ids if rid in self._site_of}
        unknown = [rid for rid in request_ids if rid not in site_of]
        if unknown:
            async with self.db.read() as conn:
                site_of.update((await conn.execute(select(callback_requests.c.id, callback_requests.c.site_id)
                                                   .where(callback_requests.c.id.in_(unknown)))).all())
        wanted = []
        for site_id in set(site_of.values()):
            snapshot = await self.snapshots.by_id(site_id)
            if snapshot is not None and snapshot.site["webhook_urls"]:
                wanted.append(site_id)
        ids = [rid for rid in request_ids if site_of.get(rid) in wanted]
        if not ids:
            return 0
        queued = 0
        async with self.db.write() as conn:
            rows = (await conn.execute(select(callback_requests).where(callback_requests.c.id.in_(ids))
                                       .order_by(callback_requests.c.id))).mappings().all()
            site_rows = {r["id"]: r for r in (await conn.execute(
                select(sites).where(sites.c.id.in_(wanted)))).mappings()}
            now = utcnow()
            for row in rows:
                site = site_rows.get(row["site_id"])
                if site is not None:
                    queued += await enqueue(conn, site, CREATED, request_resource(row, []), now)
        if queued:
            self.on_queued()
        return queued

    async def stop(self) -> None:
        if self._flusher is not None and not self._flusher.done():
            await asyncio.wait([self._flusher], timeout=5)


@dataclass
class Runtime:
    """The worker and its helpers, started together and stopped together."""

    db: Database
    snapshots: SnapshotCache
    settings: Settings
    bus: EventBus = field(default_factory=EventBus)
    dialer: Dialer | None = None
    speaker: Speaker | None = None
    worker: Worker | None = None
    webhooks: WebhookSender | None = None
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    _listener: Any = None
    _created: CreatedWebhooks | None = None
    listening: asyncio.Event = field(default_factory=asyncio.Event)  # LISTEN is up (PostgreSQL)

    async def start(self) -> Runtime:
        if self.dialer is None:
            self.dialer, self.speaker = make_dialer(self.settings)
        await self.dialer.start()
        self.webhooks = self.webhooks or WebhookSender(self.db, poll_s=POLL_S)
        engine = CallbackEngine(
            self.db,
            self.snapshots,
            self.dialer,
            bus=self.bus,
            speaker=self.speaker or silent_speaker,
            recordings_dir=self.settings.recordings_dir,
            on_webhooks=self.webhooks.wake,
        )
        queue = DueQueue(self.db, new_worker_id(), self.settings.worker_lease_s)
        self.worker = Worker(engine, queue, concurrency=self.settings.worker_concurrency,
                             lease_s=self.settings.worker_lease_s, poll_s=POLL_S)
        self.worker.start()
        self._tasks.append(asyncio.create_task(self.webhooks.run(), name="webhooks"))
        if not self.db.is_sqlite:
            self._tasks.append(asyncio.create_task(self._listen(), name="callback-listen"))
            # "Started" should mean "will hear about new requests": give LISTEN a moment to connect
            # (if it cannot, the safety poll still works and the listener keeps retrying).
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.listening.wait(), 5)
        log.info("callback worker %s started (%s line, %d calls at once)", queue.worker_id,
                 self.settings.dialer, self.settings.worker_concurrency)
        return self

    def on_created(self, request_id: int, due_at: datetime, site_id: int | None = None) -> None:
        """Intake hook: wake the worker, and queue ``request.created`` webhooks (after the commit)."""
        if self.worker is not None:
            self.worker.wake()
        if self._created is None:
            self._created = CreatedWebhooks(self.db, self.snapshots, self.webhooks.wake if self.webhooks else None)
        self._created(request_id, due_at, site_id)

    async def _listen(self) -> None:
        """LISTEN for new due requests and webhook deliveries written by other processes; reconnect on loss."""
        import asyncpg

        delay = 1.0
        while True:
            conn = None
            try:
                conn = await asyncpg.connect(asyncpg_dsn(self.settings.database_url))
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _c, lost=lost: lost.set())
                await conn.add_listener(DUE_CHANNEL, lambda *_: self.worker and self.worker.wake())
                await conn.add_listener(WEBHOOK_CHANNEL, lambda *_: self.webhooks and self.webhooks.wake())
                self._listener = conn
                self.listening.set()
                delay = 1.0
                if self.worker is not None:
                    self.worker.wake()  # anything announced while we were not listening
                await lost.wait()
                self.listening.clear()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("LISTEN connection failed (%s); the safety poll covers it, retrying in %.0f s",
                            exc, delay)
            finally:
                if conn is not None and not conn.is_closed():
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(conn.close(), 2)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)

    async def stop(self, grace: float | None = STOP_GRACE_S) -> None:
        if self.worker is not None:
            await self.worker.stop(grace)
        if self.webhooks is not None:
            await self.webhooks.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._created is not None:
            await self._created.stop()
        if self.webhooks is not None:
            await self.webhooks.close()
        if self.dialer is not None:
            await self.dialer.close()


class _InProcess:
    def __init__(self, runtime: Runtime, intake: Any) -> None:
        self.runtime = runtime
        self.intake = intake

    async def stop(self) -> None:
        with contextlib.suppress(ValueError):
            self.intake.on_created.remove(self.runtime.on_created)
        await self.runtime.stop()


async def start_in_process(state: Any) -> _InProcess:
    """``perezvon serve``: the worker in the API process; ``state.events`` is the live event bus."""
    runtime = Runtime(state.db, state.snapshots, state.settings)
    state.events = runtime.bus
    await runtime.start()
    state.worker = runtime
    state.intake.on_created.append(runtime.on_created)
    return _InProcess(runtime, state.intake)


class _ApiOnly:
    def __init__(self, hook: CreatedWebhooks, intake: Any) -> None:
        self.hook = hook
        self.intake = intake

    async def stop(self) -> None:
        with contextlib.suppress(ValueError):
            self.intake.on_created.remove(self.hook)
        await self.hook.stop()


def attach_api_hooks(state: Any) -> _ApiOnly:
    """An API-only process (``PEREZVON_RUN_WORKER=false``): still queue ``request.created`` webhooks."""
    hook = CreatedWebhooks(state.db, state.snapshots)
    state.intake.on_created.append(hook)
    # Live pages may subscribe here too; without an engine in this process only admin actions
    # (cancel) are published on it.
    state.events = EventBus()
    return _ApiOnly(hook, state.intake)


async def run_standalone(settings: Settings) -> None:
    """``perezvon worker``: run until SIGTERM/SIGINT, then finish the calls in hand and exit.

    A second signal stops waiting: the calls in hand are hung up, recorded as ``interrupted`` and
    re-queued, so nothing is lost either way.
    """
    db = Database(settings.database_url)
    runtime = Runtime(db, SnapshotCache(db), settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = 0

    def on_signal() -> None:
        nonlocal signals
        signals += 1
        if signals == 1:
            log.info("stopping: finishing the calls in hand (signal again to hang them up)")
            stop.set()
        elif runtime.worker is not None:
            runtime.worker.interrupt_all()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    try:
        await runtime.start()
        await stop.wait()
        await runtime.stop(grace=None)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await db.dispose()
    log.info("worker stopped")
