"""The journal at a call center's scale (issue #14): 10k / 100k / 1M realistic requests, every view
an admin uses, timed in-process through the real app (cabinet pages, admin API, CSV export).

Data: one account with four sites (Moscow, Novosibirsk, Almaty, UTC) holding every request, spread
over the last 30 days; 1-2 attempts each (outcomes, answer times, billed seconds as the engine writes
them), Russian and Latin names and comments, 0-2 tags of twenty, UTM. It is bulk-inserted through the
store (SQLAlchemy Core on the app's own engine), so the migration's triggers keep the search tables and
the aggregates exactly as they do for live writes; the build time is printed too.

Views (median of ``--repeat`` runs, after one warm-up): the dashboard, the journal page, cabinet and
API searches (Cyrillic, Latin, a phone part, a tag, one that matches nothing), status and site
filters, a page at 90 % of the rows by ``offset`` and by ``before`` cursor, one request, and the
30-day CSV export (first byte, all of it, the process's RSS growth while it streams).

Same-run baseline: ``GET /requests/{id}`` (one request by primary key) is the floor each view is
compared to; growth columns compare each size with the one before it (goal: ≤ 2× from 100k to 1M).

    .venv/bin/python bench/journal_scale.py                       # SQLite, 10k and 100k
    .venv/bin/python bench/journal_scale.py --sizes 1000000
    .venv/bin/python bench/journal_scale.py --sizes 10000,100000 \
        --pg-admin-url postgresql://postgres@127.0.0.1:5432/postgres   # PostgreSQL (fresh database each)

Loopback only; the temporary directory (and PostgreSQL databases) are removed afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import re
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

FIRST = ["Иван", "Мария", "Алексей", "Ольга", "Дмитрий", "Анна", "Сергей", "Елена", "Пётр", "Наталья",
         "John", "Maria", "Alex", "Olga", "David", "Anna", "Sergey", "Helen", "Peter", "Natalie"]  # fmt: skip
LAST = ["Петров", "Иванова", "Смирнов", "Кузнецова", "Попов", "Соколова", "Лебедев", "Новикова",
        "Smith", "Johnson", "Brown", "Taylor", "Miller", "Wilson", "Moore", "Anderson"]  # fmt: skip
COMMENTS = ["перезвоните после обеда", "нужна доставка", "вопрос по счёту", "call me back", "price list",
            "хочу подключить тариф", "", "", "", "интересует аренда", "returns policy"]  # fmt: skip
TAGS = [f"tag{i}" for i in range(16)] + ["vip", "ВИП", "новый", "повторный"]
ZONES = ["Europe/Moscow", "Asia/Novosibirsk", "Asia/Almaty", "UTC"]
OUTCOMES_FAILED = ["operator_no_answer", "client_no_answer", "client_busy", "error"]
PASSWORD = "bench-password-123"
BATCH = 5000


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms" if seconds < 10 else f"{seconds:,.1f} s"


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def make_rows(n: int, site_ids: list[int], now: datetime, rng: random.Random) -> Any:
    """Requests and attempts in batches: (requests, attempts) lists of dicts with explicit ids."""
    span = 30 * 86400 - 3600
    attempt_id = 0
    for start in range(0, n, BATCH):
        requests, attempts = [], []
        for i in range(start + 1, min(n, start + BATCH) + 1):
            created = now - timedelta(seconds=span * (n - i) / n + 60)  # ids grow with time, as in life
            status = rng.choices(["completed", "failed", "cancelled", "pending"], [60, 20, 5, 15])[0]
            fields = [{"name": "Имя", "value": f"{rng.choice(FIRST)} {rng.choice(LAST)}"}]
            if (comment := rng.choice(COMMENTS)) != "":
                fields.append({"name": "Комментарий", "value": comment})
            requests.append(
                {
                    "id": i,
                    "site_id": site_ids[i % len(site_ids)],
                    "route_key": "callback_form",
                    "phone": f"79{rng.randrange(10**9):09d}",
                    "fields": fields,
                    "custom_fields": [],
                    "tags": rng.sample(TAGS, rng.choice([0, 1, 1, 2])),
                    "due_at": created,
                    "next_attempt_at": None if status != "pending" else created,
                    "source": "js",
                    "utm": {"utm_source": rng.choice(["yandex", "google", "vk"]), "utm_medium": "cpc"},
                    "status": status,
                    "attempts_made": 0,
                    "finished_at": created + timedelta(minutes=2) if status in ("completed", "failed") else None,
                    "updated_at": created,
                    "created_at": created,
                }
            )
            tries = 0 if status in ("pending", "cancelled") else rng.choice([1, 1, 2])
            for number in range(1, tries + 1):
                attempt_id += 1
                started = created + timedelta(seconds=rng.randrange(5, 90) + 120 * (number - 1))
                answered = status == "completed" and number == tries
                talk = rng.randrange(20, 400) if answered else 0
                attempts.append(
                    {
                        "id": attempt_id,
                        "request_id": i,
                        "number": number,
                        "operator_phone": "79990000010",
                        "worker": "bench",
                        "started_at": started,
                        "operator_answered_at": started + timedelta(seconds=3),
                        "client_answered_at": started + timedelta(seconds=9) if answered else None,
                        "ended_at": started + timedelta(seconds=12 + talk),
                        "outcome": "connected" if answered else rng.choice(OUTCOMES_FAILED),
                        "billed_seconds": -(-talk // 60) * 60,
                    }
                )
        yield requests, attempts


async def build(url: str, n: int) -> tuple[float, int, str]:
    """Migrate and load ``n`` requests; returns (seconds, account id, admin token)."""
    from sqlalchemy import insert, text

    from perezvon.services.accounts import Principal, create_account, create_token
    from perezvon.services.catalog import Catalog
    from perezvon.store.db import Database
    from perezvon.store.migrate import upgrade
    from perezvon.store.snapshots import SnapshotCache
    from perezvon.store.tables import call_attempts, callback_requests

    await asyncio.to_thread(upgrade, url)
    db = Database(url)
    account = await create_account(db, "callcenter@example.com", PASSWORD)
    token = await create_token(db, account, "bench")
    catalog = Catalog(db, SnapshotCache(db))
    site_ids = []
    for zone in ZONES:
        site = await catalog.create_site(
            Principal(account),
            {"name": f"Site {zone}", "allowed_origins": [], "timezone": zone, "minutes_balance": 10**6,
             "callback_active": True, "api_points_per_day": 10**6, "webhook_urls": []},
        )  # fmt: skip
        site_ids.append(site["id"])
    began = time.perf_counter()
    rng = random.Random(14)
    now = datetime.now(UTC)
    for requests, attempts in make_rows(n, site_ids, now, rng):
        async with db.write() as conn:
            await conn.execute(insert(callback_requests), requests)
            if attempts:
                await conn.execute(insert(call_attempts), attempts)
    async with db.write() as conn:
        if not db.is_sqlite:
            for table in ("callback_requests", "call_attempts"):
                await conn.execute(
                    text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) FROM {table}")
                )
        await conn.execute(text("ANALYZE"))
    took = time.perf_counter() - began
    if not db.is_sqlite:
        # What autovacuum does within minutes on a live database; a bulk load outruns it (dead rows of
        # request_stats, visibility maps not yet set for index-only scans).
        await vacuum(url)
    await db.dispose()
    return took, account, token


async def vacuum(url: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


class Client:
    """The app in-process, as a logged-in cabinet user and as the account's API token."""

    def __init__(self, app: Any, token: str) -> None:
        import httpx

        self.app = app
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        self.http = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        self.api_headers = {"Authorization": f"Bearer {token}"}

    async def login(self) -> None:
        page = await self.http.get("/cabinet/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        form = {"email": "callcenter@example.com", "password": PASSWORD, "csrf": csrf}
        response = await self.http.post("/cabinet/login", data=form)
        assert response.status_code == 303, response.text

    async def get(self, path: str, **params: Any) -> Any:
        api = path.startswith("/api/")
        response = await self.http.get(path, params=params, headers=self.api_headers if api else None)
        assert response.status_code == 200, (path, response.status_code, response.text[:300])
        return response.json() if api else response.text

    async def export(self, query: dict[str, str]) -> tuple[float, float, int, float]:
        """The CSV export straight through ASGI: (first byte s, total s, bytes, RSS growth MB)."""
        cookies = "; ".join(f"{k}={v}" for k, v in self.http.cookies.items())
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
            "path": "/cabinet/journal.csv", "raw_path": b"/cabinet/journal.csv", "root_path": "",
            "query_string": urlencode(query).encode(),
            "headers": [(b"host", b"testserver"), (b"cookie", cookies.encode())],
            "client": ("127.0.0.1", 50000), "server": ("testserver", 80),
        }  # fmt: skip
        requested = asyncio.Event()
        began, first, size = time.perf_counter(), None, 0
        base = peak = rss_mb()

        async def receive() -> dict[str, Any]:
            if not requested.is_set():
                requested.set()
                return {"type": "http.request", "body": b"", "more_body": False}
            await asyncio.Event().wait()
            raise AssertionError

        async def send(message: dict[str, Any]) -> None:
            nonlocal first, size, peak
            if message["type"] == "http.response.start":
                assert message["status"] == 200, message
            body = message.get("body", b"")
            if body:
                first = first or time.perf_counter()
                size += len(body)
                peak = max(peak, rss_mb())

        await self.app(scope, receive, send)
        return (first or time.perf_counter()) - began, time.perf_counter() - began, size, peak - base


