"""The webhook outbox: ``webhook_deliveries`` rows, written in the same transaction as the change they
announce, then claimed and sent by the worker's sender (``calls/webhooks.py``).

Every query on that table lives here: adding rows (``enqueue``), the sender's claim and result writes,
and the admin log. The bodies are built above (``services/requests.py``); this module stores them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from .db import Database
from .tables import sites, webhook_deliveries

# Webhook events (fixed: docs/callbacks.md).
CREATED = "request.created"
FINISHED = "request.finished"

# Delivery statuses.
PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"
DELIVERY_STATUSES = (PENDING, DELIVERED, FAILED)

_w = webhook_deliveries.c


@dataclass(frozen=True)
class Message:
    """One event about one request, to every webhook URL of its site."""

    site_id: int
    urls: tuple[str, ...]
    event: str
    request_id: int | None
    body: dict[str, Any]


async def enqueue(conn: AsyncConnection, messages: Iterable[Message], now: datetime) -> int:
    """Add one delivery per URL of each message, inside the caller's transaction; returns how many."""
    rows = [
        {
            "site_id": m.site_id,
            "request_id": m.request_id,
            "event": m.event,
            "url": url,
            "payload": m.body,
            "status": PENDING,
            "tries": 0,
            "next_try_at": now,
            "created_at": now,
        }
        for m in messages
        for url in m.urls
    ]
    if rows:
        await conn.execute(insert(webhook_deliveries), rows)
    return len(rows)


# -- the sender's side ------------------------------------------------------------------------------------


def _due(now: datetime) -> Any:
    return (_w.status == PENDING) & (_w.next_try_at <= now)


async def claim_due(db: Database, limit: int, now: datetime, lease: timedelta) -> tuple[list[dict], dict[int, str]]:
    """Claim up to ``limit`` due deliveries; returns them and their sites' webhook secrets.

    The claim pushes ``next_try_at`` past the lease: a second sender's conditional update finds them no
    longer due (PostgreSQL re-checks the WHERE after waiting on the row lock), and a sender that dies
    mid-try has its deliveries retried once the lease is over.
    """
    async with db.write() as conn:
        ids = list((await conn.execute(select(_w.id).where(_due(now)).order_by(_w.next_try_at).limit(limit))).scalars())
        if not ids:
            return [], {}
        rows = (
            (
                await conn.execute(
                    update(webhook_deliveries)
                    .where(_w.id.in_(ids), _due(now))
                    .values(tries=_w.tries + 1, next_try_at=now + lease)
                    .returning(*webhook_deliveries.c)
                )
            )
            .mappings()
            .all()
        )
        secrets = dict(
            (
                await conn.execute(
                    select(sites.c.id, sites.c.webhook_secret).where(sites.c.id.in_({r["site_id"] for r in rows}))
                )
            ).all()
        )
    return [dict(r) for r in rows], secrets


async def record_try(db: Database, delivery_id: int, values: dict[str, Any]) -> None:
    async with db.write() as conn:
        await conn.execute(update(webhook_deliveries).where(_w.id == delivery_id).values(**values))


def delivered(now: datetime, status_code: int) -> dict[str, Any]:
    return {
        "status": DELIVERED,
        "delivered_at": now,
        "last_status_code": status_code,
        "last_error": None,
        "next_try_at": None,
    }


def retry_or_fail(retry_at: datetime | None, status_code: int | None, error: str) -> dict[str, Any]:
    """A failed try: back to pending until ``retry_at``, or ``failed`` for good when it is None."""
    return {
        "status": PENDING if retry_at is not None else FAILED,
        "next_try_at": retry_at,
        "last_status_code": status_code,
        "last_error": error,
    }


async def next_due(db: Database) -> datetime | None:
    async with db.read() as conn:
        return (
            await conn.execute(select(_w.next_try_at).where(_w.status == PENDING).order_by(_w.next_try_at).limit(1))
        ).scalar()


# -- the admin log -------------------------------------------------------------------------------------------


async def deliveries_of_site(
    db: Database, site_id: int, *, status: str | None, request_id: int | None, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """A site's deliveries, newest first, and how many match in all."""
    query = select(webhook_deliveries).where(_w.site_id == site_id)
    if status is not None:
        query = query.where(_w.status == status)
    if request_id is not None:
        query = query.where(_w.request_id == request_id)
    async with db.read() as conn:
        total = (await conn.execute(select(func.count()).select_from(query.subquery()))).scalar() or 0
        rows = (await conn.execute(query.order_by(_w.id.desc()).limit(limit).offset(offset))).mappings().all()
    return [dict(r) for r in rows], int(total)
