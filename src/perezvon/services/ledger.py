"""Minutes: a site's ledger and its top-ups. Only an operator changes a balance (DESIGN §7).

An account sees its own sites' ledgers; its own token cannot top up, nor set ``minutesBalance`` or
``apiPointsPerDay`` (``Forbidden``, see ``catalog.require_operator_for_money``): a tenant must not pay itself.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from ..clock import utcnow
from ..store import ledger as store
from ..store.db import Database
from ..store.snapshots import SnapshotCache
from ..store.tables import sites
from .accounts import Principal
from .catalog import Conflict, Forbidden, NotFound

MAX_BALANCE = 2**31 - 1


class Ledger:
    def __init__(self, db: Database, snapshots: SnapshotCache) -> None:
        self.db = db
        self.snapshots = snapshots

    async def _site(self, conn: Any, who: Principal, site_id: int) -> dict[str, Any]:
        row = (await conn.execute(select(sites).where(sites.c.id == site_id))).mappings().first()
        if row is None or not who.owns(row["account_id"]):
            raise NotFound(f"site {site_id}")
        return dict(row)

    async def entries(
        self, who: Principal, site_id: int, limit: int = 50, offset: int = 0
    ) -> tuple[list[dict[str, Any]], int]:
        async with self.db.read() as conn:
            await self._site(conn, who, site_id)
            return await store.entries(conn, site_id, limit, offset)

    async def history(self, who: Principal, site_id: int, days: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The site and its entries of the last ``days`` days, oldest first (for the cabinet's chart)."""
        async with self.db.read() as conn:
            site = await self._site(conn, who, site_id)
            return site, await store.since(conn, site_id, utcnow() - timedelta(days=days))

    async def top_up(self, who: Principal, site_id: int, minutes: int, note: str = "") -> dict[str, Any]:
        """Add minutes (a ``topup``) or take some back (a negative ``adjustment``, never below zero)."""
        if not who.is_operator:
            raise Forbidden("Only an operator token may top up a site's minutes")
        async with self.db.write() as conn:
            site = await self._site(conn, who, site_id)
            balance = site["minutes_balance"] + minutes
            if balance < 0:
                raise Conflict(f"the balance is {site['minutes_balance']} minutes: it cannot go below zero")
            if balance > MAX_BALANCE:  # the column is a 32-bit integer
                raise Conflict(f"the balance is {site['minutes_balance']} minutes: it cannot exceed {MAX_BALANCE}")
            kind = store.TOPUP if minutes > 0 else store.ADJUSTMENT
            entry = await store.record(conn, site_id, minutes, kind, utcnow(), note=note)
        self.snapshots.invalidate(site_id)
        return entry
