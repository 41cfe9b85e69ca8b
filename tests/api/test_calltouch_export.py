"""Calltouch's request export (DESIGN §7): path, parameters, and every field of its items."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import update

from api.helpers import create
from perezvon.services.accounts import create_account, create_token
from perezvon.store.tables import callback_requests
from support import ADMIN_TOKEN

PATH = "/calls-service/RestAPI/requests"
TWIN = "/widget-service/v1/api/widget-request/user-form/create"


def _days(*moments: datetime) -> dict[str, str]:
    return {"dateFrom": moments[0].strftime("%m/%d/%Y"), "dateTo": moments[-1].strftime("%m/%d/%Y")}


def _today(zone: str = "Europe/Moscow") -> datetime:
    return datetime.now(UTC).astimezone(ZoneInfo(zone))


async def _export(app_client, token: str = ADMIN_TOKEN, path: str = PATH, **params):  # type: ignore[no-untyped-def]
    return await app_client.get(path, params={"clientApiId": token, **_days(_today()), **params})


async def test_a_js_request_comes_back_with_every_field(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    site, _ = await admin.site_with_widget()
    session = await app_client.post(
        "/api/widget/v1/session",
        json={
            "site": site["siteKey"],
            "url": "https://shop.example/?utm_source=ya",
            "utmSource": "yandex",
            "utmMedium": "cpc",
            "utmCampaign": "winter",
            "utmContent": "banner",
            "utmTerm": "flowers",
        },
    )
    session_id = session.json()["sessionId"]
    fields = [
        {"name": "Имя", "value": "Иван"},
        {"name": "Фамилия", "value": "Петров"},
        {"name": "Товар", "value": "розы"},
    ]
    made = await create(app_client, site["siteKey"], fields=fields, tags=["vip", "сайт"], sessionId=session_id)
    request_id = made.json()["callbackRequestId"]

    response = await _export(app_client, withRequestTags="true")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    items = response.json()
    assert isinstance(items, list) and len(items) == 1
    item = items[0]
    created = datetime.fromisoformat((await admin.get(f"/requests/{request_id}"))["createdAt"].replace("Z", "+00:00"))
    assert item == {
        "requestId": request_id,
        "requestNumber": str(request_id),
        "subject": "my_form_1",
        "dateStr": created.astimezone(ZoneInfo("Europe/Moscow")).strftime("%d/%m/%Y %H:%M:%S"),
        "status": "pending",
        "client": {
            "clientId": None,
            "fio": "Иван Петров",
            "phones": [{"phoneNumber": "79001234567", "phoneType": "MOBILE"}],
            "contacts": [],
        },
        "session": {
            "sessionId": session_id,
            "utmSource": "yandex",
            "utmMedium": "cpc",
            "utmCampaign": "winter",
            "utmContent": "banner",
            "utmTerm": "flowers",
        },
        "RequestTags": [{"category": "perezvon", "type": "tags", "names": ["vip", "сайт"]}],
        "requestUrl": "https://shop.example/?utm_source=ya",
    }
    assert re.fullmatch(r"\d{2}/\d{2}/\d{4} \d{2}:\d{2}:\d{2}", item["dateStr"])


async def test_a_server_side_request_keeps_its_own_utm_and_url(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    await admin.site_with_widget()
    body = {
        "routeKey": "my_form_1",
        "phone": "79001234567",
        "callUrl": "https://shop.example/cart",
        "utmSource": "google",
    }
    assert (await app_client.post(TWIN, headers={"Access-Token": ADMIN_TOKEN}, json=body)).status_code == 200
    [item] = (await _export(app_client)).json()
    assert item["requestUrl"] == "https://shop.example/cart"
    assert item["session"] == {
        "sessionId": None,
        "utmSource": "google",
        "utmMedium": "",
        "utmCampaign": "",
        "utmContent": "",
        "utmTerm": "",
    }
    assert item["RequestTags"] == [] and item["client"]["fio"] == ""


async def test_the_trailing_slash_path_and_tags_only_when_asked(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    site, _ = await admin.site_with_widget()
    await create(app_client, site["siteKey"], tags=["vip"])
    [plain] = (await _export(app_client, path=PATH + "/")).json()
    assert plain["RequestTags"] == []
    [tagged] = (await _export(app_client, path=PATH + "/", withRequestTags="true")).json()
    assert tagged["RequestTags"][0]["names"] == ["vip"]


async def test_days_are_the_sites_local_days(app_client, admin, database_url) -> None:  # type: ignore[no-untyped-def]
    site, _ = await admin.site_with_widget()  # Europe/Moscow, UTC+03:00
    ids = [
        (await create(app_client, site["siteKey"], phone=f"7900123456{n}")).json()["callbackRequestId"]
        for n in range(3)
    ]
    # 2026-03-01 21:30 UTC is already March 2nd in Moscow; 20:59 UTC is still March 1st.
    moments = [
        datetime(2026, 3, 1, 20, 59, tzinfo=UTC),
        datetime(2026, 3, 1, 21, 30, tzinfo=UTC),
        datetime(2026, 3, 2, 20, 59, tzinfo=UTC),
    ]
    async with app_client.app.state.db.write() as conn:
        for request_id, moment in zip(ids, moments, strict=True):
            await conn.execute(
                update(callback_requests).where(callback_requests.c.id == request_id).values(created_at=moment)
            )
    base = {"clientApiId": ADMIN_TOKEN}
    first = (await app_client.get(PATH, params={**base, "dateFrom": "03/01/2026", "dateTo": "03/01/2026"})).json()
    assert [i["requestId"] for i in first] == [ids[0]] and first[0]["dateStr"] == "01/03/2026 23:59:00"
    second = (await app_client.get(PATH, params={**base, "dateFrom": "03/02/2026", "dateTo": "03/02/2026"})).json()
    assert [i["requestId"] for i in second] == ids[1:]
    assert second[0]["dateStr"] == "02/03/2026 00:30:00"
    both = (
        await app_client.get(
            PATH, params={**base, "dateFrom": "03/01/2026", "dateTo": "03/02/2026", "siteId": site["id"]}
        )
    ).json()
    assert [i["requestId"] for i in both] == ids


async def test_a_large_export_streams_in_batches_in_order(app_client, admin, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from perezvon.services import request_export

    monkeypatch.setattr(request_export, "BATCH", 2)
    site, _ = await admin.site_with_widget()
    ids = [
        (await create(app_client, site["siteKey"], phone=f"7900123450{n}")).json()["callbackRequestId"]
        for n in range(5)
    ]
    assert [i["requestId"] for i in (await _export(app_client)).json()] == ids


async def test_rows_sharing_a_moment_across_batches_come_once_each(app_client, admin, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from perezvon.services import request_export

    monkeypatch.setattr(request_export, "BATCH", 2)
    site, _ = await admin.site_with_widget()
    ids = [
        (await create(app_client, site["siteKey"], phone=f"7900123451{n}")).json()["callbackRequestId"]
        for n in range(7)
    ]
    moment = datetime.now(UTC).replace(microsecond=0)
    async with app_client.app.state.db.write() as conn:  # five of them at the very same microsecond
        await conn.execute(
            update(callback_requests).where(callback_requests.c.id.in_(ids[1:6])).values(created_at=moment)
        )
    exported = [i["requestId"] for i in (await _export(app_client)).json()]
    assert sorted(exported) == ids and len(exported) == len(set(exported))


async def test_a_wrong_or_missing_client_api_id_is_refused(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    for params in ({"clientApiId": "wrong"}, {}):
        response = await app_client.get(PATH, params={**params, **_days(_today())})
        assert response.status_code == 401
        assert response.json()["type"] == "unauthorized"


@pytest.mark.parametrize(
    ("params", "names"),
    [
        ({}, ["dateFrom", "dateTo"]),
        ({"dateFrom": "2026-03-01", "dateTo": "03/32/2026"}, ["dateFrom", "dateTo"]),
        ({"dateFrom": "03/02/2026", "dateTo": "03/01/2026"}, ["dateTo"]),
        ({"dateFrom": "03/01/2026", "dateTo": "03/01/2026", "siteId": "x"}, ["siteId"]),
        ({"dateFrom": "03/01/2026", "dateTo": "03/01/2026", "siteId": "١٢"}, ["siteId"]),
    ],
)
async def test_bad_parameters_are_named(app_client, admin, params, names) -> None:  # type: ignore[no-untyped-def]
    response = await app_client.get(PATH, params={"clientApiId": ADMIN_TOKEN, **params})
    assert response.status_code == 400
    body = response.json()
    assert body["type"] == "validation_error"
    assert [f["name"] for f in body["details"]["fields"]] == names


async def test_an_accounts_token_reads_only_its_own_sites(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    state = app_client.app.state
    alice = await create_account(state.db, "alice@example.com", "alice-password")
    bob = await create_account(state.db, "bob@example.com", "bob-password")
    alice_site = await admin.post("/sites", {"name": "Alice's", "accountId": alice, "timezone": "Europe/Moscow"})
    await admin.post(f"/sites/{alice_site['id']}/widgets", {"routeKey": "my_form_1"})
    await create(app_client, alice_site["siteKey"])
    bob_token = await create_token(state.db, bob)
    assert (await _export(app_client, bob_token)).json() == []
    refused = await _export(app_client, bob_token, siteId=str(alice_site["id"]))
    assert refused.status_code == 404 and refused.json()["type"] == "not_found"
    assert len((await _export(app_client, ADMIN_TOKEN, siteId=str(alice_site["id"]))).json()) == 1


async def test_it_is_in_the_openapi_document(app_client) -> None:  # type: ignore[no-untyped-def]
    paths = (await app_client.get("/api/openapi.json")).json()["paths"]
    assert "get" in paths[PATH]
    assert {p["name"] for p in paths[PATH]["get"]["parameters"]} >= {"clientApiId", "dateFrom", "dateTo", "siteId"}
