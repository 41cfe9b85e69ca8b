"""The one owner of a callback request's life: accept, close an attempt, cancel, reschedule, recover.

Every status change is made here, checked against ``domain/callback.py``'s transition rules, and
writes its webhook rows (the outbox, ``store/outbox.py``) in the same transaction as the change they
announce — ``request.created`` with the request's insert, ``request.finished`` with its final status.
The claim itself (``pending → dialing``, with its lease) is the due queue's (``store/due_queue.py``),
which takes the move from the same transition table.

The HTTP layers and the worker call a ``RequestLife``; it tells the rest of the process what changed
through a ``Notifier`` (wake the worker, wake the webhook sender, publish a live event), so nothing
here knows which of them runs in this process.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from ..clock import SYSTEM_CLOCK, Clock
from ..domain import callback as cb
from ..domain.billing import billed_minutes, billed_seconds, spend
from ..domain.destinations import dial_problem
from ..domain.quiet_hours import quiet_hold
from ..domain.redial import Decision, RedialPolicy, after_attempt, bound_by_schedule
from ..shapes.resources import iso, request_resource
from ..store import ledger, outbox, timeline
from ..store import requests as rows
from ..store.db import Database
from ..store.group_commit import GroupCommit
from ..store.snapshots import SiteSnapshot, SnapshotCache
from .catalog import Conflict, NotFound

log = logging.getLogger(__name__)

Event = dict[str, Any]


class Notifier(Protocol):
    """What the life cycle tells the process it runs in; every method is quick and never fails."""

    def wake_worker(self) -> None:
        """A request may be due now."""

    def wake_webhooks(self) -> None:
        """Webhook deliveries were queued."""

    def publish(self, event: Event) -> None:
        """A status changed: ``{"requestId", "siteId", "status", ...}`` for live pages."""


class Wakeups:
    """The process's Notifier: whatever runs here (a worker, a sender, a live event bus) plugs in."""

    def __init__(self) -> None:
        self._workers: list[Callable[[], None]] = []
        self._senders: list[Callable[[], None]] = []
        self._listeners: list[Callable[[Event], None]] = []

    def plug(
        self,
        *,
        worker: Callable[[], None] | None = None,
        webhooks: Callable[[], None] | None = None,
        events: Callable[[Event], None] | None = None,
    ) -> Callable[[], None]:
        """Add wake-ups; returns the function that removes them again."""
        added = [
            (lst, f)
            for lst, f in ((self._workers, worker), (self._senders, webhooks), (self._listeners, events))
            if f is not None
        ]
        for lst, f in added:
            lst.append(f)  # type: ignore[arg-type]

        def unplug() -> None:
            for lst, f in added:
                if f in lst:
                    lst.remove(f)  # type: ignore[arg-type]

        return unplug

    def wake_worker(self) -> None:
        for wake in self._workers:
            wake()

    def wake_webhooks(self) -> None:
        for wake in self._senders:
            wake()

    def publish(self, event: Event) -> None:
        for listener in self._listeners:
            listener(event)


@dataclass
class AttemptFacts:
    """What an attempt saw on the line, written when it ends."""

    operator_phone: str | None = None
    operator_answered_at: datetime | None = None
    client_answered_at: datetime | None = None
    recording_path: str | None = None


@dataclass
class Closing:
    """One attempt's final write, as the closing group commit batches them."""

    request: dict[str, Any]
    attempt_id: int
    outcome: str
    facts: AttemptFacts
    decision: Decision
    seconds: int
    wants_webhooks: bool
    now: datetime

    @property
    def final(self) -> bool:
        return self.decision.status in cb.FINAL_STATUSES

    @property
    def minutes(self) -> int:
        return billed_minutes(self.seconds)


@dataclass
class Closed:
    kept: bool  # False: the claim was lost (another worker recovered the request first)
    charged: bool = False
    queued: int = 0


@dataclass(frozen=True)
class _Acceptance:
    row: dict[str, Any]
    webhook_urls: tuple[str, ...]


