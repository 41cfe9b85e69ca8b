"""What readiness and the due-requests gauge ask of the database and Redis."""

from __future__ import annotations

import asyncio

from sqlalchemy import and_, exists, false, func, or_, select, text

from ..clock import utcnow
from ..store.db import Database
from ..store.tables import callback_requests, sites
from ..throttling import Guard

CHECK_TIMEOUT_S = 3.0  # a readiness probe must answer well within a load balancer's own timeout

_r = callback_requests.c


async def check_database(db: Database, timeout: float = CHECK_TIMEOUT_S) -> str:
    """``ok`` or the reason the database did not answer ``SELECT 1`` in time."""

    async def probe() -> None:
        async with db.read() as conn:
            await conn.execute(text("SELECT 1"))

    return await _checked(probe(), timeout)


async def check_redis(guard: Guard, timeout: float = CHECK_TIMEOUT_S) -> str:
    """``ok`` or the reason the limits' Redis did not answer a PING in time."""

    async def probe() -> None:
        if not await guard.storage.check():
            raise ConnectionError("Redis did not answer PING")

    return await _checked(probe(), timeout)


async def _checked(probe: object, timeout: float) -> str:
    try:
        await asyncio.wait_for(probe, timeout)  # type: ignore[arg-type]
    except TimeoutError:
        return f"no answer within {timeout:g} s"
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"[:300] or type(exc).__name__
    return "ok"


async def count_due(db: Database) -> int:
    """Pending requests due now that a worker may dial (not those a site holds back: ``defer`` policy
    while it has no minutes or is switched off — the due queue skips the same ones)."""
    held = exists().where(
        sites.c.id == _r.site_id,
        sites.c.non_working_policy == "defer",
        or_(sites.c.minutes_balance <= 0, sites.c.callback_active == false()),
    )
    query = (
        select(func.count())
        .select_from(callback_requests)
        .where(and_(_r.status == "pending", _r.next_attempt_at <= utcnow()), ~held)
    )
    async with db.read() as conn:
        return int((await conn.execute(query)).scalar() or 0)
