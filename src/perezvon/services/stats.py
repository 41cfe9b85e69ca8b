"""Dashboard numbers: per-day requests, answered share, time to callback and minutes spent.

Read from the per-site, per-15-minute aggregates that triggers keep in step with the journal
(migration 0004): a day costs its 96 slots, whatever the history holds. The time to callback is kept
as a distribution in fixed buckets (``WAIT_EDGES``), so medians are estimates inside one bucket.
One query, one row per slot: 2 880 rows per site for 30 days.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from ..store.db import Database
from ..store.tables import STATS_SLOT_S, WAIT_COLUMNS, WAIT_EDGES, request_stats


def median_of_buckets(counts: list[int]) -> float | None:
    """The median of a bucketed distribution, interpolated linearly inside the bucket that holds it
    (the open last bucket answers its lower bound)."""
    total = sum(counts)
    if not total:
        return None
    middle = total / 2
    seen = 0
    for i, n in enumerate(counts):
        if n and seen + n >= middle:
            low = WAIT_EDGES[i - 1] if i else 0
            if i >= len(WAIT_EDGES):
                return float(low)
            return low + (WAIT_EDGES[i] - low) * (middle - seen) / n
        seen += n
    return float(WAIT_EDGES[-1])


@dataclass
class Day:
    day: date
    requests: int = 0
    completed: int = 0
    finished: int = 0  # completed + failed: the ones whose outcome is known
    waits: list[int] = field(default_factory=lambda: [0] * (len(WAIT_EDGES) + 1))  # requests per wait bucket
    billed_seconds: int = 0

    @property
    def answered_share(self) -> float | None:
        return self.completed / self.finished if self.finished else None

    @property
    def median_wait(self) -> float | None:
        return median_of_buckets(self.waits)

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
        return median_of_buckets([sum(d.waits[i] for d in self.days) for i in range(len(WAIT_EDGES) + 1)])

    @property
    def minutes(self) -> float:
        return sum(d.billed_seconds for d in self.days) / 60


async def daily(db: Database, site_ids: list[int], zone: str, today: date, days: int = 30) -> Summary:
    """The last ``days`` days up to ``today`` (calendar days in ``zone``) for the given (owned) sites,
    by the day each request was created."""
    tz = ZoneInfo(zone)
    first = today - timedelta(days=days - 1)
    buckets = {first + timedelta(days=i): Day(first + timedelta(days=i)) for i in range(days)}
    if not site_ids:
        return Summary(list(buckets.values()))
    start = datetime(first.year, first.month, first.day, tzinfo=tz)
    end = start + timedelta(days=days + 1)  # past the last day in any case; days outside are dropped
    low, high = int(start.timestamp()) // STATS_SLOT_S * STATS_SLOT_S, int(end.timestamp())
    s = request_stats.c
    local_day = _day_of_slot(tz)
    sums = [func.sum(s[name]) for name in ("requests", "completed", "finished", "billed_seconds", *WAIT_COLUMNS)]
    async with db.read() as conn:
        slots = await conn.execute(
            select(s.slot, *sums).where(s.site_id.in_(site_ids), s.slot >= low, s.slot < high).group_by(s.slot)
        )
        for slot, requests, completed, finished, billed, *waits in slots:
            day = buckets.get(local_day(slot))
            if day is not None:
                day.requests += int(requests)
                day.completed += int(completed)
                day.finished += int(finished)
                day.billed_seconds += int(billed)
                day.waits = [have + int(more) for have, more in zip(day.waits, waits, strict=True)]
    return Summary(list(buckets.values()))


def _day_of_slot(tz: ZoneInfo) -> Callable[[int], date]:
    """Slot -> calendar day in ``tz``, each slot converted once (the wait rows repeat them)."""
    days: dict[int, date] = {}

    def day(slot: int) -> date:
        found = days.get(slot)
        if found is None:
            found = days[slot] = datetime.fromtimestamp(slot, UTC).astimezone(tz).date()
        return found

    return day
