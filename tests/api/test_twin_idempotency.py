"""Idempotency-Key on the server-side create (a perezvon extension): a retry replays the first answer."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from perezvon.clock import utcnow
from perezvon.store.idempotency import IdempotencyKeys
from support import ADMIN_TOKEN

PATH = "/widget-service/v1/api/widget-request/user-form/create"
BODY = {"routeKey": "my_form_1", "phone": "79001234567"}


def headers(key: str, token: str = ADMIN_TOKEN) -> dict[str, str]:
    return {"Access-Token": token, "Idempotency-Key": key}


async def journal_total(admin) -> int:  # type: ignore[no-untyped-def]
    return (await admin.get("/requests"))["total"]


async def test_a_retry_with_the_same_key_gets_the_first_answer(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    await admin.site_with_widget()
    first = await app_client.post(PATH, headers=headers("order-1001"), json=BODY)
    again = await app_client.post(PATH, headers=headers("order-1001"), json=BODY)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert await journal_total(admin) == 1
    other = await app_client.post(PATH, headers=headers("order-1002"), json=BODY)
    assert other.json()["data"]["widgetRequestId"] != first.json()["data"]["widgetRequestId"]
    plain = await app_client.post(PATH, headers={"Access-Token": ADMIN_TOKEN}, json=BODY)
    assert plain.status_code == 200 and await journal_total(admin) == 3


async def test_concurrent_retries_create_one_request(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    await admin.site_with_widget()
    answers = await asyncio.gather(*(app_client.post(PATH, headers=headers("burst"), json=BODY) for _ in range(5)))
    ok = [a for a in answers if a.status_code == 200]
    assert {a.json()["data"]["widgetRequestId"] for a in ok} == {ok[0].json()["data"]["widgetRequestId"]}
    assert all(a.status_code in (200, 409) for a in answers), [a.text for a in answers]
    assert await journal_total(admin) == 1


async def test_the_same_key_with_another_body_is_refused(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    await admin.site_with_widget()
    assert (await app_client.post(PATH, headers=headers("k"), json=BODY)).status_code == 200
    other = await app_client.post(PATH, headers=headers("k"), json={**BODY, "phone": "79001234568"})
    assert other.status_code == 422
    assert "another request body" in other.json()["data"]["apiErrorData"]["errorMessage"]


async def test_a_refusal_is_not_kept_so_a_corrected_retry_is_judged_anew(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    await admin.site_with_widget()
    refused = await app_client.post(PATH, headers=headers("k2"), json={**BODY, "routeKey": "nope"})
    assert refused.status_code == 400
    await admin.site_with_widget(route_key="nope")
    accepted = await app_client.post(PATH, headers=headers("k2"), json={**BODY, "routeKey": "nope"})
    assert accepted.status_code == 200 and "idempotent-replayed" not in accepted.headers


async def test_keys_belong_to_one_token(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    from perezvon.services.accounts import create_token

    await admin.site_with_widget()
    other_token = await create_token(app_client.app.state.db, None, "second operator")
    first = await app_client.post(PATH, headers=headers("shared"), json=BODY)
    second = await app_client.post(PATH, headers=headers("shared", other_token), json=BODY)
    assert second.status_code == 200 and "idempotent-replayed" not in second.headers
    assert second.json() != first.json()
    wrong = await app_client.post(PATH, headers=headers("shared", "not-a-token-at-all-000"), json=BODY)
    assert wrong.status_code == 403


async def test_a_bad_key_is_refused(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    response = await app_client.post(PATH, headers=headers("x" * 256), json=BODY)
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["data"]["apiErrorData"]["errorMessage"]


async def test_keys_expire_after_24_hours_and_abandoned_claims_free_up(database_url: str) -> None:
    from perezvon.store.db import Database

    db = Database(database_url)
    keys = IdempotencyKeys(db)
    try:
        long_ago = utcnow() - timedelta(hours=25)
        assert (await keys.claim("s", "old", "f", now=long_ago)).mine
        await keys.record("s", "old", 200, '{"data":{"widgetRequestId":1}}')
        assert (await keys.claim("s", "old", "f")).mine  # expired: a new request
        assert (await keys.claim("s", "old", "f")).busy  # ... now in progress
        stuck = utcnow() - timedelta(minutes=5)
        assert (await keys.claim("s", "stuck", "f", now=stuck)).mine  # its process died before recording
        assert (await keys.claim("s", "stuck", "f")).mine
    finally:
        await db.dispose()
