"""Real processes: ``perezvon worker`` serving its metrics over HTTP, ``serve`` writing JSON logs,
``serve --workers 2`` answering a scrape with the sum of its processes."""

from __future__ import annotations

import json
import re
import time

import httpx
import pytest

from calls.workers import seed, start_worker
from perezvon.store.db import Database
from support import ADMIN_TOKEN, free_port, start_server, stop_server

pytestmark = pytest.mark.e2e


def sample(text: str, series: str) -> float:
    """The value of ``series``, or the sum of every series it begins (``name{label="x"`` : any other labels)."""
    exact = series.endswith("}") or "{" not in series
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if (line.startswith(series + " ") if exact else line.startswith(series))
    )


async def scrape_until(client: httpx.AsyncClient, done, timeout: float = 30) -> str:  # type: ignore[no-untyped-def]
    """Scrape /metrics until ``done(text)`` holds (the worker is another process: its metrics are all we see)."""
    import asyncio

    deadline = time.monotonic() + timeout
    while True:
        text = (await client.get("/metrics")).text
        if done(text) or time.monotonic() > deadline:
            return text
        await asyncio.sleep(0.1)


async def test_a_worker_serves_its_metrics_and_health_on_its_port(database_url: str) -> None:
    db = Database(database_url)
    try:
        _, ids = await seed(db, 2)  # due now; the simulated line answers and talks
    finally:
        await db.dispose()
    port = free_port()
    worker = await start_worker(
        database_url,
        PEREZVON_METRICS_PORT=str(port),
        PEREZVON_LOG_FORMAT="json",
        PEREZVON_METRICS_TOKEN="scrape-0123456789abcdef",
    )
    try:
        headers = {"Authorization": "Bearer scrape-0123456789abcdef"}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=10) as client:
            assert (await client.get("/healthz")).json() == {"status": "ok"}
            assert (await client.get("/readyz")).json() == {"status": "ok", "checks": {"database": "ok"}}
            assert (await client.get("/metrics", headers={"Authorization": ""})).status_code == 401
            connected = 'perezvon_call_attempts_total{outcome="connected"}'
            text = await scrape_until(
                client, lambda t: sample(t, connected) == 2 and sample(t, "perezvon_active_calls") == 0
            )
            assert sample(text, connected) == 2, text
            assert sample(text, "perezvon_billed_seconds_total") >= 2  # a connected call bills at least a second
            assert sample(text, "perezvon_dispatch_lateness_seconds_count") == 2
            assert sample(text, "perezvon_requests_due") == 0
            for name in ("perezvon_webhook_deliveries_total", "perezvon_public_requests_total"):
                assert name in text, name
    finally:
        worker.terminate()
        assert await worker.wait() == 0, worker.output
    lines = [json.loads(line) for line in worker.lines]  # every line of the worker's log is one JSON object
    attempts = [
        line
        for line in lines
        if line.get("callback_request_id") in ids and re.match(r"request \d+ attempt \d+ \(", line["message"])
    ]
    ended = [line for line in attempts if line["message"].endswith("s billed")]
    assert len(ended) == 2 and all("connected" in line["message"] and line["level"] == "INFO" for line in ended)
    assert all(isinstance(line["attempt_id"], int) for line in attempts)
    assert all("(7900***4567)" in line["message"] for line in attempts)
    assert "79001234567" not in worker.output


def test_serve_writes_json_lines_with_request_ids_and_masked_phones(sqlite_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    server = start_server(sqlite_url, tmp_path, env={"PEREZVON_LOG_FORMAT": "json", "PEREZVON_RUN_WORKER": "false"})
    try:
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}", "X-Request-Id": "trace-0042"}
        with httpx.Client(base_url=server.base_url, headers=headers, timeout=10) as client:
            answer = client.get("/api/admin/v1/requests", params={"q": "79001234567"})
            assert answer.status_code == 200 and answer.headers["x-request-id"] == "trace-0042"
    finally:
        stop_server(server)
    lines = [json.loads(line) for line in server.log().splitlines() if line.strip()]
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines), lines
    [access] = [line for line in lines if line["logger"] == "uvicorn.access" and "/requests" in line["message"]]
    assert access["request_id"] == "trace-0042"
    assert "7900***4567" in access["message"]
    assert "79001234567" not in server.log()


async def test_serve_with_two_processes_answers_a_scrape_with_their_sum(sqlite_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    server = start_server(
        sqlite_url,
        tmp_path,
        args=("serve", "--workers", "2"),
        env={"PEREZVON_RUN_WORKER": "false", "PEREZVON_IP_RATE_LIMIT": "0"},
    )
    series = 'perezvon_public_requests_total{endpoint="routeKeyData"'
    try:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
            await wait_ready(client)
            before = sample((await client.get("/metrics")).text, series)
            for _ in range(40):  # new connections: the kernel spreads them over both processes
                async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as fresh:
                    await fresh.post("/api/widget/v1/route-key-data", json={"site": "none", "routeKey": "x"})
            scrapes = {sample((await client.get("/metrics")).text, series) - before for _ in range(6)}
    finally:
        stop_server(server)
    assert scrapes == {40.0}


async def wait_ready(client: httpx.AsyncClient, timeout: float = 30) -> None:
    import asyncio

    deadline = time.monotonic() + timeout
    while (await client.get("/readyz")).status_code != 200:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)


async def test_requests_due_counts_what_waits(database_url: str) -> None:
    from perezvon.app import create_app
    from support import make_settings

    db = Database(database_url)
    try:
        await seed(db, 3)
    finally:
        await db.dispose()
    app = create_app(make_settings(database_url))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            assert sample((await client.get("/metrics")).text, "perezvon_requests_due") == 3


async def test_serve_counts_its_in_process_workers_calls(live_server) -> None:  # type: ignore[no-untyped-def]
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    always = {
        "utcTimezone": "UTC+00:00",
        "hours": [{"dayOfWeek": d, "hour": h} for d in range(1, 8) for h in range(24)],
    }
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=10) as client:
        site = (
            await client.post("/api/admin/v1/sites", headers=admin, json={"name": "Live", "minutesBalance": 10})
        ).json()
        await client.post(
            f"/api/admin/v1/sites/{site['id']}/widgets",
            headers=admin,
            json={
                "routeKey": "my_form_1",
                "operatorPhones": ["79990000010"],
                "schedule": always,
                "callback": {"announcement": False},
            },
        )
        created = await client.post(
            "/api/widget/v1/requests", json={"site": site["siteKey"], "routeKey": "my_form_1", "phone": "79001234567"}
        )
        assert created.status_code == 200
        connected = 'perezvon_call_attempts_total{outcome="connected"}'
        text = await scrape_until(client, lambda t: sample(t, connected) == 1)
    assert sample(text, connected) == 1, live_server.log()
    assert sample(text, 'perezvon_public_requests_total{endpoint="createRequest",outcome="ok"}') == 1
