"""Limits stay exact under concurrency: calls in flight at once cannot spend past a budget."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from support import ADMIN_TOKEN, start_server, stop_server

from .deploy_support import start_redis

ALWAYS = {"utcTimezone": "UTC+00:00", "hours": [{"dayOfWeek": d, "hour": h} for d in range(1, 8) for h in range(24)]}


async def test_concurrent_calls_never_spend_past_the_daily_points(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    site, _ = await admin.site_with_widget()
    await admin.patch(f"/sites/{site['id']}", {"apiPointsPerDay": 3})
    body = {"site": site["siteKey"], "routeKey": "my_form_1"}
    answers = await asyncio.gather(
        *(app_client.post("/api/widget/v1/requests", json={**body, "phone": f"7900123456{i}"}) for i in range(8))
    )
    kinds = sorted(a.json().get("type", "ok") for a in answers)
    assert kinds == ["api_points_exhausted"] * 5 + ["ok"] * 3
    assert (await admin.get(f"/sites/{site['id']}"))["apiPointsSpentToday"] == 3


async def test_a_refused_call_gives_its_points_back(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    site, _ = await admin.site_with_widget()
    await admin.patch(f"/sites/{site['id']}", {"apiPointsPerDay": 2})
    await admin.post(f"/sites/{site['id']}/blacklist", {"phone": "79001234567"})
    body = {"site": site["siteKey"], "routeKey": "my_form_1"}
    refused = await app_client.post("/api/widget/v1/requests", json={**body, "phone": "79001234567"})
    assert refused.json()["type"] == "request_phone_blacklisted"
    assert (await admin.get(f"/sites/{site['id']}"))["apiPointsSpentToday"] == 0
    for phone in ("79001234568", "79001234569"):
        assert (await app_client.post("/api/widget/v1/requests", json={**body, "phone": phone})).status_code == 200
    last = await app_client.post("/api/widget/v1/requests", json={**body, "phone": "79001234570"})
    assert last.json()["type"] == "api_points_exhausted"
    assert last.json()["details"] == {"pointsPerDay": 2, "pointsSpent": 2}


@pytest.mark.e2e
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_four_api_processes_sharing_redis_keep_every_limit_exact(database_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """``serve --workers 4`` with Redis: limits hold across processes as they do in one."""
    redis = start_redis(tmp_path)
    server = start_server(
        database_url,
        tmp_path,
        args=("serve", "--workers", "4"),
        env={
            "PEREZVON_RUN_WORKER": "false",
            "PEREZVON_IP_RATE_LIMIT": "5",
            "PEREZVON_TRUSTED_PROXIES": "127.0.0.1",
            "PEREZVON_REDIS_URL": f"redis://127.0.0.1:{redis.port}/0",
        },
    )
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    try:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
            site = (
                await client.post("/api/admin/v1/sites", headers=admin, json={"name": "Shop", "apiPointsPerDay": 11})
            ).json()
            for route_key, throttle in (
                ("by_ip", {}),
                ("by_phone", {"maxRequestsPerPhone": 2, "periodSeconds": 3600}),
                ("by_user", {"userTimeoutSeconds": 600}),
            ):
                made = await client.post(
                    f"/api/admin/v1/sites/{site['id']}/widgets",
                    headers=admin,
                    json={"routeKey": route_key, "schedule": ALWAYS, "throttle": throttle},
                )
                assert made.status_code == 201, made.text

        limits = {"request_throttle_count", "request_throttle_timeout", "api_points_exhausted"}

        async def create(route_key: str, phone: str, ip: str) -> str:
            # A connection of its own each time: the kernel spreads them over the four processes.
            async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as fresh:
                answer = await fresh.post(
                    "/api/widget/v1/requests",
                    headers={"X-Forwarded-For": ip},
                    json={"site": site["siteKey"], "routeKey": route_key, "phone": phone},
                )
                body = answer.json()
                if body.get("type") not in (None, *limits):  # anything else: say what it was
                    return f"{body.get('type')}: {body.get('message')}"
                return body.get("type", "ok")

        by_ip = await asyncio.gather(*(create("by_ip", f"790000000{i:02d}"[-11:], "198.51.100.1") for i in range(11)))
        assert sorted(by_ip).count("ok") == 5 and set(by_ip) == {"ok", "request_throttle_count"}, by_ip
        by_phone = await asyncio.gather(*(create("by_phone", "79001234567", f"198.51.100.{10 + i}") for i in range(6)))
        assert by_phone.count("ok") == 2 and set(by_phone) == {"ok", "request_throttle_count"}, by_phone
        by_user = await asyncio.gather(*(create("by_user", f"7900765432{i}", "198.51.100.50") for i in range(4)))
        assert by_user.count("ok") == 1 and set(by_user) == {"ok", "request_throttle_timeout"}, by_user
        points = await asyncio.gather(*(create("by_ip", f"7900111223{i}", f"198.51.101.{i}") for i in range(6)))
        assert points.count("ok") == 3 and set(points) == {"ok", "api_points_exhausted"}, (
            points
        )  # 8 of its 11 spent above
    finally:
        stop_server(server)
        redis.stop()
