"""Running the callback worker: inside the API process (``perezvon serve``) or alone (``perezvon worker``).

Both build the same pieces — dialer, attempt runner, worker loop, webhook sender, event bus — and plug
their wake-ups into the process's ``Notifier`` (``services/requests.py``): a request accepted in this
process wakes the worker at once, its ``request.created`` rows (written with it) wake the sender.
Across processes PostgreSQL ``LISTEN`` does it (migration 0002 makes every pending request and every
new delivery ``NOTIFY``). A timer to the next due request and a slow safety poll cover the rest (SQLite
has no NOTIFY: a separate worker process on SQLite notices new requests within ``POLL_S``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..services.requests import RequestLife, Wakeups
from ..settings import Settings
from ..store.db import Database
from ..store.due_queue import DUE_CHANNEL, WEBHOOK_CHANNEL, DueQueue, asyncpg_dsn
from ..store.snapshots import SnapshotCache
from .attempts import AttemptRunner
from .dialer.base import Dialer
from .events import EventBus
from .speech import Speaker, rendered_speaker, silent_speaker
from .webhooks import Outbound, WebhookSender
from .worker import Worker, new_worker_id

log = logging.getLogger(__name__)

POLL_S = 2.0
STOP_GRACE_S = 60.0  # serve's shutdown waits this long for calls in hand, then interrupts them


def make_dialer(settings: Settings) -> tuple[Dialer, Speaker]:
    """The configured dialer and how announcements are voiced on it."""
    if settings.dialer == "sip":
        from .lines import sip_dialer_from_settings  # imported only when used: the SIP stack is big

        return sip_dialer_from_settings(settings), rendered_speaker()
    from .dialer.simulated import SimulatedDialer

    # The simulated line hears nothing: silence of the announcement's length keeps the timing honest
    # without running espeak-ng for every demo or test call.
    return SimulatedDialer(ring_s=settings.sim_ring_s, talk_s=settings.sim_talk_s), silent_speaker


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
    # The process's life-cycle owner (the app's, in ``serve``); its notifier must be a Wakeups.
    life: RequestLife | None = None
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    _listener: Any = None
    _unplug: Callable[[], None] | None = None
    listening: asyncio.Event = field(default_factory=asyncio.Event)  # LISTEN is up (PostgreSQL)

    async def start(self) -> Runtime:
        if self.dialer is None:
            self.dialer, self.speaker = make_dialer(self.settings)
        await self.dialer.start()
        self.webhooks = self.webhooks or WebhookSender(
            self.db, Outbound(allow_private=self.settings.webhook_allow_private), poll_s=POLL_S
        )
        self.life = self.life or RequestLife(self.db, self.snapshots, Wakeups())
        engine = AttemptRunner(
            self.life,
            self.dialer,
            bus=self.bus,
            speaker=self.speaker or silent_speaker,
            recordings_dir=self.settings.recordings_dir,
            write_retry_s=self.settings.worker_lease_s,
        )
        queue = DueQueue(self.db, new_worker_id(), self.settings.worker_lease_s)
        self.worker = Worker(
            engine,
            queue,
            concurrency=self.settings.worker_concurrency,
            lease_s=self.settings.worker_lease_s,
            poll_s=POLL_S,
        )
        wakeups = self.life.notifier
        assert isinstance(wakeups, Wakeups), "the runtime plugs its wake-ups into a Wakeups notifier"
        self._unplug = wakeups.plug(worker=self.worker.wake, webhooks=self.webhooks.wake, events=self.bus.publish)
        self.worker.start()
        self._tasks.append(asyncio.create_task(self.webhooks.run(), name="webhooks"))
        if not self.db.is_sqlite:
            self._tasks.append(asyncio.create_task(self._listen(), name="callback-listen"))
            # "Started" should mean "will hear about new requests": give LISTEN a moment to connect
            # (if it cannot, the safety poll still works and the listener keeps retrying).
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.listening.wait(), 5)
        log.info(
            "callback worker %s started (%s line, %d calls at once)",
            queue.worker_id,
            self.settings.dialer,
            self.settings.worker_concurrency,
        )
        return self

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
                log.warning("LISTEN connection failed (%s); the safety poll covers it, retrying in %.0f s", exc, delay)
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
        if self._unplug is not None:
            self._unplug()
        if self.webhooks is not None:
            await self.webhooks.close()
        if self.dialer is not None:
            await self.dialer.close()


async def start_in_process(state: Any) -> Runtime:
    """``perezvon serve``: the worker in the API process; ``state.events`` is the live event bus."""
    runtime = Runtime(state.db, state.snapshots, state.settings, life=state.requests)
    state.events = runtime.bus
    await runtime.start()
    state.worker = runtime  # the cabinet pushes live statuses only where the worker runs (pages_journal)
    return runtime


class _ApiOnly:
    def __init__(self, unplug: Callable[[], None]) -> None:
        self.unplug = unplug

    async def stop(self) -> None:
        self.unplug()


def attach_api_hooks(state: Any) -> _ApiOnly:
    """An API-only process (``PEREZVON_RUN_WORKER=false``): the workers elsewhere send the webhook rows
    it writes (woken by NOTIFY on PostgreSQL, by their poll on SQLite); live pages may still subscribe
    here, to the admin actions made in this process."""
    state.events = EventBus()
    return _ApiOnly(state.requests.notifier.plug(events=state.events.publish))


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
