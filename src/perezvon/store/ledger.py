"""The minutes ledger's queries: a balance change and its row, always in one transaction.

``sites.minutes_balance`` stays the number every public call reads; ``minutes_ledger`` explains it.
Every function here takes the caller's connection, so an entry commits or rolls back with the change
it records (a call's charge with its attempt, a new site with its starting balance).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from .tables import minutes_ledger, sites

TOPUP = "topup"
CALL = "call"
ADJUSTMENT = "adjustment"
KINDS = (TOPUP, CALL, ADJUSTMENT)

_l = minutes_ledger.c


async def record(
    conn: AsyncConnection,
    site_id: int,
    minutes: int,
    kind: str,
    at: datetime,
    *,
    note: str = "",
    request_id: int | None = None,
    move_balance: bool = True,
) -> dict[str, Any]:
    """Add an entry and move the balance by ``minutes`` (signed); returns the entry's row.

    ``move_balance=False`` is for a balance the caller has just written itself (a new site's first one).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown ledger kind {kind!r}")
    if move_balance and minutes:
        await conn.execute(
            update(sites).where(sites.c.id == site_id).values(minutes_balance=sites.c.minutes_balance + minutes)
        )
    result = await conn.execute(
        insert(minutes_ledger).values(
            site_id=site_id, at=at, minutes=minutes, kind=kind, note=note[:255], request_id=request_id
        )
    )
    return {
        "id": int(result.inserted_primary_key[0]),
        "site_id": site_id,
        "at": at,
        "minutes": minutes,
        "kind": kind,
        "request_id": request_id,
        "note": note[:255],
    }


async def record_calls(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """Entries for calls whose charge the caller has already taken from the balance (the engine's batch):
    each row ``{site_id, minutes (negative), request_id, at}``."""
    if rows:
        await conn.execute(insert(minutes_ledger), [{"kind": CALL, "note": "", **row} for row in rows])


async def entries(conn: AsyncConnection, site_id: int, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    """A site's entries, newest first, and how many there are."""
    query = select(minutes_ledger).where(_l.site_id == site_id)
    rows = (await conn.execute(query.order_by(_l.id.desc()).limit(limit).offset(offset))).mappings().all()
    total = (await conn.execute(select(func.count()).where(_l.site_id == site_id))).scalar() or 0
    return [dict(r) for r in rows], int(total)


async def since(conn: AsyncConnection, site_id: int, moment: datetime) -> list[dict[str, Any]]:
    """A site's entries from ``moment`` on, oldest first."""
    query = select(minutes_ledger).where(_l.site_id == site_id, _l.at >= moment).order_by(_l.id)
    return [dict(r) for r in (await conn.execute(query)).mappings()]


async def total(conn: AsyncConnection, site_id: int) -> int:
    """The sum of a site's entries: what its balance must equal."""
    return int(
        (await conn.execute(select(func.coalesce(func.sum(_l.minutes), 0)).where(_l.site_id == site_id))).scalar() or 0
    )
