"""Dashboard numbers: per-day requests, answered share, time to callback and minutes spent."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from ..domain import callback as cb
from ..store.db import Database
from ..store.tables import call_attempts, callback_requests


@dataclass
class Day:
    day: date
    requests: int = 0
    completed: int = 0
    finished: int = 0  # completed + failed: the ones whose outcome is known
    waits: list[float] = field(default_factory=list)  # seconds from due to the visitor answering
    billed_seconds: int = 0

    @property
    def answered_share(self) -> float | None:
        return self.completed / self.finished if self.finished else None

    @property
    def median_wait(self) -> float | None:
        return statistics.median(self.waits) if self.waits else None

    @property
    def minutes(self) -> float:
        return self.billed_seconds / 60


@dataclass
class Summary:
    days: list[Day]

    @property
    def requests(self) -> int:
        return sum(d.requests for d in self.days)

    @property
    def answered_share(self) -> float | None:
        finished = sum(d.finished for d in self.days)
        return sum(d.completed for d in self.days) / finished if finished else None

    @property
    def median_wait(self) -> float | None:
        waits = [w for d in self.days for w in d.waits]
        return statistics.median(waits) if waits else None

    @property
    def minutes(self) -> float:
        return sum(d.billed_seconds for d in self.days) / 60


async def daily(db: Database, site_ids: list[int], zone: str, today: date, days: int = 30) -> Summary:
    """The last ``days`` days up to ``today`` (calendar days in ``zone``) for the given (owned) sites."""
    tz = ZoneInfo(zone)
    first = today - timedelta(days=days - 1)
    start = datetime(first.year, first.month, first.day, tzinfo=tz)
    buckets = {first + timedelta(days=i): Day(first + timedelta(days=i)) for i in range(days)}
    if not site_ids:
        return Summary(list(buckets.values()))
    c = callback_requests.c
    async with db.read() as conn:
        rows = [
            dict(r)
            for r in (
                await conn.execute(
                    select(c.id, c.created_at, c.due_at, c.status).where(c.site_id.in_(site_ids), c.created_at >= start)
                )
            ).mappings()
        ]
        attempts: dict[int, list[dict[str, Any]]] = {}
        ids = [r["id"] for r in rows]
        for chunk in range(0, len(ids), 500):  # keep IN lists small for both databases
            result = await conn.execute(
                select(call_attempts)
                .where(call_attempts.c.request_id.in_(ids[chunk : chunk + 500]))
                .order_by(call_attempts.c.request_id, call_attempts.c.number)
            )
            for a in result.mappings():
                attempts.setdefault(a["request_id"], []).append(dict(a))
    for row in rows:
        bucket = buckets.get(row["created_at"].astimezone(tz).date())
        if bucket is None:
            continue
        bucket.requests += 1
        if row["status"] == cb.COMPLETED:
            bucket.completed += 1
        if row["status"] in (cb.COMPLETED, cb.FAILED):
            bucket.finished += 1
        tries = attempts.get(row["id"], [])
        bucket.billed_seconds += sum(a["billed_seconds"] or 0 for a in tries)
        answered = [a["client_answered_at"] for a in tries if a["client_answered_at"] is not None]
        if answered:
            bucket.waits.append(max(0.0, (answered[0] - row["due_at"]).total_seconds()))
    return Summary(list(buckets.values()))
