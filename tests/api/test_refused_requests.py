"""Requests refused at intake are kept for the site's admins: blacklisted, throttled, not allowed; a
site's own coding mistakes and unknown sites are not; a flood is capped per site."""

from __future__ import annotations

from api.helpers import create
from perezvon.services.accounts import create_account, create_token
from perezvon.services.refusals import Refusal, Refusals
from support import ADMIN_TOKEN

TWIN = "/widget-service/v1/api/widget-request/user-form/create"


async def test_blacklisted_throttled_and_closed_refusals_are_kept(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    site, widget = await admin.site_with_widget(throttle={"maxRequestsPerPhone": 1, "periodSeconds": 3600})
    await admin.post(f"/sites/{site['id']}/blacklist", {"phone": "79001230000"})
    key = site["siteKey"]
    assert (await create(app_client, key, phone="79001230000")).status_code == 403
    assert (await create(app_client, key, phone="79001234567")).status_code == 200
    assert (await create(app_client, key, phone="79001234567")).status_code == 429
    body = {"routeKey": "my_form_1", "phone": "79001230000"}
    assert (await app_client.post(TWIN, headers={"Access-Token": ADMIN_TOKEN}, json=body)).status_code == 400
    refused = await admin.get("/refusals", siteId=site["id"])
    reasons = [(r["reason"], r["phone"], r["source"]) for r in refused["items"]]
    assert reasons == [
        ("request_phone_blacklisted", "79001230000", "api"),
        ("request_throttle_count", "79001234567", "js"),
        ("request_phone_blacklisted", "79001230000", "js"),
    ]
    first = refused["items"][-1]
    assert first["widgetId"] == widget["id"] and first["routeKey"] == "my_form_1"
    assert first["message"] == "This phone number is blacklisted" and first["createdAt"].endswith("Z")
    only = await admin.get("/refusals", reason="request_throttle_count")
    assert [r["reason"] for r in only["items"]] == ["request_throttle_count"]


async def test_a_bad_number_is_kept_but_a_sites_coding_mistake_is_not(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    site, _ = await admin.site_with_widget()
    key = site["siteKey"]
    assert (await create(app_client, key, phone="+7 (900) 123")).status_code == 400
    assert (await create(app_client, key, tags="not a list")).status_code == 400
    assert (await create(app_client, "no-such-site")).status_code in (400, 404)
    items = (await admin.get("/refusals"))["items"]
    assert [(r["reason"], r["phone"]) for r in items] == [("validation_error", "+7 (900) 123")]
    assert "11 digits" in items[0]["message"]


async def test_pages_go_by_id_and_accounts_see_their_own(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    site, _ = await admin.site_with_widget()
    await admin.post(f"/sites/{site['id']}/blacklist", {"phone": "79001230000"})
    for _ in range(3):
        await create(app_client, site["siteKey"], phone="79001230000")
    page = await admin.get("/refusals", limit=2)
    assert len(page["items"]) == 2 and page["next"] is not None
    rest = await admin.get("/refusals", limit=2, before=page["next"])
    assert len(rest["items"]) == 1 and rest["next"] is None
    bob = await create_account(app_client.app.state.db, "bob@example.com", "bob-password")
    headers = {"Authorization": f"Bearer {await create_token(app_client.app.state.db, bob)}"}
    assert (await app_client.get("/api/admin/v1/refusals", headers=headers)).json()["items"] == []
    foreign = await app_client.get("/api/admin/v1/refusals", params={"siteId": site["id"]}, headers=headers)
    assert foreign.status_code == 404


async def test_a_flood_of_refusals_is_capped_per_site_and_minute(db, database_url) -> None:  # type: ignore[no-untyped-def]
    from catalog_rows import add_site
    from perezvon.services.accounts import OPERATOR
    from perezvon.services.catalog import Catalog
    from perezvon.store.snapshots import SnapshotCache

    site_id = await add_site(Catalog(db, SnapshotCache(db)), OPERATOR)
    refusals = Refusals(db, per_minute=5)
    refusal = Refusal(site_id, None, "my_form_1", "79001230000", "request_phone_blacklisted", "blacklisted", "js")
    for _ in range(8):
        await refusals.record(refusal)
    assert len(await refusals.list(OPERATOR)) == 5
