"""Where the requests came from: requests, connected calls and billed minutes by UTM source / medium /
campaign, for a range of days.

A request's UTM values are those it was sent with (the server-side create carries them), else those of
its tracking session (what ``ctw.js`` read from the landing page). Days are local to each site, as in
the journal. Minutes are whole billed minutes, per attempt, as the balance is charged (a 12 s call is
1 minute). The grouping runs in the database: the report costs what the range's requests cost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.sql.elements import ColumnElement

from ..domain.errors import FieldErrors
from ..store.db import Database
from ..store.tables import call_attempts, callback_requests, tracking_sessions
from .accounts import Principal
from .request_export import day_bounds, sites_in_scope

DIMENSIONS = {"source": "utmSource", "medium": "utmMedium", "campaign": "utmCampaign"}
DEFAULT_DAYS = 30
MAX_DAYS = 366


@dataclass(frozen=True)
class Period:
    first: date
    last: date
    group_by: list[str]


def read_period(date_from: str | None, date_to: str | None, group_by: str | None, today: date) -> Period:
    """The report's parameters as the admin API and the cabinet take them: ISO days (default: the last
    30 days up to ``today``) and ``groupBy``, a comma list of source, medium, campaign (default: all
    three). Raises a validation_error naming every bad parameter."""
    errors = FieldErrors()

    def day(value: str | None, name: str, default: date) -> date:
        if not value:
            return default
        try:
            if not value.isascii():
                raise ValueError(value)
            return date.fromisoformat(value)
        except ValueError:
            errors.add(name, f"{name} must be a date YYYY-MM-DD")
            return default

    last = day(date_to, "dateTo", today)
    first = day(date_from, "dateFrom", last - timedelta(days=DEFAULT_DAYS - 1))
    if first > last:
        errors.add("dateFrom", "dateFrom must not be after dateTo")
    elif (last - first).days >= MAX_DAYS:
        errors.add("dateFrom", f"a report covers at most {MAX_DAYS} days")
    dims = [d.strip() for d in (group_by or "source,medium,campaign").split(",") if d.strip()]
    unknown = [d for d in dims if d not in DIMENSIONS]
    if unknown or not dims or len(set(dims)) != len(dims):
        errors.add("groupBy", "groupBy is a comma list of source, medium, campaign (each once)")
    errors.raise_if_any()
    return Period(first, last, [d for d in DIMENSIONS if d in dims])


@dataclass
class Line:
    """One group of the report: its UTM values (None = not given) and its counts."""

    source: str | None = None
    medium: str | None = None
    campaign: str | None = None
    requests: int = 0
    connected: int = 0
    finished: int = 0  # connected or failed: the ones whose outcome is known
    minutes: int = 0

    @property
    def connection_rate(self) -> float | None:
        """Connected among the requests whose outcome is known (as the dashboard's answered share)."""
        return self.connected / self.finished if self.finished else None

    def add(self, other: Line) -> None:
        self.requests += other.requests
        self.connected += other.connected
        self.finished += other.finished
        self.minutes += other.minutes


@dataclass
class Report:
    first: date
    last: date
    group_by: list[str]
    lines: list[Line]
    total: Line = field(default_factory=Line)


def _utm(key: str) -> ColumnElement[Any]:
    """The request's own value, else its session's, else NULL ("" counts as not given)."""
    own = func.nullif(callback_requests.c.utm[key].as_string(), "")
    visit = func.nullif(tracking_sessions.c.utm[key].as_string(), "")
    return func.coalesce(own, visit)


class Attribution:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def report(self, who: Principal, period: Period, site_id: int | None = None) -> Report:
        first, last, group_by = period.first, period.last, period.group_by
        chosen = await sites_in_scope(self.db, who, site_id)
        async with self.db.read() as conn:
            merged: dict[tuple[str | None, ...], Line] = {}
            for site in chosen:
                for line in await self._site_lines(conn, site, first, last, group_by):
                    key = tuple(getattr(line, d) for d in group_by)
                    merged.setdefault(key, Line(**dict(zip(group_by, key, strict=True)))).add(line)
        lines = sorted(
            merged.values(), key=lambda x: (-x.requests, -x.connected, [getattr(x, d) or "" for d in group_by])
        )
        total = Line()
        for line in lines:
            total.add(line)
        return Report(first, last, group_by, lines, total)

    @staticmethod
    async def _site_lines(conn: Any, site: dict[str, Any], first: date, last: date, group_by: list[str]) -> list[Line]:
        """The site's groups, in two grouped passes (requests, then their attempts' minutes) that the outer
        merge adds up: one query joining an attempts aggregate made PostgreSQL loop over it per request."""
        start, end = day_bounds(site["timezone"], first, last)
        c, a = callback_requests.c, call_attempts.c
        keys = [_utm(DIMENSIONS[d]).label(d) for d in group_by]
        visits = callback_requests.outerjoin(tracking_sessions, tracking_sessions.c.id == c.session_id)
        in_range = (c.site_id == site["id"], c.created_at >= start, c.created_at < end)
        counts = (
            select(
                *keys,
                func.count().label("requests"),
                func.sum(case((c.status == "completed", 1), else_=0)).label("connected"),
                func.sum(case((c.status.in_(("completed", "failed")), 1), else_=0)).label("finished"),
            )
            .select_from(visits)
            .where(*in_range)
            .group_by(*(k.element for k in keys))
        )
        minutes = (
            select(*keys, func.sum((a.billed_seconds + 59) // 60).label("minutes"))  # each call rounded up
            .select_from(visits.join(call_attempts, a.request_id == c.id))
            .where(*in_range, a.billed_seconds > 0)
            .group_by(*(k.element for k in keys))
        )
        lines = []
        for row in (await conn.execute(counts)).mappings():
            lines.append(
                Line(
                    **{d: row[d] for d in group_by},
                    requests=int(row["requests"]),
                    connected=int(row["connected"] or 0),
                    finished=int(row["finished"] or 0),
                )
            )
        for row in (await conn.execute(minutes)).mappings():
            lines.append(Line(**{d: row[d] for d in group_by}, minutes=int(row["minutes"] or 0)))
        return lines
