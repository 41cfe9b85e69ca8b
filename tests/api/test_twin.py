"""The server-side twin: Calltouch's path, headers, body and answer shapes (DESIGN §2)."""

from __future__ import annotations

import pytest

from perezvon.services.accounts import create_account, create_token
from support import ADMIN_TOKEN

PATH = "/widget-service/v1/api/widget-request/user-form/create"


def api_error(response) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    data = response.json()["data"]["apiErrorData"]
    assert isinstance(data["errorCode"], int) and isinstance(data["errorMessage"], str)
    return data["errorCode"], data["errorMessage"]


async def test_a_request_is_created_with_calltouchs_answer(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    site, _ = await admin.site_with_widget()
    response = await app_client.post(
        PATH,
        headers={
            "Access-Token": ADMIN_TOKEN,
            "SiteId": str(site["id"]),
            "Content-Type": "application/x-www-form-urlencoded",
        },
        content=(
            '{"routeKey":"my_form_1","phone":"79001234567","fields":[{"name":"Name","value":"Ivan","type":"text"}],'
            '"tags":["crm"],"sessionId":"","unitId":0,"callUrl":"https://shop.example/cart","utmSource":"ya",'
            '"utmMedium":"","method":"POST"}'
        ),
    )
    assert response.status_code == 200, response.text
    request_id = response.json()["data"]["widgetRequestId"]
    journal = await admin.get(f"/requests/{request_id}")
    assert journal["fields"] == [{"name": "Name", "value": "Ivan"}]
    assert journal["callUrl"] == "https://shop.example/cart"
    assert journal["utmSource"] == "ya"
    assert "utmMedium" not in journal
    assert journal["unitId"] is None and journal["sessionId"] is None
    assert journal["source"] == "api"


async def test_site_id_is_optional(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    await admin.site_with_widget(route_key="crm_form")
    response = await app_client.post(
        PATH, headers={"Access-Token": ADMIN_TOKEN}, json={"routeKey": "crm_form", "phone": "79001234567"}
    )
    assert response.status_code == 200
    assert isinstance(response.json()["data"]["widgetRequestId"], int)


async def test_the_phone_is_checked_before_the_widget(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    response = await app_client.post(
        PATH, headers={"Access-Token": ADMIN_TOKEN}, json={"routeKey": "nope", "phone": "8900"}
    )
    assert response.status_code == 400
    assert api_error(response)[0] == 10013
    response = await app_client.post(
        PATH, headers={"Access-Token": ADMIN_TOKEN}, json={"routeKey": "nope", "phone": "79001234567"}
    )
    assert api_error(response)[0] == 10003


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"fields": [{"name": "", "value": "x"}]}, 10007),
        ({"tags": ["x" * 101]}, 10007),
        ({"scheduleTime": "2001-01-01 00:00:00"}, 10007),
    ],
)
async def test_other_invalid_input_is_10007(app_client, admin, body, code) -> None:  # type: ignore[no-untyped-def]
    await admin.site_with_widget()
    response = await app_client.post(
        PATH, headers={"Access-Token": ADMIN_TOKEN}, json={"routeKey": "my_form_1", "phone": "79001234567", **body}
    )
    assert response.status_code == 400
    assert api_error(response)[0] == code


async def test_blacklist_and_throttles_get_their_codes(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    site, _ = await admin.site_with_widget(
        throttle={"userTimeoutSeconds": 0, "maxRequestsPerPhone": 1, "periodSeconds": 600}
    )
    await admin.post(f"/sites/{site['id']}/blacklist", {"phone": "79990001122"})
    headers = {"Access-Token": ADMIN_TOKEN}
    blocked = await app_client.post(PATH, headers=headers, json={"routeKey": "my_form_1", "phone": "79990001122"})
    assert api_error(blocked)[0] == 10020
    assert (
        await app_client.post(PATH, headers=headers, json={"routeKey": "my_form_1", "phone": "79001234567"})
    ).status_code == 200
    throttled = await app_client.post(PATH, headers=headers, json={"routeKey": "my_form_1", "phone": "79001234567"})
    code, message = api_error(throttled)
    assert code == 10007 and "1 per 600 s" in message


async def test_a_bad_or_missing_token_is_invalid_credentials(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    for headers in ({}, {"Access-Token": "wrong"}):
        response = await app_client.post(PATH, headers=headers, json={"routeKey": "my_form_1", "phone": "79001234567"})
        assert response.status_code == 403
        assert response.json() == {"message": "Invalid credentials"}


async def test_an_accounts_token_reaches_only_its_own_sites(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    app = app_client.app
    alice = await create_account(app.state.db, "alice@example.com", "alice-password")
    bob = await create_account(app.state.db, "bob@example.com", "bob-password")
    alice_site = await admin.post("/sites", {"name": "Alice's", "accountId": alice})
    await admin.post(f"/sites/{alice_site['id']}/widgets", {"routeKey": "alice_form"})
    bob_token = await create_token(app.state.db, bob)
    alice_token = await create_token(app.state.db, alice)
    body = {"routeKey": "alice_form", "phone": "79001234567"}
    refused = await app_client.post(PATH, headers={"Access-Token": bob_token}, json=body)
    assert api_error(refused)[0] == 10003
    refused = await app_client.post(
        PATH, headers={"Access-Token": bob_token, "SiteId": str(alice_site["id"])}, json=body
    )
    assert api_error(refused)[0] == 10003
    accepted = await app_client.post(PATH, headers={"Access-Token": alice_token}, json=body)
    assert accepted.status_code == 200