def status_event(request: dict[str, Any], status: str, attempt: int | None = None, outcome: str | None = None) -> Event:
    event: Event = {"requestId": request["id"], "siteId": request["site_id"], "status": status}
    if attempt is not None:
        event["attempt"] = attempt
    if outcome is not None:
        event["outcome"] = outcome
    return event


def webhook_body(event: str, resource: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The fixed body of docs/callbacks.md: ``{"event", "timestamp", "request": <journal resource>}``."""
    return {"event": event, "timestamp": iso(now), "request": resource}


async def _run_each(conn: Any, statements: list[Any]) -> list[Any]:
    return [await conn.execute(statement) for statement in statements]


class RequestLife:
    """Accept, close attempts, cancel, reschedule, recover: each one transaction with its webhook rows."""

    def __init__(
        self, db: Database, snapshots: SnapshotCache, notifier: Notifier | None = None, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self.db = db
        self.snapshots = snapshots
        self.notifier: Notifier = notifier or Wakeups()
        self.clock = clock
        # SQLite only: there one writer makes a transaction per request queue behind each other. On
        # PostgreSQL each request keeps its own transaction: batched accepts (one INSERT … RETURNING) were
        # faster, but with the journal's per-slot aggregate triggers two processes' batches deadlocked under
        # load, and a deadlocked batch answered nobody within 10 s (tests/ops/test_faults.py).
        self.accepting: GroupCommit[_Acceptance, tuple[int, int]] | None = (
            GroupCommit(db, self._accept_batch) if db.is_sqlite else None
        )
        self.closing: GroupCommit[Closing, Closed] = GroupCommit(db, self._close_batch, max_batch=500)
        self.progress: GroupCommit[Any, Any] = GroupCommit(db, _run_each, max_batch=500)

    # -- accept --------------------------------------------------------------------------------------------

    async def accept(
        self, values: dict[str, Any], due_at: datetime, webhook_urls: list[str] | tuple[str, ...], now: datetime
    ) -> int:
        """Store an accepted request (pending, due at ``due_at``) with its ``request.created`` deliveries;
        returns its id once committed. ``values``: the request's own columns (site, phone, fields…)."""
        row = {
            **values,
            "due_at": due_at,
            "next_attempt_at": due_at,
            "status": cb.PENDING,
            "attempts_made": 0,
            "created_at": now,
            "updated_at": now,
        }
        item = _Acceptance(row, tuple(webhook_urls or ()))
        if self.accepting is not None:
            request_id, queued = await self.accepting.submit(item)  # once committed and fsynced
        else:
            async with self.db.write() as conn:
                [(request_id, queued)] = await self._accept_batch(conn, [item])
        self.notifier.wake_worker()
        if queued:
            self.notifier.wake_webhooks()
        return request_id

    async def _accept_batch(self, conn: Any, items: list[_Acceptance]) -> list[tuple[int, int]]:
        ids = await rows.insert_requests(conn, [item.row for item in items], self.db.is_sqlite)
        now = self.clock.now()
        messages = [
            outbox.Message(
                item.row["site_id"],
                item.webhook_urls,
                outbox.CREATED,
                request_id,
                webhook_body(
                    outbox.CREATED, request_resource({**item.row, **rows.UNSET_ON_INSERT, "id": request_id}), now
                ),
            )
            for item, request_id in zip(items, ids, strict=True)
            if item.webhook_urls
        ]
        await outbox.enqueue(conn, messages, now)
        return [(request_id, len(item.webhook_urls)) for item, request_id in zip(items, ids, strict=True)]

    # -- after an attempt ----------------------------------------------------------------------------------

    @staticmethod
    def decide(
        outcome: str,
        request: dict[str, Any],
        snapshot: SiteSnapshot | None,
        widget: dict[str, Any] | None,
        now: datetime,
    ) -> Decision:
        """The request's next status after an attempt that ended with ``outcome``."""
        schedule = snapshot.schedule(widget) if snapshot is not None and widget is not None else None
        hold = quiet_hold(request["phone"], (widget or {}).get("quiet_hours"), schedule.tz if schedule else UTC)
        return after_attempt(
            outcome,
            request["attempts_made"],
            RedialPolicy.from_widget((widget or {}).get("callback")),
            now,
            schedule,
            keep_to_schedule=bound_by_schedule(request["due_at"], schedule),
            hold=hold,
        )

    async def close_attempt(
        self,
        request: dict[str, Any],
        attempt_id: int,
        attempt_number: int,
        outcome: str,
        facts: AttemptFacts,
        bridged_s: float,
        snapshot: SiteSnapshot | None,
        widget: dict[str, Any] | None,
    ) -> Decision | None:
        """Close a claimed attempt: outcome, minutes, next status, webhooks — one (shared) transaction.

        None if the claim was lost meanwhile (another worker recovered the request first).
        """
        now = self.clock.now()
        seconds = billed_seconds(bridged_s) if outcome == cb.CONNECTED else 0
        decision = self.decide(outcome, request, snapshot, widget, now)
        site = snapshot.site if snapshot is not None else None
        # The snapshot says whether the site has webhooks at all: most calls then skip reading the site.
        wants_webhooks = decision.status in cb.FINAL_STATUSES and bool((site or {}).get("webhook_urls", True))
        closed = await self.closing.submit(
            Closing(request, attempt_id, outcome, facts, decision, seconds, wants_webhooks, now)
        )
        if not closed.kept:
            log.warning("request %s: claim lost before attempt %s ended (%s)", request["id"], attempt_number, outcome)
            return None
        if closed.charged:
            self.snapshots.invalidate(request["site_id"])
        if closed.queued:
            self.notifier.wake_webhooks()
        if decision.next_attempt_at is not None and decision.next_attempt_at <= self.clock.now():
            self.notifier.wake_worker()  # a redial due at once must not wait for the next timer or poll
        self.notifier.publish(status_event(request, decision.status, attempt_number, outcome))
        return decision

    async def _close_batch(self, conn: Any, items: list[Closing]) -> list[Closed]:
        """Close many attempts with a handful of statements (executemany), whatever the batch size."""
        held = await rows.holders(conn, [c.request["id"] for c in items], cb.DIALING, self.db.is_sqlite)
        kept = [c for c in items if held.get(c.request["id"]) == c.request["claimed_by"]]
        results = {id(c): Closed(kept=False) for c in items}
        if kept:
            await rows.set_request_statuses(conn, [self._status_params(c) for c in kept])
            await rows.close_attempt_rows(
                conn,
                [
                    {
                        "aid": c.attempt_id,
                        "end": c.now,
                        "oc": c.outcome,
                        "bs": c.seconds,
                        "op": c.facts.operator_phone,
                        "oa": c.facts.operator_answered_at,
                        "ca": c.facts.client_answered_at,
                        "rp": c.facts.recording_path,
                    }
                    for c in kept
                ],
            )
            for c in kept:
                results[id(c)].kept = True
        needs_site = [c for c in kept if c.minutes or c.wants_webhooks]
        if needs_site:
            await self._charge_and_announce(conn, needs_site, results)
        return [results[id(c)] for c in items]

    @staticmethod
    def _status_params(c: Closing) -> dict[str, Any]:
        status = cb.request_transition(cb.DIALING, c.decision.status)
        return {
            "rid": c.request["id"],
            "st": status,
            "nx": None if c.final else c.decision.next_attempt_at,
            "fin": c.now if c.final else None,
            "now": c.now,
        }

    async def _charge_and_announce(self, conn: Any, items: list[Closing], results: dict[int, Closed]) -> None:
        """Take the minutes from each site's balance and queue ``request.finished`` for final ones."""
        site_rows = await rows.sites_for_update(conn, (c.request["site_id"] for c in items), self.db.is_sqlite)
        minutes_by_site: dict[int, int] = {}
        for c in items:
            minutes_by_site[c.request["site_id"]] = minutes_by_site.get(c.request["site_id"], 0) + c.minutes
        for site_id, minutes in minutes_by_site.items():
            row = site_rows.get(site_id)
            if row is None or not minutes:
                continue
            charge = spend(row["minutes_balance"], minutes)
            if charge.spent:
                await rows.set_minutes_balance(conn, site_id, charge.balance_after)
                left, entries = charge.spent, []
                for c in items:
                    if c.request["site_id"] == site_id and c.minutes:
                        results[id(c)].charged = True
                        taken, left = min(c.minutes, left), left - min(c.minutes, left)
                        if taken:  # each call's charge is a ledger row: the ledger's sum stays the balance
                            entries.append(
                                {"site_id": site_id, "minutes": -taken, "request_id": c.request["id"], "at": c.now}
                            )
                await ledger.record_calls(conn, entries)
        for c in items:
            row = site_rows.get(c.request["site_id"])
            if c.final and row is not None:
                results[id(c)].queued = await self._announce_finished(conn, row, c.request["id"], c.now)

    async def _announce_finished(self, conn: Any, site: dict[str, Any] | None, request_id: int, now: datetime) -> int:
        """Queue ``request.finished`` to the site's webhooks, in the caller's transaction."""
        if site is None or not site["webhook_urls"]:
            return 0
        row, attempts = await rows.request_with_attempts(conn, request_id)
        body = webhook_body(outbox.FINISHED, request_resource(row, attempts), now)
        message = outbox.Message(site["id"], tuple(site["webhook_urls"]), outbox.FINISHED, request_id, body)
        return await outbox.enqueue(conn, [message], now)

    async def record_progress(self, attempt_id: int, values: dict[str, Any]) -> None:
        """A running attempt's live journal update (who answered when), batched with the others'."""
        await self.progress.submit(rows.attempt_progress(attempt_id, values))

    # -- recovery ------------------------------------------------------------------------------------------

    async def recover(self, expired: dict[str, Any], now: datetime | None = None) -> Decision | None:
        """A request whose worker's lease ran out: its open attempt is ``interrupted``, then redial or fail.

        None if it was renewed meanwhile, or another worker recovered it first.
        """
        now = now or self.clock.now()
        snapshot = await self.snapshots.by_id(expired["site_id"])
        widget = snapshot.widget_by_id(expired["widget_id"]) if snapshot is not None else None
        decision = self.decide(cb.INTERRUPTED, expired, snapshot, widget, now)
        status = cb.request_transition(cb.DIALING, decision.status)
        final = status in cb.FINAL_STATUSES
        values = {
            "status": status,
            "next_attempt_at": None if final else decision.next_attempt_at,
            "finished_at": now if final else None,
            "claimed_by": None,
            "claimed_until": None,
            "updated_at": now,
        }
        async with self.db.write() as conn:
            where = [rows.status_is(cb.DIALING), *rows.lease_expired(expired["claimed_by"], now)]
            if not await rows.move(conn, expired["id"], where, values):
                return None
            await rows.interrupt_open_attempts(conn, expired["id"], cb.INTERRUPTED, now)
            queued = 0
            if final:
                queued = await self._announce_finished(
                    conn, await rows.site_row(conn, expired["site_id"]), expired["id"], now
                )
        if queued:
            self.notifier.wake_webhooks()
        log.warning(
            "request %s: worker %s stopped answering; attempt %s marked interrupted → %s",
            expired["id"],
            expired["claimed_by"],
            expired["attempts_made"],
            status,
        )
        self.notifier.publish(status_event(expired, status, expired["attempts_made"], cb.INTERRUPTED))
        return decision

    async def postpone_recovery(self, expired: dict[str, Any], until: datetime) -> bool:
        """A request whose recovery failed: look at it again at ``until``, after the others."""
        async with self.db.write() as conn:
            return await rows.move(
                conn,
                expired["id"],
                [rows.status_is(cb.DIALING), rows.claimed_by(expired["claimed_by"])],
                {"claimed_until": until},
            )

    # -- admin actions -------------------------------------------------------------------------------------

    async def admit(self, request: dict[str, Any], attempt_id: int) -> str | None:
        """Right before a claimed attempt dials (DESIGN §7): None to go ahead; else why not, the claim then
        undone in the same transaction — no attempt is left, and the request is ``cancelled`` (the number
        was blacklisted or is no longer allowed, or a ``finish`` site has no minutes for a first one) or
        ``pending`` again (a ``defer`` site waits for a top-up). Read from the database, not the snapshot:
        a balance spent or a number blacklisted a second ago counts."""
        now = self.clock.now()
        async with self.db.write() as conn:
            site = await rows.site_row(conn, request["site_id"])
            if site is None:
                return None  # the site is being deleted with its requests: nothing to decide
            blocked = dial_problem(
                request["phone"],
                list(site["allowed_countries"] or []),
                await rows.is_blacklisted(conn, site["id"], request["phone"]),
                int(site["minutes_balance"]),
                site["non_working_policy"],
            )
            if blocked is None:
                return None
            status, reason = blocked
            if not await rows.withdraw_claim(
                conn, request["id"], attempt_id, cb.withdraw_transition(cb.DIALING, status), now
            ):
                return reason  # no longer ours (recovered meanwhile): whoever holds it decides
            queued = await self._announce_finished(conn, site, request["id"], now) if status == cb.CANCELLED else 0
        log.info("request %s not dialled: %s", request["id"], reason)
        if queued:
            self.notifier.wake_webhooks()
        self.notifier.publish(status_event(request, status))
        return reason

    async def cancel(self, request_id: int, *, actor: str | None = None) -> dict[str, Any]:
        """Cancel a pending request (one being dialled cannot be); returns its resource. ``actor`` (who
        did it) goes in the request's timeline, in the same transaction."""
        now = self.clock.now()
        values = {"status": cb.CANCELLED, "next_attempt_at": None, "finished_at": now, "updated_at": now}
        async with self.db.write() as conn:
            if not await rows.move(conn, request_id, [rows.status_is(*cb.sources_of(cb.CANCELLED))], values):
                current = await self._current_status(conn, request_id)
                raise Conflict(f"request {request_id} is {current}: only a pending request can be cancelled")
            if actor is not None:
                await timeline.record_action(conn, request_id, timeline.CANCEL, actor, now)
            row, attempts = await rows.request_with_attempts(conn, request_id)
            queued = await self._announce_finished(conn, await rows.site_row(conn, row["site_id"]), request_id, now)
        if queued:
            self.notifier.wake_webhooks()
        self.notifier.publish(status_event(row, cb.CANCELLED))
        return request_resource(row, attempts)

    async def reschedule(self, request_id: int, at: datetime | None, *, actor: str | None = None) -> dict[str, Any]:
        """Call a request at ``at`` (None: now). A pending one gets a new due time; a finished one is
        called again — status back to ``pending``, with a new set of attempts (its old ones stay in the
        journal). One being dialled cannot be rescheduled: Conflict. ``actor`` (who did it) goes in the
        request's timeline as call now, reschedule or call again, in the same transaction."""
        now = self.clock.now()
        due = at or now
        async with self.db.write() as conn:
            current = await self._current_status(conn, request_id)
            try:
                status = cb.reschedule_transition(current)
            except cb.TransitionError:
                raise Conflict(f"request {request_id} is {current}: it can be rescheduled once its call ends") from None
            values: dict[str, Any] = {"status": status, "due_at": due, "next_attempt_at": due, "updated_at": now}
            if current in cb.FINAL_STATUSES:
                values |= {"finished_at": None, "attempts_made": 0}
            if not await rows.move(conn, request_id, [rows.status_is(current)], values):
                raise Conflict(f"request {request_id} changed meanwhile; try again")
            if actor is not None:
                again = current in cb.FINAL_STATUSES
                action = timeline.CALL_AGAIN if again else timeline.CALL_NOW if at is None else timeline.RESCHEDULE
                await timeline.record_action(conn, request_id, action, actor, now, due)
            row, attempts = await rows.request_with_attempts(conn, request_id)
        self.notifier.wake_worker()
        self.notifier.publish(status_event(row, status))
        return request_resource(row, attempts)

    @staticmethod
    async def _current_status(conn: Any, request_id: int) -> str:
        current = await rows.status_of(conn, request_id)
        if current is None:
            raise NotFound("request")
        return current
