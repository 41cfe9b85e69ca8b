"""/healthz, /readyz and /metrics (DESIGN §7 "Operating it"), in-process on both databases."""

from __future__ import annotations

from dataclasses import replace

import httpx
import pytest

from perezvon.app import create_app
from support import ADMIN_TOKEN, make_settings


async def test_healthz_answers_ok(app_client) -> None:  # type: ignore[no-untyped-def]
    response = await app_client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_checks_the_database(app_client) -> None:  # type: ignore[no-untyped-def]
    response = await app_client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok"}}


async def _client_of(settings):  # type: ignore[no-untyped-def]
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    return app, httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def test_readyz_names_a_redis_that_does_not_answer(sqlite_url: str) -> None:
    from support import free_port

    settings = make_settings(sqlite_url, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    app, client = await _client_of(settings)
    async with app.router.lifespan_context(app), client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["redis"] != "ok" and isinstance(body["checks"]["redis"], str)


async def test_readyz_says_ok_for_a_redis_that_answers(sqlite_url: str) -> None:
    settings = make_settings(sqlite_url, redis_url="redis://127.0.0.1:6379/0")
    app, client = await _client_of(settings)
    async with app.router.lifespan_context(app), client:
        response = await client.get("/readyz")
    if response.json()["checks"]["redis"].startswith("ConnectionError"):
        pytest.skip("no Redis at 127.0.0.1:6379")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}


async def test_readyz_names_a_database_that_does_not_answer(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from support import free_port

    settings = make_settings(f"postgresql://nobody@127.0.0.1:{free_port()}/none")
    app, client = await _client_of(settings)
    async with client:  # no lifespan: it would not start without its database
        response = await client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable" and body["checks"]["database"] != "ok"


async def test_health_endpoints_need_no_token_and_pass_every_limit(sqlite_url: str) -> None:
    settings = make_settings(sqlite_url, ip_rate_limit=1)
    app, client = await _client_of(settings)
    async with app.router.lifespan_context(app), client:
        answers = [(await client.get(path)).status_code for _ in range(5) for path in ("/healthz", "/readyz")]
        assert set(answers) == {200}
        # ... and they left the per-IP budget alone: the first public call still passes.
        response = await client.post("/api/widget/v1/route-key-data", json={"site": "nope", "routeKey": "x"})
        assert response.json().get("type") != "request_throttle_count", response.text


async def test_metrics_lists_every_documented_name_from_start_up(app_client) -> None:  # type: ignore[no-untyped-def]
    response = await app_client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    for name in (
        'perezvon_public_requests_total{endpoint="createRequest",outcome="ok"}',
        "perezvon_requests_due ",
        "perezvon_dispatch_lateness_seconds_bucket",
        'perezvon_call_attempts_total{outcome="connected"}',
        "perezvon_active_calls ",
        "perezvon_billed_seconds_total ",
        'perezvon_webhook_deliveries_total{status="delivered"}',
    ):
        assert name in text, name


def sample(text: str, series: str) -> float:
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_public_calls_are_counted_by_endpoint_and_outcome(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    site, _ = await admin.site_with_widget()
    ok = 'perezvon_public_requests_total{endpoint="createRequest",outcome="ok"}'
    bad = 'perezvon_public_requests_total{endpoint="createRequest",outcome="validation_error"}'
    before = (await app_client.get("/metrics")).text
    body = {"site": site["siteKey"], "routeKey": "my_form_1", "phone": "79001234567"}
    assert (await app_client.post("/api/widget/v1/requests", json=body)).status_code == 200
    assert (await app_client.post("/api/widget/v1/requests", json={**body, "phone": "1"})).status_code == 400
    after = (await app_client.get("/metrics")).text
    assert sample(after, ok) - sample(before, ok) == 1
    assert sample(after, bad) - sample(before, bad) == 1
    assert sample(after, "perezvon_requests_due") >= 1  # the request just accepted is due now


async def test_metrics_token_is_required_when_set(sqlite_url: str) -> None:
    settings = replace(make_settings(sqlite_url), metrics_token="scrape-secret-0123456789")
    app, client = await _client_of(settings)
    async with app.router.lifespan_context(app), client:
        assert (await client.get("/metrics")).status_code == 401
        wrong = await client.get("/metrics", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        assert wrong.status_code == 401
        right = await client.get("/metrics", headers={"Authorization": "Bearer scrape-secret-0123456789"})
        assert right.status_code == 200 and "perezvon_active_calls" in right.text
        assert (await client.get("/healthz")).status_code == 200  # health stays open


async def test_every_answer_carries_a_request_id(app_client) -> None:  # type: ignore[no-untyped-def]
    made = await app_client.get("/healthz")
    assert len(made.headers["x-request-id"]) == 32
    other = await app_client.get("/healthz")
    assert other.headers["x-request-id"] != made.headers["x-request-id"]
    kept = await app_client.post("/api/widget/v1/requests", json={}, headers={"X-Request-Id": "lb-7f3a.1"})
    assert kept.headers["x-request-id"] == "lb-7f3a.1"
    admin_api = await app_client.get("/api/admin/v1/sites", headers={"X-Request-Id": "abc"})
    assert admin_api.headers["x-request-id"] == "abc"
    odd = await app_client.get("/healthz", headers={"X-Request-Id": "bad id\twith spaces"})
    assert odd.headers["x-request-id"] != "bad id\twith spaces" and len(odd.headers["x-request-id"]) == 32
