"""The callback engine: performs the state machine's actions on a dialer and records them in the journal.

``CallbackEngine.run_attempt`` makes one claimed attempt (domain/callback.py decides, this module only
does I/O); ``finish`` closes it in one transaction — attempt row, request status or redial, minutes
spent, ``request.finished`` webhooks — so nothing is half-recorded. ``Worker`` is the loop: claim due
requests, run them with bounded concurrency, renew leases, recover requests whose worker died, stop
cleanly (finish the calls in hand).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Generic, TypeVar

from sqlalchemy import bindparam, select, update

from ..clock import utcnow
from ..domain import callback as cb
from ..domain.announcement import announcement_text
from ..domain.billing import billed_minutes, billed_seconds, spend
from ..domain.redial import Decision, RedialPolicy, after_attempt, bound_by_schedule
from ..domain.schedule import WeeklySchedule
from ..shapes.resources import request_resource
from ..store.db import Database
from ..store.snapshots import SnapshotCache
from ..store.tables import call_attempts, callback_requests, sites
from . import webhooks
from .dialer.base import Audio, CallLeg, Dialer, RingResult, Trunk
from .events import EventBus
from .queue import Claim, DueQueue

log = logging.getLogger(__name__)

CONFIRM_TIMEOUT_S = 10.0  # how long the operator has to press 1
PROGRESS_DELAY_S = 0.2  # live journal updates lag at most this much behind the call
SPEECH_CHARS_PER_S = 14.0  # espeak-ng at 150 wpm: the simulated line gets silence this long
_a = call_attempts.c
_r = callback_requests.c


def new_worker_id() -> str:
    """host:pid:random — unique per process start, so a restarted worker never mistakes old claims for its own."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(3)}"


def trunk_of_site(site: dict[str, Any] | None) -> Trunk | None:
    """A site's own trunk (camelCase JSON in ``sites.trunk``); None: the dialer's default."""
    raw = (site or {}).get("trunk")
    if not raw or not raw.get("host"):
        return None
    return Trunk(
        host=raw["host"],
        port=int(raw.get("port") or 5060),
        transport=raw.get("transport") or "udp",
        username=raw.get("username") or "",
        password=raw.get("password") or "",
        caller=raw.get("caller") or "",
        number_format=raw.get("numberFormat") or "{number}",
    )


_schedules: dict[int, tuple[Any, WeeklySchedule]] = {}


def schedule_of(widget: dict[str, Any]) -> WeeklySchedule:
    """The widget's schedule, parsed once per snapshot of the widget (168 cells: not per call)."""
    cached = _schedules.get(widget["id"])
    # Identity, not equality: a reloaded snapshot brings new objects, and the cache keeps the old
    # one alive, so an id() can never be reused under us.
    if cached is not None and cached[0] is widget["schedule_hours"] and \
            cached[1].utc_timezone == widget["schedule_timezone"]:
        return cached[1]
    schedule = WeeklySchedule.build(widget["schedule_timezone"], (tuple(c) for c in widget["schedule_hours"]))
    if len(_schedules) > 10_000:
        _schedules.clear()
    _schedules[widget["id"]] = (widget["schedule_hours"], schedule)
    return schedule


def _ring(result: RingResult) -> cb.Ring:
    return cb.Ring(result.value)


@dataclass
class AttemptRecord:
    """What one attempt saw, written when it ends (and partly while it runs, for the live journal)."""

    operator_phone: str | None = None
    operator_answered_at: datetime | None = None
    client_answered_at: datetime | None = None
    bridged_s: float = 0.0
    recording_path: str | None = None
    # Live journal updates not yet written, and the timer that will write them (see _progress).
    unsaved: dict[str, Any] = field(default_factory=dict)
    timer: asyncio.TimerHandle | None = None
    closed: bool = False


Speaker = Callable[[str, str], Awaitable[Audio]]


def silence_for(text: str) -> Audio:
    """Silence as long as reading ``text`` would take: the simulated line needs timing, not sound."""
    seconds = len(text) / SPEECH_CHARS_PER_S
    return Audio(b"\0\0" * int(seconds * 8000))


async def silent_speaker(text: str, language: str) -> Audio:
    return silence_for(text)


T = TypeVar("T")
R = TypeVar("R")


