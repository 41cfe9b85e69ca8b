"""The call journal: callback requests with their attempts, filtered and paged, scoped by tenancy."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, cast, func, select

from ..domain import callback as cb
from ..store.db import Database
from ..store.tables import call_attempts, callback_requests, sites, tracking_sessions
from .accounts import Principal
from .catalog import NotFound

STATUSES = cb.STATUSES  # the journal filters by the life cycle's statuses


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


class Journal:
    def __init__(self, db: Database) -> None:
        self.db = db

    def _scoped(self, who: Principal, flt: JournalFilter):  # type: ignore[no-untyped-def]
        query = select(callback_requests)
        if not who.is_operator:
            owned = select(sites.c.id).where(sites.c.account_id == who.account_id)
            query = query.where(callback_requests.c.site_id.in_(owned))
        c = callback_requests.c
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
            query = query.where(c.phone.contains(flt.phone, autoescape=True))
        if flt.tag:
            # JSON arrays are stored as text on both databases; match the quoted element.
            query = query.where(cast(c.tags, String).contains(_json_string(flt.tag), autoescape=True))
        if flt.search:
            needle = flt.search.lower()
            query = query.where(
                func.lower(cast(c.fields, String)).contains(needle, autoescape=True)
                | c.phone.contains(needle, autoescape=True)
                | func.lower(cast(c.tags, String)).contains(needle, autoescape=True)
            )
        if flt.created_from is not None:
            query = query.where(c.created_at >= flt.created_from)
        if flt.created_to is not None:
            query = query.where(c.created_at < flt.created_to)
        return query

    async def list(
        self, who: Principal, flt: JournalFilter, *, limit: int = 50, offset: int = 0
    ) -> tuple[list[dict[str, Any]], dict[int, list[dict[str, Any]]], int]:
        query = self._scoped(who, flt)
        async with self.db.read() as conn:
            total = (await conn.execute(select(func.count()).select_from(query.subquery()))).scalar() or 0
            rows = [
                dict(r)
                for r in (
                    await conn.execute(
                        query.order_by(callback_requests.c.id.desc()).limit(limit).offset(offset)
                    )
                ).mappings()
            ]
            attempts = await self._attempts(conn, [r["id"] for r in rows])
        return rows, attempts, int(total)

    async def get(self, who: Principal, request_id: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        async with self.db.read() as conn:
            row = (
                await conn.execute(self._scoped(who, JournalFilter()).where(callback_requests.c.id == request_id))
            ).mappings().first()
            if row is None:
                raise NotFound(f"request {request_id}")
            attempts = (await self._attempts(conn, [request_id])).get(request_id, [])
        return dict(row), attempts

    async def session(self, session_id: int | None) -> dict[str, Any] | None:
        if session_id is None:
            return None
        async with self.db.read() as conn:
            row = (
                await conn.execute(select(tracking_sessions).where(tracking_sessions.c.id == session_id))
            ).mappings().first()
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


def _json_string(value: str) -> str:
    import json

    return json.dumps(value)
