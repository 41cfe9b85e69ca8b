"""Destinations at intake (DESIGN §7): numbers never called, countries a site allows, a daily cap per number."""

from __future__ import annotations

import pytest

from api.helpers import create
from support import ADMIN_TOKEN

TWIN = "/widget-service/v1/api/widget-request/user-form/create"


@pytest.mark.parametrize(
    ("phone", "why"),
    [
        ("78091234567", "premium-rate"),  # 8-809: the caller pays
        ("19005551234", "premium-rate"),  # 1-900
        ("18765551234", "(JM)"),  # Jamaica, not allowed for a Moscow site
        ("77012345678", "(KZ)"),  # +7 7xx is Kazakhstan
    ],
)
async def test_numbers_a_site_may_not_call_are_refused_on_phone(app_client, admin, phone: str, why: str) -> None:  # type: ignore[no-untyped-def]
    site, _ = await admin.site_with_widget()  # Europe/Moscow: allowedCountries ["RU"]
    response = await create(app_client, site["siteKey"], phone=phone)
    assert response.status_code == 400, response.text
    [field] = response.json()["details"]["fields"]
    assert field["name"] == "phone" and why in field["errors"][0]["message"]
    twin = await app_client.post(
        TWIN, json={"routeKey": "my_form_1", "phone": phone}, headers={"Access-Token": ADMIN_TOKEN}
    )
    assert twin.status_code == 400 and twin.json()["data"]["apiErrorData"]["errorCode"] == 10013
    assert why in twin.json()["data"]["apiErrorData"]["errorMessage"]


async def test_a_site_may_allow_more_countries_but_never_premium_rate(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    site, _ = await admin.site_with_widget()
    await admin.patch(f"/sites/{site['id']}", {"allowedCountries": ["*"]})
    assert (await create(app_client, site["siteKey"], phone="18765551234")).status_code == 200
    assert (await create(app_client, site["siteKey"], phone="78091234567")).status_code == 400


async def test_one_number_is_accepted_at_most_n_times_a_day_across_widgets(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    site, _ = await admin.site_with_widget()
    await admin.post(f"/sites/{site['id']}/widgets", {"routeKey": "other_form"})
    await admin.patch(f"/sites/{site['id']}", {"maxRequestsPerNumberPerDay": 3})
    answers = [
        await create(app_client, site["siteKey"], routeKey=key, phone="79001234567")
        for key in ("my_form_1", "other_form", "my_form_1", "other_form")
    ]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    refused = answers[-1].json()
    assert refused["type"] == "request_throttle_count" and "per day" in refused["message"]
    assert int(answers[-1].headers["Retry-After"]) <= 86400
    assert (await create(app_client, site["siteKey"], phone="79001234568")).status_code == 200  # another number


async def test_tracking_session_ids_are_random_below_2_53_and_bound_to_their_site(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    site, _ = await admin.site_with_widget()
    other, _ = await admin.site_with_widget()
    ids = [
        (await app_client.post("/api/widget/v1/session", json={"site": site["siteKey"]})).json()["sessionId"]
        for _ in range(5)
    ]
    assert all(isinstance(i, int) and 0 < i < 2**53 for i in ids)
    assert len(set(ids)) == 5 and sorted(ids) != list(range(min(ids), min(ids) + 5))  # not a sequence
    foreign = await create(app_client, other["siteKey"], sessionId=ids[0])  # another site's session: dropped
    journal = await admin.get(f"/requests/{foreign.json()['callbackRequestId']}")
    assert journal["sessionId"] is None
    own = await create(app_client, site["siteKey"], sessionId=ids[0])
    assert (await admin.get(f"/requests/{own.json()['callbackRequestId']}"))["sessionId"] == ids[0]
