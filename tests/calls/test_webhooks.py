"""Webhooks: signed, received by a real HTTP server, retried after a 500, logged for the admin."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

import pytest

from perezvon.calls.webhooks import Backoff, DeliveryError, Outbound, sign, verify
from support import ADMIN_TOKEN

from .http_sink import HttpSink

ALWAYS = {"utcTimezone": "UTC+00:00", "hours": [{"dayOfWeek": d, "hour": h} for d in range(1, 8) for h in range(24)]}


@pytest.fixture
async def sink():
    server = await HttpSink().start()
    yield server
    await server.close()


def test_the_signature_is_hmac_sha256_of_the_raw_body() -> None:
    import hashlib
    import hmac

    body = b'{"event":"request.created"}'
    expected = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert sign("s3cret", body) == expected
    assert verify("s3cret", body, expected)
    assert not verify("s3cret", body + b" ", expected)
    assert not verify("other", body, expected)


def test_backoff_doubles_up_to_the_cap() -> None:
    backoff = Backoff(base_s=10, cap_s=60)
    assert [backoff.delay(t) for t in (1, 2, 3, 4, 5)] == [10, 20, 40, 60, 60]


async def test_outbound_refuses_anything_but_http() -> None:
    outbound = Outbound(timeout=1)
    try:
        for url in ("file:///etc/passwd", "ftp://example.org/x", "gopher://x", "http:///nohost"):
            with pytest.raises(DeliveryError) as caught:
                await outbound.post(url, b"{}", {})
            assert caught.value.permanent
    finally:
        await outbound.close()
    with pytest.raises(ValueError):
        Outbound(timeout=0)


async def test_created_and_finished_are_delivered_signed_and_a_500_is_retried(engine_factory, sink) -> None:
    async with engine_factory(backoff=Backoff(base_s=0.1)) as eng:
        site, _ = await eng.admin.site_with_widget(operatorPhones=["79990000010"], schedule=ALWAYS)
        site = await eng.admin.patch(f"/sites/{site['id']}", {"webhookUrls": [sink.url]})
        secret = site["webhookSecret"]
        sink.statuses = [500]  # the first delivery fails once
        rid = await eng.create("my_form_1", "79001234567", site["siteKey"],
                               fields=[{"name": "Name", "value": "Ivan"}])
        got = []
        while len([r for r in got if r.status == 200]) < 2:
            got.append(await asyncio.wait_for(sink.received.get(), 15))
        first, *rest = got
        assert first.status == 500
        for received in got:
            assert verify(secret, received.body, received.headers["x-perezvon-signature"])
            assert received.headers["x-perezvon-timestamp"].isdigit()
            assert received.headers["content-type"] == "application/json"
        delivered = [json.loads(r.body) for r in got if r.status == 200]
        events = {d["event"]: d for d in delivered}
        assert set(events) == {"request.created", "request.finished"}
        assert events["request.created"]["request"]["id"] == rid
        assert events["request.created"]["request"]["fields"] == [{"name": "Name", "value": "Ivan"}]
        finished = events["request.finished"]["request"]
        assert finished["status"] == "completed" and finished["attempts"][0]["outcome"] == "connected"
        # The retried delivery is the same bytes again (same signature), not a new event.
        retried = [r for r in rest if json.loads(r.body)["event"] == json.loads(first.body)["event"]]
        assert retried and retried[0].body == first.body

        log = await eng.admin.get(f"/sites/{site['id']}/webhook-deliveries")
        assert log["total"] == 2
        by_event = {d["event"]: d for d in log["items"]}
        retried_one = by_event[json.loads(first.body)["event"]]
        assert retried_one["status"] == "delivered" and retried_one["tries"] == 2
        assert retried_one["lastStatusCode"] == 200 and retried_one["deliveredAt"]
        assert secret not in json.dumps(log)


async def test_a_delivery_that_always_fails_ends_failed_after_max_tries(engine_factory, sink) -> None:
    async with engine_factory(backoff=Backoff(base_s=0.05, max_tries=3)) as eng:
        site, _ = await eng.admin.site_with_widget(operatorPhones=["79990000010"], schedule=ALWAYS)
        site = await eng.admin.patch(f"/sites/{site['id']}", {"webhookUrls": [sink.url]})
        eng.runtime.webhooks.backoff = Backoff(base_s=0.05, max_tries=3)
        sink.statuses = [503] * 100
        # Cancel at once so that only request.created and request.finished (cancelled) are sent.
        rid = await eng.create("my_form_1", "79001234567", site["siteKey"], scheduleTime="2099-01-01 10:00:00")
        response = await eng.client.post(f"/api/admin/v1/requests/{rid}/cancel", headers=eng.admin.headers)
        assert response.status_code == 200 and response.json()["status"] == "cancelled"
        for _ in range(6):  # 2 events × 3 tries
            assert (await asyncio.wait_for(sink.received.get(), 10)).status == 503
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5
        while True:  # the last try's result is written just after the answer: poll the log briefly
            log = await eng.admin.get(f"/sites/{site['id']}/webhook-deliveries")
            if all(d["status"] == "failed" for d in log["items"]) or loop.time() > deadline:
                break
            await asyncio.sleep(0.05)
        assert [(d["status"], d["tries"], d["lastStatusCode"]) for d in log["items"]] == [("failed", 3, 503)] * 2
        assert sink.received.empty()


async def test_cancelling_needs_a_pending_request_and_respects_tenancy(engine_factory) -> None:
    async with engine_factory() as eng:
        site, _ = await eng.admin.site_with_widget(operatorPhones=["79990000010"], schedule=ALWAYS)
        rid = await eng.create("my_form_1", "79001234567", site["siteKey"], scheduleTime="2099-01-01 10:00:00")
        # bob has his own account and token: alice's (the bootstrap's) request is not his to see.
        from perezvon.services.accounts import create_account, create_token

        bob = await create_account(eng.db, "bob@example.org", "bob-password-1")
        bob_token = await create_token(eng.db, bob)
        bob_headers = {"Authorization": f"Bearer {bob_token}"}
        assert (await eng.client.post(f"/api/admin/v1/requests/{rid}/cancel", headers=bob_headers)).status_code == 404
        assert (await eng.client.get(f"/api/admin/v1/sites/{site['id']}/webhook-deliveries",
                                     headers=bob_headers)).status_code == 404
        ok = await eng.client.post(f"/api/admin/v1/requests/{rid}/cancel",
                                   headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        assert ok.status_code == 200 and ok.json()["status"] == "cancelled" and ok.json()["finishedAt"]
        again = await eng.client.post(f"/api/admin/v1/requests/{rid}/cancel", headers=eng.admin.headers)
        assert again.status_code == 409
        assert (await eng.request(rid))["status"] == "cancelled"


async def test_an_api_only_process_still_queues_request_created(app_client, admin) -> None:
    site, _ = await admin.site_with_widget(operatorPhones=["79990000010"], schedule=ALWAYS)
    settings = app_client.app.state.settings
    app_client.app.state.settings = replace(settings, webhook_allow_private=True)  # a receiver on loopback
    await admin.patch(f"/sites/{site['id']}", {"webhookUrls": ["http://127.0.0.1:9/hook"]})
    other, _ = await admin.site_with_widget(operatorPhones=["79990000010"], schedule=ALWAYS)  # no webhooks
    created = []
    for key in (site["siteKey"], other["siteKey"], site["siteKey"]):
        response = await app_client.post("/api/widget/v1/requests", json={
            "site": key, "routeKey": "my_form_1", "phone": "79001234567", "fields": []})
        assert response.status_code == 200, response.text
        created.append(response.json()["callbackRequestId"])
    # The deliveries were written with each request, in its own transaction: nothing to wait for.
    log = await admin.get(f"/sites/{site['id']}/webhook-deliveries")
    assert sorted(d["requestId"] for d in log["items"]) == sorted([created[0], created[2]])
    assert {d["event"] for d in log["items"]} == {"request.created"}
    assert {d["status"] for d in log["items"]} == {"pending"}  # a worker sends them
    assert (await admin.get(f"/sites/{other['id']}/webhook-deliveries"))["total"] == 0
