"""The due queue: which requests are due, and claiming them so that exactly one worker dials each attempt.

A claim is one transaction that moves ``pending → dialing`` (with ``claimed_by`` and a lease in
``claimed_until``), counts the attempt and inserts its ``call_attempts`` row. PostgreSQL picks the rows
with ``FOR UPDATE SKIP LOCKED`` so concurrent workers never wait on each other; SQLite has a single
writer (``BEGIN IMMEDIATE``), so a plain select inside the write transaction is already exclusive. On
both, the UPDATE repeats the conditions (``status='pending' AND next_attempt_at <= now``) and only the
rows it returns are ours — the healthchecks way of claiming work.

A worker renews the leases of the calls in hand; a lease that runs out means the worker died (or lost
the database), and ``expired`` finds those requests for recovery.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, false, func, insert, or_, select, update
from sqlalchemy.engine import make_url

from ..clock import SYSTEM_CLOCK, Clock
from ..domain.callback import DIALING, PENDING, request_transition
from .db import Database
from .group_commit import GroupCommit
from .tables import call_attempts, callback_requests, sites

log = logging.getLogger(__name__)

DUE_CHANNEL = "perezvon_due"  # NOTIFY channel (migration 0002 fires it on pending requests)
WEBHOOK_CHANNEL = "perezvon_webhooks"

_r = callback_requests.c
_a = call_attempts.c


def _deferred_site() -> Any:
    """Sites whose accepted requests wait: policy ``defer`` and the service not active (zero minutes/off)."""
    return exists().where(
        sites.c.id == _r.site_id,
        sites.c.non_working_policy == "defer",
        or_(sites.c.minutes_balance <= 0, sites.c.callback_active == false()),
    )


def _due(now: datetime) -> Any:
    return and_(_r.status == PENDING, _r.next_attempt_at <= now)


@dataclass(frozen=True)
class Claim:
    """A request this worker now dials: its row (after the claim) and the attempt row just opened."""

    request: dict[str, Any]
    attempt_id: int
    attempt_number: int
    started_at: datetime

    @property
    def request_id(self) -> int:
        return int(self.request["id"])


class DueQueue:
    def __init__(self, db: Database, worker_id: str, lease_s: float = 30.0, clock: Clock = SYSTEM_CLOCK) -> None:
        self.clock = clock
        self.db = db
        self.worker_id = worker_id
        self.lease = timedelta(seconds=lease_s)
        self._claims: GroupCommit[tuple[int, datetime], list[Claim]] = GroupCommit(db, self._claim_batch)

    async def claim(self, limit: int, now: datetime | None = None) -> list[Claim]:
        """Claim up to ``limit`` due requests and open an attempt for each, in one transaction."""
        if limit <= 0:
            return []
        now = now or self.clock.now()
        # Through a group commit: on SQLite the claim shares its transaction (and fsync) with whatever else
        # the process is writing at that moment, accepted requests and closing attempts.
        return await self._claims.submit((limit, now))

    async def _claim_batch(self, conn: Any, asks: list[tuple[int, datetime]]) -> list[list[Claim]]:
        return [await self._claim_in(conn, limit, now) for limit, now in asks]

    async def _claim_in(self, conn: Any, limit: int, now: datetime) -> list[Claim]:
        candidates = select(_r.id).where(_due(now), ~_deferred_site()).order_by(_r.next_attempt_at).limit(limit)
        if self.db.is_sqlite:
            ids = list((await conn.execute(candidates)).scalars())
            if not ids:
                return []
            chosen: Any = _r.id.in_(ids)
        else:
            # SKIP LOCKED: rows another worker is claiming right now are simply not ours to take.
            # A MATERIALIZED CTE, not "id IN (subquery)": the planner may re-run a subquery per row
            # (a nested-loop semi-join), and each run can lock a different LIMIT-sized set.
            locked = (
                candidates.with_for_update(skip_locked=True, of=callback_requests)
                .cte("due")
                .prefix_with("MATERIALIZED")
            )
            chosen = _r.id == locked.c.id
        rows = (
            (
                await conn.execute(
                    update(callback_requests)
                    .where(chosen, _due(now))  # the conditional update: only rows still due are claimed
                    .values(
                        status=request_transition(PENDING, DIALING),
                        claimed_by=self.worker_id,
                        claimed_until=now + self.lease,
                        attempts_made=_r.attempts_made + 1,
                        updated_at=now,
                    )
                    .returning(*callback_requests.c)
                )
            )
            .mappings()
            .all()
        )
        if not rows:
            return []
        numbers = await self._attempt_numbers(conn, rows)
        opened = (
            await conn.execute(
                insert(call_attempts).returning(call_attempts.c.id, call_attempts.c.request_id),
                [
                    {
                        "request_id": row["id"],
                        "number": numbers[row["id"]],
                        "worker": self.worker_id,
                        "started_at": now,
                        "billed_seconds": 0,
                    }
                    for row in rows
                ],
            )
        ).all()
        attempt_of = {request_id: attempt_id for attempt_id, request_id in opened}
        return [Claim(dict(row), attempt_of[row["id"]], numbers[row["id"]], now) for row in rows]

    @staticmethod
    async def _attempt_numbers(conn: Any, rows: Sequence[Any]) -> dict[int, int]:
        """Each claimed request's new attempt number: one past its journal's last. ``attempts_made``
        counts the attempts since the request was (re)scheduled, and an admin's reschedule of a finished
        request starts that count again while its earlier attempts stay in the journal."""
        last = dict(
            (
                await conn.execute(
                    select(_a.request_id, func.max(_a.number))
                    .where(_a.request_id.in_([row["id"] for row in rows]))
                    .group_by(_a.request_id)
                )
            ).all()
        )
        return {row["id"]: max(row["attempts_made"], (last.get(row["id"]) or 0) + 1) for row in rows}

    async def renew(self, request_ids: Iterable[int], now: datetime | None = None) -> set[int]:
        """Extend the leases of our calls in hand; returns the ids that are still ours."""
        ids = list(request_ids)
        if not ids:
            return set()
        now = now or self.clock.now()
        async with self.db.write() as conn:
            result = await conn.execute(
                update(callback_requests)
                .where(_r.id.in_(ids), _r.status == DIALING, _r.claimed_by == self.worker_id)
                .values(claimed_until=now + self.lease)
                .returning(_r.id)
            )
            return set(result.scalars())

    async def next_due(self) -> datetime | None:
        """When the earliest pending request is due (None: nothing pending that may be dialled)."""
        async with self.db.read() as conn:
            return (
                await conn.execute(
                    select(_r.next_attempt_at)
                    .where(_r.status == PENDING, _r.next_attempt_at.is_not(None), ~_deferred_site())
                    .order_by(_r.next_attempt_at)
                    .limit(1)
                )
            ).scalar()

    async def expired(self, now: datetime | None = None, limit: int = 200) -> list[dict[str, Any]]:
        """Requests in ``dialing`` whose lease ran out: their worker is gone."""
        now = now or self.clock.now()
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(callback_requests)
                .where(_r.status == DIALING, _r.claimed_until < now)
                .order_by(_r.claimed_until)
                .limit(limit)
            )
            return [dict(r) for r in rows.mappings()]


def asyncpg_dsn(database_url: str) -> str:
    """The plain libpq URL asyncpg wants, from any of our PostgreSQL URL spellings."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