class GroupWriter(Generic[T, R]):
    """Applies the writes of many concurrent calls in shared transactions: one commit for many.

    Every commit is a round of BEGIN/COMMIT/fsync and, through the async drivers, several thread or
    network hops; a transaction per call event caps a worker at a few hundred calls a second. Items
    submitted while one transaction runs go together into the next, where ``apply`` may handle them
    with a few set-wise statements. If a batch fails, each item is retried alone, so one bad item
    fails only its own caller.
    """

    def __init__(self, db: Database, apply: Callable[[Any, list[T]], Awaitable[list[R]]],
                 max_batch: int = 500) -> None:
        self.db = db
        self.apply = apply
        self.max_batch = max_batch
        self._queue: list[tuple[T, asyncio.Future[R]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
            try:
                async with self.db.write() as conn:
                    results = await self.apply(conn, [item for item, _future in batch])
            except Exception:
                if len(batch) == 1:
                    results = None
                else:
                    for item, future in batch:
                        await self._alone(item, future)
                    continue
            if results is None:
                await self._alone(*batch[0])
                continue
            for (_item, future), result in zip(batch, results, strict=True):
                if not future.done():  # its caller may have given up (cancelled) meanwhile
                    future.set_result(result)

    async def _alone(self, item: T, future: asyncio.Future[R]) -> None:
        try:
            async with self.db.write() as conn:
                [result] = await self.apply(conn, [item])
        except Exception as exc:
            if not future.done():
                future.set_exception(exc)
        else:
            if not future.done():
                future.set_result(result)


async def _run_each(conn: Any, ops: list[Any]) -> list[Any]:
    return [await op(conn) for op in ops]


@dataclass
class Closing:
    """One attempt's final write, as the closer batches them."""

    claim: Claim
    outcome: str
    record: AttemptRecord
    decision: Decision
    seconds: int
    minutes: int
    wants_webhooks: bool
    now: datetime

    @property
    def final(self) -> bool:
        return self.decision.status in cb.FINAL_STATUSES


@dataclass
class Closed:
    kept: bool  # False: the claim was lost (another worker recovered the request first)
    charged: bool = False
    queued: int = 0


class CallbackEngine:
    def __init__(
        self,
        db: Database,
        snapshots: SnapshotCache,
        dialer: Dialer,
        *,
        bus: EventBus | None = None,
        speaker: Speaker = silent_speaker,
        recordings_dir: str = "",
        on_webhooks: Callable[[], None] | None = None,
    ) -> None:
        self.db = db
        self.snapshots = snapshots
        self.dialer = dialer
        self.bus = bus or EventBus()
        self.speaker = speaker
        self.recordings_dir = Path(recordings_dir) if recordings_dir else None
        self.on_webhooks = on_webhooks or (lambda: None)
        self.on_due: Callable[[], None] = lambda: None  # a request became due now (set by the Worker)
        self.writer: GroupWriter[Any, Any] = GroupWriter(db, _run_each)
        self.closer: GroupWriter[Closing, Closed] = GroupWriter(db, self._close_batch)
        self.closing: set[int] = set()  # requests whose attempt is being recorded (not "lost" meanwhile)
        self._site_locks: dict[int, asyncio.Lock] = {}
        self._background: set[asyncio.Task[None]] = set()

    # -- context ------------------------------------------------------------------------------------------

    async def _context(self, request: dict[str, Any]) -> tuple[dict | None, dict | None, dict | None]:
        """The site, widget and unit of a request, from the in-memory snapshot (fresh within seconds)."""
        # One load per site at a time: when the cached snapshot expires, fifty calls must not all
        # reload it at once (each waiting for a pooled connection).
        lock = self._site_locks.setdefault(request["site_id"], asyncio.Lock())
        async with lock:
            snapshot = await self.snapshots.by_id(request["site_id"])
        if snapshot is None:
            return None, None, None
        widget = next((w for w in snapshot.widgets.values() if w["id"] == request["widget_id"]), None)
        unit = snapshot.units.get(request["unit_id"]) if request["unit_id"] is not None else None
        return snapshot.site, widget, unit

    @staticmethod
    def plan_for(widget: dict[str, Any] | None, unit: dict[str, Any] | None) -> cb.AttemptPlan:
        settings = (widget or {}).get("callback") or {}
        # A chosen department is called on its own phone; otherwise the widget's phones, in order.
        phones = (unit["phone"],) if unit is not None else tuple((widget or {}).get("operator_phones") or ())
        return cb.AttemptPlan(
            operator_phones=phones,
            announcement=bool(settings.get("announcement", True)),
            operator_confirm=bool(settings.get("operatorConfirm", False)),
        )

    # -- one attempt ----------------------------------------------------------------------------------------

    async def run_attempt(self, claim: Claim) -> str:
        """Make the claimed attempt and record it; returns the outcome. Cancelling it records ``interrupted``."""
        request = claim.request
        self._publish(request, cb.DIALING, claim.attempt_number)
        record = AttemptRecord()
        state: cb.AttemptState | None = None
        op_leg: CallLeg | None = None
        client_leg: CallLeg | None = None
        site = widget = unit = None
        try:
            site, widget, unit = await self._context(request)
            settings = (widget or {}).get("callback") or {}
            ring_timeout = float(settings.get("ringTimeoutSeconds", 30))
            language = settings.get("language", "ru")
            trunk = trunk_of_site(site)
            state, action = cb.start(self.plan_for(widget, unit))
            while not isinstance(action, cb.Finish):
                event: cb.Event
                if isinstance(action, cb.RingOperator):
                    # The journal shows the phone being tried; an earlier phone's answer (then declined)
                    # must not look like this one's.
                    record.operator_phone, record.operator_answered_at = action.phone, None
                    op_leg = self.dialer.leg(action.phone, trunk)
                    result = await op_leg.ring(ring_timeout)
                    if result is RingResult.ANSWERED:
                        record.operator_answered_at = op_leg.answered_at or utcnow()
                        self._progress(claim, record, operator_phone=action.phone,
                                             operator_answered_at=record.operator_answered_at)
                    event = cb.OperatorRang(_ring(result))
                elif isinstance(action, cb.Announce):
                    assert op_leg is not None
                    text = self._announcement(request, site, unit, language, action.confirm)
                    await op_leg.play(await self.speaker(text, language))
                    event = cb.Announced(operator_left=op_leg.is_ended)
                elif isinstance(action, cb.AwaitDigit):
                    assert op_leg is not None
                    event = cb.DigitRead(await op_leg.read_digit(CONFIRM_TIMEOUT_S))
                elif isinstance(action, cb.DropOperator):
                    assert op_leg is not None
                    await op_leg.hangup()
                    event = cb.Dropped()
                elif isinstance(action, cb.RingClient):
                    assert op_leg is not None
                    client_leg = self.dialer.leg(request["phone"], trunk)
                    result = await client_leg.ring(ring_timeout)
                    if result is RingResult.ANSWERED:
                        record.client_answered_at = client_leg.answered_at or utcnow()
                        self._progress(claim, record, client_answered_at=record.client_answered_at)
                    event = cb.ClientRang(_ring(result), operator_left=op_leg.is_ended)
                elif isinstance(action, cb.Bridge):
                    assert op_leg is not None and client_leg is not None
                    record_to = self._recording_path(site, claim)
                    began = time.monotonic()
                    await self.dialer.bridge(op_leg, client_leg, record_to)
                    record.bridged_s = time.monotonic() - began
                    if record_to is not None and record_to.exists():
                        record.recording_path = str(record_to)
                    event = cb.BridgeEnded()
                else:  # pragma: no cover - the state machine has no other actions
                    raise cb.StepError(f"unknown action {action!r}")
                state, action = cb.step(state, event)
            outcome = action.outcome
        except asyncio.CancelledError:
            # Our side stopped the call (forced shutdown, lost lease): record it, do not propagate —
            # the caller cancelled us precisely so that the attempt gets closed properly.
            outcome = cb.INTERRUPTED
        except Exception:
            log.exception("attempt %s of request %s failed on our side", claim.attempt_number, claim.request_id)
            outcome = cb.ERROR
        finally:
            for leg in (client_leg, op_leg):
                if leg is not None and not leg.is_ended:
                    with contextlib.suppress(Exception):
                        await asyncio.shield(leg.hangup())
        record.closed = True  # no live update after this: the final write has everything
        if record.timer is not None:
            record.timer.cancel()
        self.closing.add(claim.request_id)
        try:
            await asyncio.shield(self.finish(claim, outcome, record, site=site, widget=widget))
        finally:
            self.closing.discard(claim.request_id)
        return outcome

    @staticmethod
    def _announcement(request: dict[str, Any], site: dict | None, unit: dict | None, language: str,
                      confirm: bool) -> str:
        fields = [(str(f.get("name", "")), str(f.get("value", ""))) for f in request["fields"] or []]
        text = announcement_text(fields, language=language, site_name=(site or {}).get("name"),  # type: ignore[arg-type]
                                 unit_name=(unit or {}).get("name"))
        if confirm:
            text = f"{text} {cb.CONFIRM_PROMPT.get(language, cb.CONFIRM_PROMPT['en'])}"
        return text

    def _recording_path(self, site: dict[str, Any] | None, claim: Claim) -> Path | None:
        if self.recordings_dir is None or not (site or {}).get("record_calls"):
            return None
        folder = self.recordings_dir / str(claim.request["site_id"])
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{claim.request_id}-{claim.attempt_number}.wav"

    def _progress(self, claim: Claim, record: AttemptRecord, **values: Any) -> None:
        """Show what just happened in the journal: published at once, written PROGRESS_DELAY_S later.

        The delay coalesces a call's quick steps and skips the write entirely for steps that the
        attempt's final write (which carries the same facts) overtakes — on a fast line that is most
        of them, and each saved write is a saved commit.
        """
        record.unsaved.update(values)
        self._publish(claim.request, cb.DIALING, claim.attempt_number)
        if record.timer is None:
            record.timer = asyncio.get_running_loop().call_later(
                PROGRESS_DELAY_S, self._write_progress, claim, record)

    def _write_progress(self, claim: Claim, record: AttemptRecord) -> None:
        record.timer = None
        values, record.unsaved = record.unsaved, {}
        if not values or record.closed:
            return
        statement = update(call_attempts).where(_a.id == claim.attempt_id).values(**values)

        async def write() -> None:
            try:
                await self.writer.submit(lambda conn: conn.execute(statement))
            except Exception:  # the final write carries the same facts; a live update may be lost
                log.warning("could not record progress of attempt %s", claim.attempt_id, exc_info=True)

        task = asyncio.get_running_loop().create_task(write())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- closing an attempt ----------------------------------------------------------------------------

    async def finish(self, claim: Claim, outcome: str, record: AttemptRecord, *, site: dict | None = None,
                     widget: dict | None = None) -> Decision | None:
        """Close the attempt: outcome, minutes, next status — one transaction. None if the claim was lost."""
        now = utcnow()
        seconds = billed_seconds(record.bridged_s) if outcome == cb.CONNECTED else 0
        request = claim.request
        if site is None:
            site, widget, _unit = await self._context(request)
        decision = self.decide(outcome, request["attempts_made"], request, widget, now)
        final = decision.status in cb.FINAL_STATUSES
        # The snapshot says whether the site has webhooks at all: most calls then skip reading the site.
        wants_webhooks = final and bool((site or {}).get("webhook_urls", True))
        closed = await self.closer.submit(
            Closing(claim, outcome, record, decision, seconds, billed_minutes(seconds), wants_webhooks, now))
        if not closed.kept:
            # Our lease ran out and another worker closed this attempt as interrupted: keep its record.
            log.warning("request %s: claim lost before attempt %s ended (%s)", claim.request_id,
                        claim.attempt_number, outcome)
            return None
        if closed.charged:
            self.snapshots.invalidate(request["site_id"])
        if closed.queued:
            self.on_webhooks()
        if decision.next_attempt_at is not None and decision.next_attempt_at <= utcnow():
            self.on_due()
        self._publish(request, decision.status, claim.attempt_number, outcome=outcome)
        return decision

    async def _close_batch(self, conn: Any, items: list[Closing]) -> list[Closed]:
        """Close many attempts with a handful of statements (executemany), whatever the batch size."""
        ids = [c.claim.request_id for c in items]
        query = select(_r.id, _r.claimed_by).where(_r.id.in_(ids), _r.status == cb.DIALING)
        if not self.db.is_sqlite:
            query = query.with_for_update()  # hold them: a recovery must not slip in before our UPDATE
        holders = dict((await conn.execute(query)).all())
        kept = [c for c in items if holders.get(c.claim.request_id) == c.claim.request["claimed_by"]]
        results = {id(c): Closed(kept=False) for c in items}
        if kept:
            await conn.execute(
                update(callback_requests).where(_r.id == bindparam("rid")).values(
                    status=bindparam("st"), next_attempt_at=bindparam("nx"), finished_at=bindparam("fin"),
                    claimed_by=None, claimed_until=None, updated_at=bindparam("now")),
                [{"rid": c.claim.request_id, "st": c.decision.status,
                  "nx": None if c.final else c.decision.next_attempt_at, "fin": c.now if c.final else None,
                  "now": c.now} for c in kept],
            )
            await conn.execute(
                update(call_attempts).where(_a.id == bindparam("aid")).values(
                    ended_at=bindparam("end"), outcome=bindparam("oc"), billed_seconds=bindparam("bs"),
                    operator_phone=bindparam("op"), operator_answered_at=bindparam("oa"),
                    client_answered_at=bindparam("ca"), recording_path=bindparam("rp")),
                [{"aid": c.claim.attempt_id, "end": c.now, "oc": c.outcome, "bs": c.seconds,
                  "op": c.record.operator_phone, "oa": c.record.operator_answered_at,
                  "ca": c.record.client_answered_at, "rp": c.record.recording_path} for c in kept],
            )
            for c in kept:
                results[id(c)] = Closed(kept=True)
        needs_site = [c for c in kept if c.minutes or c.wants_webhooks]
        if needs_site:
            site_ids = sorted({c.claim.request["site_id"] for c in needs_site})
            query = select(sites).where(sites.c.id.in_(site_ids)).order_by(sites.c.id)
            if not self.db.is_sqlite:
                query = query.with_for_update()  # balances are read, then written: lock (in id order)
            site_rows = {row["id"]: row for row in (await conn.execute(query)).mappings()}
            minutes_by_site: dict[int, int] = {}
            for c in needs_site:
                minutes_by_site[c.claim.request["site_id"]] = (
                    minutes_by_site.get(c.claim.request["site_id"], 0) + c.minutes)
            for site_id, minutes in minutes_by_site.items():
                row = site_rows.get(site_id)
                if row is None or not minutes:
                    continue
                charge = spend(row["minutes_balance"], minutes)
                if charge.spent:
                    await conn.execute(
                        update(sites).where(sites.c.id == site_id).values(minutes_balance=charge.balance_after))
                    for c in needs_site:
                        if c.claim.request["site_id"] == site_id and c.minutes:
                            results[id(c)].charged = True
            for c in needs_site:
                row = site_rows.get(c.claim.request["site_id"])
                if c.final and row is not None:
                    results[id(c)].queued = await self._enqueue_finished(conn, row, c.claim.request_id, c.now)
        return [results[id(c)] for c in items]

    @staticmethod
    def decide(outcome: str, attempts_made: int, request: dict[str, Any], widget: dict[str, Any] | None,
               now: datetime) -> Decision:
        schedule = schedule_of(widget) if widget is not None else None
        return after_attempt(
            outcome,
            attempts_made,
            RedialPolicy.from_widget((widget or {}).get("callback")),
            now,
            schedule,
            keep_to_schedule=bound_by_schedule(request["due_at"], schedule),
        )

    @staticmethod
    def _request_values(decision: Decision, now: datetime) -> dict[str, Any]:
        final = decision.status in cb.FINAL_STATUSES
        return {
            "status": decision.status,
            "next_attempt_at": None if final else decision.next_attempt_at,
            "finished_at": now if final else None,
            "claimed_by": None,
            "claimed_until": None,
            "updated_at": now,
        }

    async def _enqueue_finished(self, conn: Any, site: Any, request_id: int, now: datetime) -> int:
        if not site["webhook_urls"]:
            return 0
        row = (await conn.execute(select(callback_requests).where(_r.id == request_id))).mappings().one()
        attempts = (await conn.execute(select(call_attempts).where(_a.request_id == request_id)
                                       .order_by(_a.number))).mappings().all()
        return await webhooks.enqueue(conn, site, webhooks.FINISHED, request_resource(row, list(attempts)), now)

    # -- recovery -----------------------------------------------------------------------------------------

    async def recover(self, expired: dict[str, Any], now: datetime | None = None) -> Decision | None:
        """A request whose worker's lease ran out: its open attempt is ``interrupted``, then redial or fail."""
        now = now or utcnow()
        _site, widget, _unit = await self._context(expired)
        decision = self.decide(cb.INTERRUPTED, expired["attempts_made"], expired, widget, now)
        queued = 0
        async with self.db.write() as conn:
            moved = await conn.execute(
                update(callback_requests)
                .where(_r.id == expired["id"], _r.status == cb.DIALING, _r.claimed_by == expired["claimed_by"],
                       _r.claimed_until < now)
                .values(**self._request_values(decision, now))
            )
            if moved.rowcount != 1:
                return None  # renewed meanwhile, or another worker recovered it first
            await conn.execute(
                update(call_attempts)
                .where(_a.request_id == expired["id"], _a.ended_at.is_(None))
                .values(ended_at=now, outcome=cb.INTERRUPTED, billed_seconds=0)
            )
            if decision.status in cb.FINAL_STATUSES:
                site = (await conn.execute(select(sites).where(sites.c.id == expired["site_id"]))).mappings().first()
                if site is not None:
                    queued = await self._enqueue_finished(conn, site, expired["id"], now)
        if queued:
            self.on_webhooks()
        log.warning("request %s: worker %s stopped answering; attempt %s marked interrupted → %s",
                    expired["id"], expired["claimed_by"], expired["attempts_made"], decision.status)
        self._publish(expired, decision.status, expired["attempts_made"], outcome=cb.INTERRUPTED)
        return decision

    def _publish(self, request: dict[str, Any], status: str, attempt: int, outcome: str | None = None) -> None:
        event = {"requestId": request["id"], "siteId": request["site_id"], "status": status, "attempt": attempt}
        if outcome is not None:
            event["outcome"] = outcome
        self.bus.publish(event)


@dataclass
class Worker:
    """The loop: claim what is due (woken at once by new requests, NOTIFY or a timer), run, renew, recover."""

    engine: CallbackEngine
    queue: DueQueue
    concurrency: int = 50
    lease_s: float = 30.0
    poll_s: float = 5.0  # safety net only: wake-ups are immediate; this catches what nobody announced
    _tasks: dict[int, tuple[asyncio.Task[str], Claim]] = field(default_factory=dict)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _slot: asyncio.Event = field(default_factory=asyncio.Event)
    _stopping: bool = False
    _loops: list[asyncio.Task[None]] = field(default_factory=list)
    _last_renewal: float = field(default_factory=time.monotonic)

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

    def __post_init__(self) -> None:
        # A redial due at once (an interrupted call) must not wait for the next timer or poll.
        self.engine.on_due = self.wake

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
            self._last_renewal = time.monotonic()
            return 0
        before = {rid: task for rid, (task, _claim) in self._tasks.items()}
        ids = list(before)
        try:
            kept = await self.queue.renew(ids)
        except Exception:
            log.warning("could not renew leases", exc_info=True)
            # Past most of the lease without a renewal, another worker may take these over: hang up
            # rather than risk the same request being dialled twice at once.
            if time.monotonic() - self._last_renewal > self.lease_s * 0.8:
                for task, _claim in list(self._tasks.values()):
                    task.cancel()
            return 0
        self._last_renewal = time.monotonic()
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
        """Close attempts whose worker died (lease expired) and put their requests back or fail them."""
        recovered = 0
        for row in await self.queue.expired():
            if row["id"] in self._tasks:
                continue  # ours and still running: the heartbeat deals with it
            if await self.engine.recover(row) is not None:
                recovered += 1
        if recovered:
            self.wake()
        return recovered

    # -- loops ------------------------------------------------------------------------------------------

    def start(self) -> None:
        self._loops = [
            asyncio.create_task(self._dispatch_loop(), name="callback-dispatch"),
            asyncio.create_task(self._every(self.lease_s / 3, self.heartbeat_once), name="callback-heartbeat"),
            asyncio.create_task(self._every(min(self.poll_s, self.lease_s / 2), self.recover_once),
                                name="callback-recovery"),
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
                delay = min(delay, max(0.02, (due - utcnow()).total_seconds()))
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
            await asyncio.sleep(interval)

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