async def median_time(call: Callable[[], Awaitable[Any]], repeat: int) -> float:
    await call()  # warm-up: caches, prepared statements, the page cache
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        await call()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


async def measure(url: str, n: int, repeat: int) -> dict[str, Any]:
    from perezvon.app import create_app
    from perezvon.settings import Settings

    took, _account, token = await build(url, n)
    app = create_app(Settings(database_url=url, ip_rate_limit=0, run_worker=False))
    results: dict[str, Any] = {"build": took}
    async with app.router.lifespan_context(app):
        client = Client(app, token)
        await client.login()
        api = "/api/admin/v1/requests"
        probe = (await client.get(api, limit=1, offset=n // 2))["items"][0]
        phone_part = probe["phone"][3:9]
        deep = (await client.get(api, limit=1, offset=int(n * 0.9)))["items"][0]["id"]
        views: dict[str, Callable[[], Awaitable[Any]]] = {
            "dashboard": lambda: client.get("/cabinet/dashboard"),
            "journal page": lambda: client.get("/cabinet/journal"),
            "cabinet search q=иван": lambda: client.get("/cabinet/journal", q="иван"),
            "cabinet search, no match": lambda: client.get("/cabinet/journal", q="zzqqxx"),
            "API phone= (6 digits)": lambda: client.get(api, phone=phone_part),
            "API tag=vip": lambda: client.get(api, tag="vip"),
            "API q=SMITH": lambda: client.get(api, q="SMITH"),
            "API q=петров": lambda: client.get(api, q="петров"),
            "API status=failed": lambda: client.get(api, status="failed"),
            "API siteId=": lambda: client.get(api, siteId=probe["siteId"]),
            "API offset at 90 %": lambda: client.get(api, offset=int(n * 0.9)),
            "API before= at 90 %": lambda: client.get(api, before=deep),
            "API one request": lambda: client.get(f"{api}/{probe['id']}"),
        }
        for name, call in views.items():
            results[name] = await median_time(call, repeat)
        today = datetime.now(UTC).date()
        window = {"from": (today - timedelta(days=29)).isoformat(), "to": today.isoformat()}
        first, total, size, grown = await client.export(window)
        results["CSV 30 days: first byte"] = first
        results["CSV 30 days: all"] = total
        results["csv_mb"], results["csv_rss_mb"] = size / 2**20, grown
        results["rss_mb"] = rss_mb()
        await client.http.aclose()
    return results


async def pg_database(admin_url: str, name: str, create: bool) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        if create:
            await conn.execute(f'CREATE DATABASE "{name}"')
        else:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def report(label: str, runs: dict[int, dict[str, Any]]) -> None:
    sizes = sorted(runs)
    print(f"\n## {label} ({platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()})")
    head = " | ".join(f"{n:,}" for n in sizes)
    growth = " | ".join(f"{a // 1000}k→{b // 1000}k" for a, b in zip(sizes, sizes[1:], strict=False))
    print(f"| view | {head} | × one request | {growth} |")
    print("|---" * (len(sizes) * 2 + 1) + "|")
    keys = [k for k in runs[sizes[0]] if k not in ("build", "csv_mb", "csv_rss_mb", "rss_mb")]
    for key in keys:
        cells = [fmt_ms(runs[n][key]) for n in sizes]
        floor = runs[sizes[-1]]["API one request"]
        ratios = [f"{runs[b][key] / runs[a][key]:.2f}×" for a, b in zip(sizes, sizes[1:], strict=False)]
        print(f"| {key} | {' | '.join(cells)} | {runs[sizes[-1]][key] / floor:.1f} | {' | '.join(ratios)} |")
    for n in sizes:
        r = runs[n]
        print(
            f"{n:,}: built in {r['build']:.0f} s; CSV {r['csv_mb']:.0f} MB streamed, RSS +{r['csv_rss_mb']:.0f} MB "
            f"while it streamed; process RSS {r['rss_mb']:.0f} MB"
        )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated request counts")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per view (median)")
    parser.add_argument("--pg-admin-url", default="", help="run on PostgreSQL (creates and drops databases)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    runs: dict[int, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="pzv-journal-") as tmp:
        for n in sizes:
            if args.pg_admin_url:
                name = f"pzv_bench_journal_{uuid.uuid4().hex[:8]}"
                await pg_database(args.pg_admin_url, name, create=True)
                url = args.pg_admin_url.rsplit("/", 1)[0] + "/" + name
            else:
                url = f"sqlite:///{tmp}/journal-{n}.db"
            try:
                runs[n] = await measure(url, n, args.repeat)
            finally:
                if args.pg_admin_url:
                    await pg_database(args.pg_admin_url, name, create=False)
                else:
                    for suffix in ("", "-wal", "-shm"):
                        Path(f"{tmp}/journal-{n}.db{suffix}").unlink(missing_ok=True)
            print(
                f"{n:,} done: " + ", ".join(f"{k} {fmt_ms(v)}" for k, v in runs[n].items() if "mb" not in k), flush=True
            )
    report("PostgreSQL" if args.pg_admin_url else "SQLite", runs)


if __name__ == "__main__":
    asyncio.run(main())
