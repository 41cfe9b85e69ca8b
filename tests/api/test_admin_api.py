"""The admin REST API (DESIGN §5): shapes, validation, tenancy and the journal."""

from __future__ import annotations

import re

from api.helpers import create
from perezvon.services.accounts import create_account, create_token
from support import Admin

ISO_MS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


async def test_create_answers_201_with_the_whole_resource_and_get_matches(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    site = await admin.post(
        "/sites", {"name": "Shop", "timezone": "Europe/Moscow", "allowedOrigins": ["https://Shop.example/"]}
    )
    assert site["id"] and site["siteKey"] and site["name"] == "Shop"
    assert site["allowedOrigins"] == ["https://shop.example"]
    assert ISO_MS.fullmatch(site["createdAt"])
    assert await admin.get(f"/sites/{site['id']}") == site

    widget = await admin.post(f"/sites/{site['id']}/widgets", {"routeKey": "f1"})
    assert widget["enabled"] is True
    assert widget["callback"]["announcement"] is True
    assert widget["callback"]["operatorConfirm"] is False
    assert widget["callback"]["ringTimeoutSeconds"] == 30
    assert widget["schedule"]["utcTimezone"] == "UTC+03:00"
    assert len(widget["schedule"]["hours"]) == 168
    assert await admin.get(f"/widgets/{widget['id']}") == widget

    unit = await admin.post(f"/sites/{site['id']}/units", {"name": "Sales", "phone": "8 (900) 123-45-67"})
    assert unit["phone"] == "79001234567"
    assert await admin.get(f"/units/{unit['id']}") == unit
    entry = await admin.post(f"/sites/{site['id']}/blacklist", {"phone": "+79005554433"})
    assert entry["phone"] == "79005554433"
    assert (await admin.get(f"/sites/{site['id']}/blacklist"))[0]["id"] == entry["id"]


async def test_patch_merges_nested_settings(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    _, widget = await admin.site_with_widget(callback={"redialAttempts": 4, "language": "en"})
    patched = await admin.patch(f"/widgets/{widget['id']}", {"callback": {"ringTimeoutSeconds": 20}})
    assert patched["callback"]["redialAttempts"] == 4
    assert patched["callback"]["language"] == "en"
    assert patched["callback"]["ringTimeoutSeconds"] == 20
    patched = await admin.patch(f"/widgets/{widget['id']}", {"throttle": {"maxRequestsPerPhone": 3}})
    assert patched["throttle"] == {"userTimeoutSeconds": 0, "maxRequestsPerPhone": 3, "periodSeconds": 3600}


async def test_voicemail_detection_is_on_by_default_and_can_be_switched_off(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    _, widget = await admin.site_with_widget()
    assert widget["voicemailDetection"] is True
    patched = await admin.patch(f"/widgets/{widget['id']}", {"voicemailDetection": False})
    assert patched["voicemailDetection"] is False
    assert (await admin.patch(f"/widgets/{widget['id']}", {"name": "Form"}))["voicemailDetection"] is False


async def test_bad_input_gets_every_field_in_the_error_shape(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    site = await admin.post("/sites", {"name": "Shop"})
    response = await app_client.post(
        f"/api/admin/v1/sites/{site['id']}/widgets",
        headers=admin.headers,
        json={
            "routeKey": "",
            "schedule": {"utcTimezone": "MSK", "hours": [{"dayOfWeek": 8, "hour": 24}]},
            "operatorPhones": ["not a phone"],
        },
    )
    assert response.status_code == 400
    body = response.json()
    assert body["type"] == "validation_error"
    names = {f["name"] for f in body["details"]["fields"]}
    assert {
        "routeKey",
        "schedule.utcTimezone",
        "schedule.hours[0].dayOfWeek",
        "schedule.hours[0].hour",
        "operatorPhones",
    } <= names
    response = await app_client.post("/api/admin/v1/sites", headers=admin.headers, json={"timezone": "Mars/Base"})
    assert {f["name"] for f in response.json()["details"]["fields"]} == {"name", "timezone"}


async def test_a_duplicate_route_key_is_a_conflict(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    site, _ = await admin.site_with_widget("f1")
    response = await app_client.post(
        f"/api/admin/v1/sites/{site['id']}/widgets", headers=admin.headers, json={"routeKey": "f1"}
    )
    assert response.status_code == 409
    assert response.json()["type"] == "conflict"


async def test_without_a_token_nothing_is_reachable(app_client) -> None:  # type: ignore[no-untyped-def]
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}):
        response = await app_client.get("/api/admin/v1/sites", headers=headers)
        assert response.status_code == 401
        assert response.json()["type"] == "unauthorized"


async def test_an_account_reaches_only_its_own_sites(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    db = app_client.app.state.db
    alice = Admin(app_client, await create_token(db, await create_account(db, "alice@example.com", "password-a")))
    bob = Admin(app_client, await create_token(db, await create_account(db, "bob@example.com", "password-b")))
    site, widget = await alice.site_with_widget()
    unit = await alice.post(f"/sites/{site['id']}/units", {"name": "U", "phone": "79001112233"})
    accepted = await create(app_client, site["siteKey"])

    assert [s["id"] for s in await bob.get("/sites")] == []
    for path in (
        f"/sites/{site['id']}",
        f"/widgets/{widget['id']}",
        f"/units/{unit['id']}",
        f"/sites/{site['id']}/widgets",
        f"/requests/{accepted.json()['callbackRequestId']}",
    ):
        response = await app_client.get(f"/api/admin/v1{path}", headers=bob.headers)
        assert response.status_code == 404, path
    response = await app_client.patch(
        f"/api/admin/v1/widgets/{widget['id']}", headers=bob.headers, json={"enabled": False}
    )
    assert response.status_code == 404
    response = await app_client.delete(f"/api/admin/v1/sites/{site['id']}", headers=bob.headers)
    assert response.status_code == 404
    assert (await bob.get("/requests"))["total"] == 0
    assert (await alice.get("/requests"))["total"] == 1
    # The operator token reaches everything.
    assert (await admin.get("/requests"))["total"] == 1
    # An account cannot create a site for someone else.
    response = await app_client.post("/api/admin/v1/sites", headers=bob.headers, json={"name": "x", "accountId": 1})
    assert response.status_code == 403


async def test_the_journal_filters_and_pages(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    site, widget = await admin.site_with_widget()
    unit = await admin.post(f"/sites/{site['id']}/units", {"name": "U", "phone": "79001112233"})
    key = site["siteKey"]
    for i in range(7):
        await create(
            app_client,
            key,
            phone=f"7900123450{i}",
            tags=["hot"] if i % 2 else ["cold"],
            fields=[{"name": "Name", "value": f"Ivan{i}"}],
            unitId=unit["id"] if i < 2 else None,
        )
    page = await admin.get("/requests", limit=3, offset=0)
    assert page["total"] == 7 and len(page["items"]) == 3
    assert [r["phone"] for r in page["items"]] == ["79001234506", "79001234505", "79001234504"]
    assert (await admin.get("/requests", limit=3, offset=6))["items"][0]["phone"] == "79001234500"
    assert (await admin.get("/requests", tag="hot"))["total"] == 3
    assert (await admin.get("/requests", unitId=unit["id"]))["total"] == 2
    assert (await admin.get("/requests", phone="4503"))["total"] == 1
    assert (await admin.get("/requests", q="ivan5"))["total"] == 1
    assert (await admin.get("/requests", status="pending"))["total"] == 7
    assert (await admin.get("/requests", status="completed"))["total"] == 0
    assert (await admin.get("/requests", dateFrom="2000-01-01", dateTo="2100-01-01"))["total"] == 7
    assert (await admin.get("/requests", dateFrom="2100-01-01"))["total"] == 0
    bad = await app_client.get("/api/admin/v1/requests", params={"status": "nope"}, headers=admin.headers)
    assert bad.status_code == 400 and bad.json()["type"] == "validation_error"


async def test_delete_removes_and_then_404(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    site, widget = await admin.site_with_widget()
    entry = await admin.post(f"/sites/{site['id']}/blacklist", {"phone": "79001234567"})
    for path in (f"/blacklist/{entry['id']}", f"/widgets/{widget['id']}", f"/sites/{site['id']}"):
        assert (await app_client.delete(f"/api/admin/v1{path}", headers=admin.headers)).status_code == 204
    assert (await app_client.get(f"/api/admin/v1/sites/{site['id']}", headers=admin.headers)).status_code == 404


async def test_the_openapi_document_describes_the_admin_api(app_client) -> None:  # type: ignore[no-untyped-def]
    document = (await app_client.get("/api/openapi.json")).json()
    for path in (
        "/api/admin/v1/sites",
        "/api/admin/v1/sites/{site_id}/widgets",
        "/api/admin/v1/requests/{request_id}",
        "/api/admin/v1/units/{unit_id}",
        "/api/admin/v1/blacklist/{entry_id}",
    ):
        assert path in document["paths"], path
    assert "routeKey" in document["components"]["schemas"]["WidgetIn"]["properties"]
