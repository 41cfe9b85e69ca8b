"""The attribution report (admin API): requests, connected, connection rate and whole billed minutes by
UTM source / medium / campaign, for site-local days."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import insert, update

from api.helpers import create
from perezvon.services.accounts import create_account, create_token
from perezvon.store.tables import call_attempts, callback_requests
from support import ADMIN_TOKEN

REPORT = "/api/admin/v1/reports/attribution"
TWIN = "/widget-service/v1/api/widget-request/user-form/create"


async def visit(app_client, site_key: str, **utm: str) -> int:  # type: ignore[no-untyped-def]
    response = await app_client.post("/api/widget/v1/session", json={"site": site_key, **utm})
    return int(response.json()["sessionId"])


async def finish(app_client, request_id: int, status: str, *billed_seconds: int) -> None:  # type: ignore[no-untyped-def]
    """Close a request as the worker would: its attempts with their billed seconds, then its status."""
    now = datetime.now(UTC)
    async with app_client.app.state.db.write() as conn:
        for number, seconds in enumerate(billed_seconds, start=1):
            outcome = "connected" if status == "completed" and number == len(billed_seconds) else "client_no_answer"
            await conn.execute(
                insert(call_attempts).values(
                    request_id=request_id,
                    number=number,
                    started_at=now,
                    ended_at=now,
                    outcome=outcome,
                    billed_seconds=seconds,
                )
            )
        await conn.execute(update(callback_requests).where(callback_requests.c.id == request_id).values(status=status))


async def seeded(app_client, admin) -> dict:  # type: ignore[no-untyped-def]
    """Yandex/cpc/winter: 2 requests (1 connected, 12 s + 61 s = 3 minutes, 1 failed); Google: 1 pending;
    a server-side request from "partner"; one request with no UTM at all."""
    site, _ = await admin.site_with_widget()
    key = site["siteKey"]
    yandex = await visit(app_client, key, utmSource="yandex", utmMedium="cpc", utmCampaign="winter")
    google = await visit(app_client, key, utmSource="google", utmMedium="organic")
    first = (await create(app_client, key, sessionId=yandex)).json()["callbackRequestId"]
    second = (await create(app_client, key, sessionId=yandex, phone="79001234568")).json()["callbackRequestId"]
    await create(app_client, key, sessionId=google, phone="79001234569")
    await create(app_client, key, phone="79001234570")
    body = {"routeKey": "my_form_1", "phone": "79001234571", "utmSource": "partner", "utmMedium": "referral"}
    assert (await app_client.post(TWIN, headers={"Access-Token": ADMIN_TOKEN}, json=body)).status_code == 200
    await finish(app_client, first, "completed", 12, 61)
    await finish(app_client, second, "failed", 0)
    return site


async def test_it_groups_by_source_medium_and_campaign(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    site = await seeded(app_client, admin)
    report = await admin.get("/reports/attribution", siteId=site["id"])
    assert report["groupBy"] == ["source", "medium", "campaign"]
    assert report["items"][0] == {
        "source": "yandex",
        "medium": "cpc",
        "campaign": "winter",
        "requests": 2,
        "connected": 1,
        "finished": 2,
        "connectionRate": 0.5,
        "minutes": 3,
    }
    rest = {
        (i["source"], i["medium"], i["campaign"]): (i["requests"], i["connectionRate"]) for i in report["items"][1:]
    }
    assert rest == {
        ("google", "organic", None): (1, None),
        ("partner", "referral", None): (1, None),
        (None, None, None): (1, None),
    }
    assert report["total"] == {"requests": 5, "connected": 1, "finished": 2, "connectionRate": 0.5, "minutes": 3}


async def test_group_by_one_dimension_merges_the_rest(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    site = await seeded(app_client, admin)
    await visit(app_client, site["siteKey"], utmSource="yandex", utmMedium="organic")
    report = await admin.get("/reports/attribution", groupBy="medium")
    assert [(i["medium"], i["requests"]) for i in report["items"]][:1] == [("cpc", 2)]
    assert set(report["items"][0]) == {"medium", "requests", "connected", "finished", "connectionRate", "minutes"}


async def test_days_outside_the_range_are_left_out(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    site = await seeded(app_client, admin)
    report = await admin.get("/reports/attribution", dateFrom="2020-01-01", dateTo="2020-01-31", siteId=site["id"])
    assert report["items"] == [] and report["total"]["requests"] == 0
    assert (report["dateFrom"], report["dateTo"]) == ("2020-01-01", "2020-01-31")


@pytest.mark.parametrize(
    ("params", "names"),
    [
        ({"dateFrom": "01/02/2026"}, ["dateFrom"]),
        ({"dateFrom": "2026-03-02", "dateTo": "2026-03-01"}, ["dateFrom"]),
        ({"dateFrom": "2020-01-01", "dateTo": "2026-01-01"}, ["dateFrom"]),
        ({"groupBy": "source,country"}, ["groupBy"]),
    ],
)
async def test_bad_parameters_are_named(app_client, admin, params, names) -> None:  # type: ignore[no-untyped-def]
    response = await app_client.get(REPORT, params=params, headers=admin.headers)
    assert response.status_code == 400
    assert [f["name"] for f in response.json()["details"]["fields"]] == names


async def test_an_account_sees_only_its_own_sites(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    site = await seeded(app_client, admin)
    bob = await create_account(app_client.app.state.db, "bob@example.com", "bob-password")
    headers = {"Authorization": f"Bearer {await create_token(app_client.app.state.db, bob)}"}
    mine = (await app_client.get(REPORT, headers=headers)).json()
    assert mine["items"] == [] and mine["total"]["requests"] == 0
    assert (await app_client.get(REPORT, params={"siteId": site["id"]}, headers=headers)).status_code == 404
    assert (await app_client.get(REPORT)).status_code == 401
