"""deploy/ for real: the systemd units verify and their commands run; Debian's nginx with our site in
front of two API processes passes X-Forwarded-For to the per-IP limit and server-sent events unbuffered."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from perezvon.services.accounts import create_account
from perezvon.store.db import Database
from support import ADMIN_TOKEN, free_port

from .deploy_support import DEPLOY, PEREZVON_BIN, Started, run_unit, start_nginx, start_redis

pytestmark = pytest.mark.e2e

API_UNIT = DEPLOY / "systemd" / "perezvon-api@.service"
WORKER_UNIT = DEPLOY / "systemd" / "perezvon-worker.service"
ALWAYS = {"utcTimezone": "UTC+00:00", "hours": [{"dayOfWeek": d, "hour": h} for d in range(1, 8) for h in range(24)]}


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
@pytest.mark.parametrize("unit", [API_UNIT, WORKER_UNIT], ids=lambda p: p.name)
def test_the_units_pass_systemd_analyze_verify(unit: Path, tmp_path: Path) -> None:
    env_file = tmp_path / "perezvon.env"
    env_file.write_text((DEPLOY / "perezvon.env.example").read_text())
    text = unit.read_text().replace("/opt/perezvon/bin/perezvon", str(PEREZVON_BIN))
    text = text.replace("/etc/perezvon/perezvon.env", str(env_file))
    target = tmp_path / unit.name.replace("@.", "@8000.")
    target.write_text(text)
    result = subprocess.run(["systemd-analyze", "verify", str(target)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


def test_the_worker_unit_runs_and_serves_its_metrics(sqlite_url: str, tmp_path: Path) -> None:
    port = free_port()
    worker = run_unit(
        WORKER_UNIT, tmp_path, {"PEREZVON_DATABASE_URL": sqlite_url, "PEREZVON_METRICS_PORT": str(port)}, port=port
    )
    try:
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=10)
        assert ready.json() == {"status": "ok", "checks": {"database": "ok"}}
    finally:
        worker.stop()
    assert worker.process.returncode == 0, worker.log()


@pytest.fixture
def behind_nginx(sqlite_url: str, tmp_path: Path) -> Iterator[tuple[Started, list[Started]]]:
    """Two API processes from the systemd unit (shared SQLite file, limits in a Redis of our own) and
    nginx with deploy/nginx/perezvon.conf in front of them."""
    if shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists():
        pytest.skip("nginx is not installed (scripts/install-system-packages.sh)")
    redis = start_redis(tmp_path)
    env = {
        "PEREZVON_DATABASE_URL": sqlite_url,
        "PEREZVON_ADMIN_TOKEN": ADMIN_TOKEN,
        "PEREZVON_REDIS_URL": f"redis://127.0.0.1:{redis.port}/0",
        "PEREZVON_TRUSTED_PROXIES": "127.0.0.1",
        "PEREZVON_IP_RATE_LIMIT": "5",
        "PEREZVON_LOG_FORMAT": "json",
    }
    apis: list[Started] = []
    nginx = None
    try:
        for _ in range(2):
            port = free_port()
            apis.append(run_unit(API_UNIT, tmp_path, env, instance=str(port)))
        nginx = start_nginx(tmp_path, [api.port for api in apis])
        yield nginx, apis
    finally:
        for started in [nginx, *apis, redis]:
            if started is not None:
                started.stop()


def client_from(address: str, base_url: str) -> httpx.AsyncClient:
    """A client whose connections come from ``address`` (any 127.x address is this machine)."""
    return httpx.AsyncClient(base_url=base_url, timeout=10, transport=httpx.AsyncHTTPTransport(local_address=address))


async def test_x_forwarded_for_from_nginx_reaches_the_per_ip_limit(behind_nginx) -> None:  # type: ignore[no-untyped-def]
    nginx, apis = behind_nginx
    base = f"http://127.0.0.1:{nginx.port}"
    body = {"site": "none", "routeKey": "x"}
    path = "/api/widget/v1/route-key-data"
    async with client_from("127.0.0.2", base) as visitor, client_from("127.0.0.3", base) as neighbour:
        # 11 at once from one visitor (nginx spreads them over both processes; Redis shares the count).
        answers = await asyncio.gather(*(visitor.post(path, json=body) for _ in range(11)))
        refused = [a for a in answers if a.json().get("type") == "request_throttle_count"]
        assert len(answers) - len(refused) == 5, [a.text for a in answers]
        assert all("127.0.0.2" in a.json()["message"] for a in refused)
        # A forged header does not help: nginx overwrites it with the address it saw.
        forged = await visitor.post(path, json=body, headers={"X-Forwarded-For": "198.51.100.7"})
        assert forged.json()["type"] == "request_throttle_count" and "127.0.0.2" in forged.json()["message"]
        # Another visitor has a budget of its own (the limit is per client, not per nginx).
        assert (await neighbour.post(path, json=body)).json().get("type") != "request_throttle_count"
        # Each answer names its request; both processes served some.
        ids = [a.headers["x-request-id"] for a in answers]
        assert len(set(ids)) == 11
    logs = [api.log() for api in apis]
    assert all(any(rid in log for rid in ids) for log in logs), "nginx sent every request to one process"


async def test_server_sent_events_pass_nginx_unbuffered(behind_nginx, sqlite_url: str) -> None:  # type: ignore[no-untyped-def]
    nginx, apis = behind_nginx
    db = Database(sqlite_url)
    try:
        account_id = await create_account(db, "alice@example.com", "correct-horse-battery")
    finally:
        await db.dispose()
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    base = f"http://127.0.0.1:{nginx.port}"
    async with httpx.AsyncClient(base_url=base, timeout=10) as browser:
        site = (
            await browser.post("/api/admin/v1/sites", headers=admin, json={"name": "Alice's", "accountId": account_id})
        ).json()
        made = await browser.post(
            f"/api/admin/v1/sites/{site['id']}/widgets",
            headers=admin,
            json={"routeKey": "my_form_1", "schedule": ALWAYS},
        )
        assert made.status_code == 201, made.text
        request_ids = []
        for _ in apis:
            created = await browser.post(
                "/api/widget/v1/requests",
                json={
                    "site": site["siteKey"],
                    "routeKey": "my_form_1",
                    "phone": "79001234567",
                    "scheduleTime": "2099-01-01 10:00:00",
                },
            )
            request_ids.append(created.json()["callbackRequestId"])
        await log_in(browser, "alice@example.com", "correct-horse-battery")
        async with browser.stream("GET", "/cabinet/journal/events") as stream:
            assert stream.status_code == 200 and stream.headers["content-type"].startswith("text/event-stream")
            lines = stream.aiter_lines()
            assert await asyncio.wait_for(anext(lines), 10) == "retry: 3000"
            # The stream is served by one of the two processes: cancel one request in each, straight
            # at the process, and the one that holds the stream publishes its event on it.
            for api, request_id in zip(apis, request_ids, strict=True):
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api.port}", headers=admin) as direct:
                    assert (await direct.post(f"/api/admin/v1/requests/{request_id}/cancel")).status_code == 200
            data = await asyncio.wait_for(next_data(lines), 10)  # the stream stays open for a minute
    assert json.loads(data)["status"] == "cancelled" and json.loads(data)["requestId"] in request_ids


async def next_data(lines) -> str:  # type: ignore[no-untyped-def]
    async for line in lines:
        if line.startswith("data: "):
            return line.removeprefix("data: ")
    raise AssertionError("the stream ended without an event")


async def log_in(browser: httpx.AsyncClient, email: str, password: str) -> None:
    import re

    page = await browser.get("/cabinet/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf, page.text
    done = await browser.post("/cabinet/login", data={"email": email, "password": password, "csrf": csrf.group(1)})
    assert done.status_code == 303, done.text
