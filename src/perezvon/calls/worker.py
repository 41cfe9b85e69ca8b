"""The worker loop: claim due requests, run them with bounded concurrency, renew leases, recover requests
whose worker died, stop cleanly (finish the calls in hand)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from ..clock import SYSTEM_CLOCK, Clock
from ..store.due_queue import Claim, DueQueue
from .attempts import AttemptRunner

log = logging.getLogger(__name__)


def new_worker_id() -> str:
    """host:pid:random — unique per process start, so a restarted worker never mistakes old claims for its own."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(3)}"


@dataclass
class Worker:
    """The loop: claim what is due (woken at once by new requests, NOTIFY or a timer), run, renew, recover."""

    engine: AttemptRunner
    queue: DueQueue
    concurrency: int = 50
    lease_s: float = 30.0
    poll_s: float = 5.0  # safety net only: wake-ups are immediate; this catches what nobody announced
    clock: Clock = SYSTEM_CLOCK
    _tasks: dict[int, tuple[asyncio.Task[str], Claim]] = field(default_factory=dict)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _slot: asyncio.Event = field(default_factory=asyncio.Event)
    _stopping: bool = False
    _loops: list[asyncio.Task[None]] = field(default_factory=list)
    _last_renewal: float = 0.0

    def __post_init__(self) -> None:
        self._last_renewal = self.clock.monotonic()

    @property
    def worker_id(self) -> str:
        return self.queue.worker_id

    @property
    def in_hand(self) -> int:
        return len(self._tasks)

    def wake(self, *_: object) -> None:
        """Something may be due (a new request, a NOTIFY): look now. Safe from any callback."""
        self._wake.set()

    # -- loop steps (each a testable method) ------------------------------------------------------------

    async def dispatch_once(self) -> int:
        """Claim as many due requests as there are free slots and start their calls; returns how many."""
        free = self.concurrency - len(self._tasks)
        if free <= 0 or self._stopping:
            return 0
        claims = await self.queue.claim(free)
        for claim in claims:
            task = asyncio.create_task(self.engine.run_attempt(claim), name=f"callback-{claim.request_id}")
            self._tasks[claim.request_id] = (task, claim)
            task.add_done_callback(lambda t, rid=claim.request_id: self._done(rid, t))
        return len(claims)

    def _done(self, request_id: int, task: asyncio.Task[str]) -> None:
        # Only if it is still this task's entry: a redial due at once may already have been claimed
        # again (the wake-up runs before this callback), and that new call must stay tracked.
        entry = self._tasks.get(request_id)
        if entry is not None and entry[0] is task:
            del self._tasks[request_id]
        self._slot.set()

    async def heartbeat_once(self) -> int:
        """Renew our leases; calls whose claim is no longer ours are stopped. Returns how many were lost."""
        if not self._tasks:
            self._last_renewal = self.clock.monotonic()
            return 0
        before = {rid: task for rid, (task, _claim) in self._tasks.items()}
        try:
            kept = await self.queue.renew(list(before))
        except Exception:
            log.warning("could not renew leases", exc_info=True)
            # Past most of the lease without a renewal, another worker may take these over: hang up
            # rather than risk the same request being dialled twice at once.
            if self.clock.monotonic() - self._last_renewal > self.lease_s * 0.8:
                for task, _claim in list(self._tasks.values()):
                    task.cancel()
            return 0
        self._last_renewal = self.clock.monotonic()
        lost = 0
        for rid, task in before.items():
            entry = self._tasks.get(rid)
            # Not renewed because the call just ended (its status changed), or already replaced by a
            # new claim of the same request, is not a lost lease.
            if rid in kept or entry is None or entry[0] is not task or task.done() or rid in self.engine.closing:
                continue
            task.cancel()
            log.warning("request %s: lease lost, hanging up", rid)
            lost += 1
        return lost

    async def recover_once(self) -> int:
        """Close attempts whose worker died (lease expired) and put their requests back or fail them.

        Each row on its own: one that cannot be recovered (a bad row, a failing write) is logged and
        looked at again a lease later, after the others, instead of blocking every recovery behind it.
        """
        recovered = 0
        for row in await self.queue.expired():
            if row["id"] in self._tasks:
                continue  # ours and still running: the heartbeat deals with it
            try:
                if await self.engine.life.recover(row) is not None:
                    recovered += 1
            except Exception:
                log.exception("request %s: recovery failed; trying again in %.0f s", row["id"], self.lease_s)
                await self._postpone(row)
        if recovered:
            self.wake()
        return recovered

    async def _postpone(self, row: dict[str, Any]) -> None:
        with contextlib.suppress(Exception):
            await self.engine.life.postpone_recovery(row, self.clock.now() + timedelta(seconds=self.lease_s))

    # -- loops ------------------------------------------------------------------------------------------

    def start(self) -> None:
        self._loops = [
            asyncio.create_task(self._dispatch_loop(), name="callback-dispatch"),
            asyncio.create_task(self._every(self.lease_s / 3, self.heartbeat_once), name="callback-heartbeat"),
            asyncio.create_task(
                self._every(min(self.poll_s, self.lease_s / 2), self.recover_once), name="callback-recovery"
            ),
        ]

    async def _dispatch_loop(self) -> None:
        while not self._stopping:
            self._wake.clear()
            self._slot.clear()
            try:
                claimed = await self.dispatch_once()
                if self._stopping:
                    break
                if len(self._tasks) >= self.concurrency:
                    # Full: the next thing worth doing is when a call ends.
                    await self._wait(self._slot, None)
                    continue
                if claimed:
                    continue  # there may be more due right now
                due = await self.queue.next_due()
            except Exception:
                log.exception("dispatch step failed; retrying in a second")
                await self._wait(self._wake, 1.0)
                continue
            delay = self.poll_s
            if due is not None:
                # Nothing was claimable but something is due: another worker holds the row lock for a
                # moment, so look again soon rather than spin.
                delay = min(delay, max(0.02, (due - self.clock.now()).total_seconds()))
            await self._wait(self._wake, delay)

    @staticmethod
    async def _wait(event: asyncio.Event, timeout: float | None) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)

    async def _every(self, interval: float, step: Callable[[], Awaitable[int]]) -> None:
        while not self._stopping:
            try:
                await step()
            except Exception:
                log.exception("%s failed", getattr(step, "__name__", "step"))
            await self.clock.sleep(interval)

    async def stop(self, grace: float | None = None) -> None:
        """Stop claiming; let the calls in hand finish (after ``grace`` seconds they are interrupted)."""
        self._stopping = True
        self._wake.set()
        self._slot.set()
        dispatch = self._loops[0] if self._loops else None
        if dispatch is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await dispatch
        pending = [task for task, _claim in self._tasks.values()]
        if pending:
            log.info("finishing %d call(s) in hand", len(pending))
            _done, still = await asyncio.wait(pending, timeout=grace)
            for task in still:
                task.cancel()  # run_attempt records them as interrupted and puts them back in the queue
            if still:
                await asyncio.wait(still)
        for loop in self._loops[1:]:
            loop.cancel()
        for loop in self._loops[1:]:
            with contextlib.suppress(asyncio.CancelledError):
                await loop

    def interrupt_all(self) -> None:
        """Hang up every call in hand now (a second SIGTERM): each is recorded and re-queued."""
        for task, _claim in list(self._tasks.values()):
            task.cancel()
