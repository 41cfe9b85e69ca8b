"""The call journal: callback requests with their attempts, filtered and paged, scoped by tenancy.

Every read costs what its page and its matches cost, not what the table holds: filters use the
indexes of migration 0004 (store/search.py), pages go by id (keyset cursors; ``offset`` still works
but costs what it skips), the total is counted only up to ``TOTAL_CAP`` matches, and the export
reads in batches by id.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from ..domain import callback as cb
from ..store import search
from ..store.db import Database
from ..store.tables import call_attempts, callback_requests, request_stats, sites, tracking_sessions
from .accounts import Principal
from .catalog import NotFound

STATUSES = cb.STATUSES  # the journal filters by the life cycle's statuses
# Totals are exact up to this many matches (DESIGN §7); past it a list says "at least this many".
TOTAL_CAP = 10_000
EXPORT_BATCH = 1000


@dataclass
class JournalFilter:
    site_id: int | None = None
    status: str | None = None
    route_key: str | None = None
    widget_id: int | None = None
    unit_id: int | None = None
    phone: str | None = None
    tag: str | None = None
    search: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None

    def narrowed_by(self) -> set[str]:
        """What narrows the rows beyond the site."""
        given = {
            "status": self.status,
            "route_key": self.route_key,
            "widget_id": self.widget_id,
            "unit_id": self.unit_id,
            "phone": self.phone,
            "tag": self.tag,
            "search": self.search,
            "created_from": self.created_from,
            "created_to": self.created_to,
        }
        return {name for name, value in given.items() if value is not None and value != ""}


@dataclass
class Page:
    rows: list[dict[str, Any]]
    attempts: dict[int, list[dict[str, Any]]]
    total: int
    total_exact: bool  # False: at least ``total`` (TOTAL_CAP) requests match
    older: int | None  # the ``before`` cursor of the next, older page; None at the oldest
    newer: int | None  # the ``after`` cursor of the previous, newer page; None at the newest


class Journal:
    def __init__(self, db: Database) -> None:
        self.db = db

    def _owned_sites(self, who: Principal):  # type: ignore[no-untyped-def]
        return select(sites.c.id).where(sites.c.account_id == who.account_id)

    def _scoped(self, who: Principal, flt: JournalFilter):  # type: ignore[no-untyped-def]
        query = select(callback_requests)
        if not who.is_operator:
            query = query.where(callback_requests.c.site_id.in_(self._owned_sites(who)))
        c = callback_requests.c
        sqlite = self.db.is_sqlite
        if flt.site_id is not None:
            query = query.where(c.site_id == flt.site_id)
        if flt.status:
            query = query.where(c.status == flt.status)
        if flt.route_key:
            query = query.where(c.route_key == flt.route_key)
        if flt.widget_id is not None:
            query = query.where(c.widget_id == flt.widget_id)
        if flt.unit_id is not None:
            query = query.where(c.unit_id == flt.unit_id)
        if flt.phone:
            query = query.where(search.phone_contains(flt.phone, sqlite=sqlite))
        if flt.tag:
            query = query.where(search.has_tag(flt.tag))
        if flt.search:
            query = query.where(search.text_matches(flt.search, sqlite=sqlite))
        if flt.created_from is not None:
            query = query.where(c.created_at >= flt.created_from)
        if flt.created_to is not None:
            query = query.where(c.created_at < flt.created_to)
        return query

    async def page(
        self,
        who: Principal,
        flt: JournalFilter,
        *,
        limit: int = 50,
        offset: int = 0,
        before: int | None = None,
        after: int | None = None,
    ) -> Page:
        """One page, newest first: older than ``before``, newer than ``after``, or past ``offset`` rows."""
        query = self._scoped(who, flt)
        c = callback_requests.c
        if after is not None:
            query = query.where(c.id > after).order_by(c.id.asc()).limit(limit + 1)
        else:
            if before is not None:
                query = query.where(c.id < before)
            query = query.order_by(c.id.desc()).limit(limit + 1).offset(offset)
        async with self.db.read() as conn:
            rows = [dict(r) for r in (await conn.execute(query)).mappings()]
            more = len(rows) > limit
            rows = rows[:limit]
            total, exact = await self._total(conn, who, flt)
            attempts = await self._attempts(conn, [r["id"] for r in rows])
        if after is not None:
            rows.reverse()
            older = rows[-1]["id"] if rows else after + 1
            newer = rows[0]["id"] if more else None
        else:
            older = rows[-1]["id"] if more else None
            newer = rows[0]["id"] if rows and (before is not None or offset > 0) else None
        return Page(rows, attempts, total, exact, older, newer)

    async def _total(self, conn, who: Principal, flt: JournalFilter) -> tuple[int, bool]:  # type: ignore[no-untyped-def]
        narrowed = flt.narrowed_by()
        counted = int((await conn.execute(self._capped_count(who, flt, narrowed))).scalar() or 0)
        if counted <= TOTAL_CAP:
            return counted, True
        if not narrowed:
            # The per-slot aggregates hold every request's count: exact past the cap too, for the cost of
            # the site's slots (96 a day of history) rather than of its rows.
            query = select(func.coalesce(func.sum(request_stats.c.requests), 0))
            return int(
                (await conn.execute(self._site_scope(query, request_stats.c.site_id, who, flt))).scalar() or 0
            ), True
        return TOTAL_CAP, False

    def _capped_count(self, who: Principal, flt: JournalFilter, narrowed: set[str]):  # type: ignore[no-untyped-def]
        """Matches counted up to TOTAL_CAP + 1, from a text filter's own index where it alone narrows."""
        driver = None
        if narrowed == {"search"}:
            driver = search.matches_by_site(needle=flt.search, sqlite=self.db.is_sqlite)
        elif narrowed == {"tag"}:
            driver = search.matches_by_site(tag=flt.tag, sqlite=self.db.is_sqlite)
        if driver is not None:
            capped = self._site_scope(driver, driver.selected_columns[1], who, flt).limit(TOTAL_CAP + 1)
        else:
            capped = self._scoped(who, flt).with_only_columns(callback_requests.c.id).limit(TOTAL_CAP + 1)
        return select(func.count()).select_from(capped.subquery())

    def _site_scope(self, query, site_id, who: Principal, flt: JournalFilter):  # type: ignore[no-untyped-def]
        if flt.site_id is not None:
            query = query.where(site_id == flt.site_id)
        if not who.is_operator:
            query = query.where(site_id.in_(self._owned_sites(who)))
        return query

    async def export(
        self, who: Principal, flt: JournalFilter, *, batch: int = EXPORT_BATCH
    ) -> AsyncIterator[tuple[list[dict[str, Any]], dict[int, list[dict[str, Any]]]]]:
        """Every matching request, newest first, in batches read by id: no count, no OFFSET, and no
        connection held between batches, so a slow download neither grows memory nor pins the database."""
        before: int | None = None
        c = callback_requests.c
        while True:
            query = self._scoped(who, flt).order_by(c.id.desc()).limit(batch)
            if before is not None:
                query = query.where(c.id < before)
            async with self.db.read() as conn:
                rows = [dict(r) for r in (await conn.execute(query)).mappings()]
                attempts = await self._attempts(conn, [r["id"] for r in rows])
            if rows:
                yield rows, attempts
            if len(rows) < batch:
                return
            before = rows[-1]["id"]

    async def get(self, who: Principal, request_id: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        async with self.db.read() as conn:
            row = (
                (await conn.execute(self._scoped(who, JournalFilter()).where(callback_requests.c.id == request_id)))
                .mappings()
                .first()
            )
            if row is None:
                raise NotFound(f"request {request_id}")
            attempts = (await self._attempts(conn, [request_id])).get(request_id, [])
        return dict(row), attempts

    async def recording_path(self, who: Principal, attempt_id: int) -> str:
        """The stored path of an attempt's recording, for whoever may read its request (else NotFound)."""
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    select(call_attempts.c.request_id, call_attempts.c.recording_path).where(
                        call_attempts.c.id == attempt_id
                    )
                )
            ).first()
        if row is None or not row.recording_path:
            raise NotFound(f"attempt {attempt_id}")
        await self.get(who, row.request_id)
        return str(row.recording_path)

    async def session(self, session_id: int | None) -> dict[str, Any] | None:
        if session_id is None:
            return None
        async with self.db.read() as conn:
            row = (
                (await conn.execute(select(tracking_sessions).where(tracking_sessions.c.id == session_id)))
                .mappings()
                .first()
            )
        return dict(row) if row else None

    @staticmethod
    async def _attempts(conn, request_ids: list[int]) -> dict[int, list[dict[str, Any]]]:  # type: ignore[no-untyped-def]
        if not request_ids:
            return {}
        rows = await conn.execute(
            select(call_attempts)
            .where(call_attempts.c.request_id.in_(request_ids))
            .order_by(call_attempts.c.request_id, call_attempts.c.number)
        )
        grouped: dict[int, list[dict[str, Any]]] = {}
        for row in rows.mappings():
            grouped.setdefault(row["request_id"], []).append(dict(row))
        return grouped
