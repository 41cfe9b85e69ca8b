"""The journal read the way Calltouch's request export reads it: by site and local calendar days.

A day is a day in the site's own zone, as the site owner sees it: ``dateFrom=03/01/2026`` starts at
midnight in Berlin for a Berlin site and in Moscow for a Moscow one. Rows come site by site, oldest
first, in batches by (created_at, id), so an export of any size holds one batch in memory.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, select

from ..store.db import Database
from ..store.tables import callback_requests, sites, tracking_sessions
from .accounts import Principal
from .catalog import NotFound

BATCH = 500


@dataclass(frozen=True)
class ExportRow:
    request: dict[str, Any]
    session: dict[str, Any] | None  # the tracking session's landing URL and UTM, when it has one
    zone: str  # the site's zone, for local dates


def day_bounds(zone: str, first: date, last: date) -> tuple[datetime, datetime]:
    """[midnight of ``first``, midnight after ``last``) in ``zone``, as UTC."""
    tz = ZoneInfo(zone)
    start = datetime.combine(first, time(), tzinfo=tz).astimezone(UTC)
    end = datetime.combine(last + timedelta(days=1), time(), tzinfo=tz).astimezone(UTC)
    return start, end


async def sites_in_scope(db: Database, who: Principal, site_id: int | None) -> list[dict[str, Any]]:
    """The ids and zones of the sites a report reads: ``site_id`` alone, or all the principal's.
    A site of another account is NotFound, as everywhere."""
    query = select(sites.c.id, sites.c.timezone).order_by(sites.c.id)
    if site_id is not None:
        query = query.where(sites.c.id == site_id)
    if not who.is_operator:
        query = query.where(sites.c.account_id == who.account_id)
    async with db.read() as conn:
        found = [dict(r) for r in (await conn.execute(query)).mappings()]
    if site_id is not None and not found:
        raise NotFound(f"site {site_id}")
    return found


class RequestExport:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def rows(
        self, who: Principal, first: date, last: date, site_id: int | None = None
    ) -> AsyncIterator[list[ExportRow]]:
        """Batches of the requests created on days ``first``..``last`` (local to each site)."""
        for site in await sites_in_scope(self.db, who, site_id):
            start, end = day_bounds(site["timezone"], first, last)
            async for batch in self._site_rows(site["id"], site["timezone"], start, end):
                yield batch

    async def _site_rows(
        self, site_id: int, zone: str, start: datetime, end: datetime
    ) -> AsyncIterator[list[ExportRow]]:
        c = callback_requests.c
        # Ordered by created_at alone, so the (site_id, created_at) index gives the order and each batch
        # stops after BATCH rows (with "created_at, id" PostgreSQL read and sorted the whole range per
        # batch). Rows sharing the last batch's created_at are told apart by the ids already sent.
        query = (
            select(callback_requests, tracking_sessions.c.landing_url, tracking_sessions.c.utm.label("session_utm"))
            .select_from(callback_requests.outerjoin(tracking_sessions, tracking_sessions.c.id == c.session_id))
            .where(c.site_id == site_id, c.created_at >= start, c.created_at < end)
            .order_by(c.created_at)
            .limit(BATCH)
        )
        after: datetime | None = None
        sent_at_after: set[int] = set()
        while True:
            page = query
            if after is not None:
                page = page.where(c.created_at >= after)
                if sent_at_after:
                    page = page.where(~and_(c.created_at == after, c.id.in_(sent_at_after)))
            async with self.db.read() as conn:
                found = [dict(r) for r in (await conn.execute(page)).mappings()]
            if not found:
                return
            yield [_row(r, zone) for r in found]
            if len(found) < BATCH:
                return
            last = found[-1]["created_at"]
            tied = {r["id"] for r in found if r["created_at"] == last}
            sent_at_after = tied | sent_at_after if last == after else tied
            after = last


def _row(found: dict[str, Any], zone: str) -> ExportRow:
    landing, utm = found.pop("landing_url"), found.pop("session_utm")
    session = None if found["session_id"] is None else {"landing_url": landing or "", "utm": dict(utm or {})}
    return ExportRow(found, session, zone)
