"""The reports' cost against the floor of reading the same rows: Calltouch's request export and the
attribution report over N requests on a fresh SQLite file (or PostgreSQL with --database-url).

    .venv/bin/python bench/reports.py                  # 20 000 requests, 3 rounds, SQLite
    .venv/bin/python bench/reports.py --requests 50000 --database-url postgresql://127.0.0.1/pzv_bench

Baselines, measured alternately with the thing measured, same run, same rows:
- export: ``SELECT *`` of the range's requests joined to their sessions, every row fetched (what any
  export must at least read); the export is RequestExport's batches plus export_item and JSON per row.
- attribution: ``SELECT count(*)`` over the same range (the cheapest full pass); the report is the
  grouped query with its UTM extraction and the per-request minutes.
Prints medians and ratios. Nothing listens; the temporary database is removed afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, insert, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from perezvon.api.calltouch_export import _encode, export_item  # noqa: E402
from perezvon.services.accounts import OPERATOR  # noqa: E402
from perezvon.services.attribution import Attribution, Period  # noqa: E402
from perezvon.services.request_export import RequestExport, day_bounds  # noqa: E402
from perezvon.store.db import Database  # noqa: E402
from perezvon.store.migrate import upgrade  # noqa: E402
from perezvon.store.tables import (  # noqa: E402
    call_attempts,
    callback_requests,
    sites,
    tracking_sessions,
    widgets,
)

UTM = [
    {"utmSource": "google", "utmMedium": "cpc", "utmCampaign": "winter_sale"},
    {"utmSource": "yandex", "utmMedium": "cpc", "utmCampaign": "brand"},
    {"utmSource": "newsletter", "utmMedium": "email", "utmCampaign": "november"},
    {},
]


async def seed(db: Database, n: int, first: date) -> int:
    rng = random.Random(7)
    now = datetime.now(UTC)
    async with db.write() as conn:
        site_id = (
            await conn.execute(
                insert(sites).values(
                    name="Bench",
                    site_key="bench",
                    allowed_origins=[],
                    timezone="Europe/Moscow",
                    minutes_balance=10**6,
                    callback_active=True,
                    api_points_per_day=10**9,
                    api_point_costs={},
                    webhook_urls=[],
                    webhook_secret="x",
                    created_at=now,
                )
            )
        ).inserted_primary_key[0]
        widget_id = (
            await conn.execute(
                insert(widgets).values(
                    site_id=site_id,
                    route_key="my_form_1",
                    enabled=True,
                    operator_phones=[],
                    schedule_timezone="Europe/Moscow",
                    schedule_hours=[],
                    collect_non_working=True,
                    throttle_user_timeout_s=0,
                    throttle_max_per_phone=0,
                    throttle_period_s=3600,
                    callback={},
                    created_at=now,
                )
            )
        ).inserted_primary_key[0]
        sessions = []
        for utm in UTM:
            sessions.append(
                (
                    await conn.execute(
                        insert(tracking_sessions).values(
                            site_id=site_id, landing_url="https://shop.example/", utm=utm, created_at=now
                        )
                    )
                ).inserted_primary_key[0]
            )
        start = datetime(first.year, first.month, first.day, tzinfo=UTC)
        rows = []
        for i in range(n):
            created = start + timedelta(seconds=rng.randrange(30 * 86400))
            rows.append(
                {
                    "site_id": site_id,
                    "widget_id": widget_id,
                    "route_key": "my_form_1",
                    "phone": f"7900{i:07d}",
                    "fields": [{"name": "Имя", "value": "Иван"}],
                    "custom_fields": [],
                    "tags": ["landing"],
                    "due_at": created,
                    "session_id": rng.choice(sessions),
                    "source": "js",
                    "utm": {},
                    "status": rng.choice(["completed", "completed", "failed", "pending"]),
                    "created_at": created,
                    "updated_at": created,
                }
            )
        for chunk in range(0, n, 2000):
            await conn.execute(insert(callback_requests), rows[chunk : chunk + 2000])
        ids = list((await conn.execute(select(callback_requests.c.id))).scalars())
        attempts = [
            {"request_id": rid, "number": 1, "started_at": now, "ended_at": now, "outcome": "connected",
             "billed_seconds": rng.randrange(1, 300)}
            for rid in ids
        ]  # fmt: skip
        for chunk in range(0, n, 2000):
            await conn.execute(insert(call_attempts), attempts[chunk : chunk + 2000])
    return int(site_id)


async def timed(fn) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    await fn()
    return time.perf_counter() - started


async def measure(args: argparse.Namespace, url: str) -> None:
    db = Database(url)
    first = date.today() - timedelta(days=40)
    last = first + timedelta(days=31)
    site_id = await seed(db, args.requests, first)
    start, end = day_bounds("Europe/Moscow", first, last)
    c = callback_requests.c
    export, attribution = RequestExport(db), Attribution(db)

    async def read_floor() -> None:
        query = (
            select(callback_requests, tracking_sessions.c.landing_url, tracking_sessions.c.utm)
            .select_from(callback_requests.outerjoin(tracking_sessions, tracking_sessions.c.id == c.session_id))
            .where(c.site_id == site_id, c.created_at >= start, c.created_at < end)
        )
        async with db.read() as conn:
            assert len((await conn.execute(query)).all()) == args.requests

    async def run_export() -> None:
        count = 0
        async for batch in export.rows(OPERATOR, first, last, site_id):
            count += len("".join(_encode(export_item(row, True)) for row in batch)) > 0 and len(batch)
        assert count == args.requests

    async def count_floor() -> None:
        query = select(func.count()).where(c.site_id == site_id, c.created_at >= start, c.created_at < end)
        async with db.read() as conn:
            assert (await conn.execute(query)).scalar() == args.requests

    async def run_report() -> None:
        report = await attribution.report(OPERATOR, Period(first, last, ["source", "medium", "campaign"]), site_id)
        assert report.total.requests == args.requests

    results: dict[str, list[float]] = {k: [] for k in ("read", "export", "count", "report")}
    for _ in range(args.rounds):
        for name, fn in (
            ("read", read_floor),
            ("export", run_export),
            ("count", count_floor),
            ("report", run_report),
        ):
            results[name].append(await timed(fn))
    await db.dispose()
    med = {k: statistics.median(v) for k, v in results.items()}
    kind = "PostgreSQL" if args.database_url.startswith("postgresql") else "SQLite"
    print(f"{args.requests} requests, {args.rounds} rounds, {kind}")
    print(
        f"export:      {med['export']:.3f} s ({args.requests / med['export']:.0f} rows/s); "
        f"floor read {med['read']:.3f} s; ratio {med['export'] / med['read']:.2f}x"
    )
    print(f"attribution: {med['report']:.3f} s; floor count(*) {med['count']:.3f} s; "
      f"ratio {med['report'] / med['count']:.2f}x")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database-url", default="", help="an empty PostgreSQL database (default: a temp SQLite)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{tmp}/bench.db"
        upgrade(url)  # Alembic runs its own event loop: before ours starts
        asyncio.run(measure(args, url))


if __name__ == "__main__":
    main()
