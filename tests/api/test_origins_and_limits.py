"""Allowed origins with CORS, the per-IP limit, and what it does not count (DESIGN §3)."""

from __future__ import annotations

import httpx
import pytest

from perezvon.app import create_app
from support import Admin, make_settings


async def test_an_allowed_origin_gets_cors_headers(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    site = await admin.post("/sites", {"name": "Shop", "allowedOrigins": ["https://shop.example"]})
    await admin.post(f"/sites/{site['id']}/widgets", {"routeKey": "my_form_1"})
    response = await app_client.post(
        "/api/widget/v1/route-key-data",
        json={"site": site["siteKey"], "routeKey": "my_form_1"},
        headers={"Origin": "https://shop.example"},
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "https://shop.example"


async def test_a_page_on_another_origin_is_refused(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    site = await admin.post("/sites", {"name": "Shop", "allowedOrigins": ["https://shop.example"]})
    await admin.post(f"/sites/{site['id']}/widgets", {"routeKey": "my_form_1"})
    for path, body in [
        ("/api/widget/v1/route-key-data", {"routeKey": "my_form_1"}),
        ("/api/widget/v1/requests", {"routeKey": "my_form_1", "phone": "79001234567"}),
        ("/api/widget/v1/session", {}),
    ]:
        response = await app_client.post(
            path, json={"site": site["siteKey"], **body}, headers={"Origin": "https://evil.example"}
        )
        assert response.status_code == 403, path
        assert response.json()["type"] == "origin_not_allowed"
    journal = await admin.get("/requests", siteId=site["id"])
    assert journal["total"] == 0


async def test_preflight_is_answered(app_client) -> None:  # type: ignore[no-untyped-def]
    response = await app_client.options(
        "/api/widget/v1/requests",
        headers={
            "Origin": "https://shop.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == "https://shop.example"
    assert "POST" in response.headers["access-control-allow-methods"]
    assert response.headers["access-control-allow-headers"] == "content-type"


@pytest.fixture
async def limited_client(sqlite_url: str):  # type: ignore[no-untyped-def]
    app = create_app(make_settings(sqlite_url, ip_rate_limit=5))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("198.51.100.20", 1234))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield client


async def test_of_eleven_api_requests_from_one_ip_five_pass(limited_client) -> None:  # type: ignore[no-untyped-def]
    admin = Admin(limited_client)
    site, _ = await admin.site_with_widget()  # the admin API is not counted
    key = site["siteKey"]
    # ctw.js, preflights and session bookkeeping are not counted either.
    await limited_client.get("/ctw.js", params={"site": key})
    await limited_client.options("/api/widget/v1/requests", headers={"Origin": "https://a.example"})
    await limited_client.post("/api/widget/v1/session", json={"site": key})
    statuses = []
    for i in range(11):
        if i % 2:
            body = {"site": key, "routeKey": "my_form_1", "phone": f"7900123456{i % 10}"}
            response = await limited_client.post("/api/widget/v1/requests", json=body)
        else:
            response = await limited_client.post(
                "/api/widget/v1/route-key-data", json={"site": key, "routeKey": "my_form_1"}
            )
        statuses.append(response.status_code)
        if response.status_code == 429:
            assert response.json()["type"] == "request_throttle_count"
            assert int(response.headers["retry-after"]) >= 1
    assert statuses[:5] == [200] * 5
    assert statuses[5:] == [429] * 6


async def test_an_oversized_body_is_refused_without_being_kept(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    site, _ = await admin.site_with_widget()
    huge = {"site": site["siteKey"], "routeKey": "my_form_1", "phone": "79001234567", "pad": "x" * 200_000}
    response = await app_client.post("/api/widget/v1/requests", json=huge)
    assert response.status_code == 413  # DESIGN §7: over 65 536 bytes is 413, in the public error shape
    assert response.json()["details"]["fields"][0]["name"] == "body"
    assert (await admin.get("/requests"))["total"] == 0


async def test_session_creation_has_its_own_generous_limit(sqlite_url: str) -> None:
    app = create_app(make_settings(sqlite_url, ip_rate_limit=5))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("198.51.100.30", 1234))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            site, _ = await Admin(client).site_with_widget()
            statuses = [
                (await client.post("/api/widget/v1/session", json={"site": site["siteKey"]})).status_code
                for _ in range(61)
            ]
    # Far above the API's 5 per second (sessions are not API calls), but not unbounded.
    assert statuses[:60] == [200] * 60
    assert statuses[60] == 429


async def test_the_sdk_goes_out_gzipped_within_two_and_a_half_kilobytes(app_client) -> None:  # type: ignore[no-untyped-def]
    response = await app_client.get("/ctw.js", params={"site": "x"}, headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert response.headers["content-encoding"] == "gzip"
    assert int(response.headers["content-length"]) <= 2560
    assert "getRouteKeyData" in response.text  # httpx decompressed it
    plain = await app_client.get("/ctw.js", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.text == response.text
