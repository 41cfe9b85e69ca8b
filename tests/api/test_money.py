"""Money (DESIGN §7): only an operator sets minutes and points; every change of minutes is a ledger row."""

from __future__ import annotations

import httpx

from perezvon.services.accounts import create_account, create_token
from perezvon.store import ledger
from support import Admin


async def _alice(app_client: httpx.AsyncClient) -> Admin:
    db = app_client.app.state.db  # type: ignore[attr-defined]
    return Admin(app_client, await create_token(db, await create_account(db, "alice@example.com", "password-a")))


async def _sum(app_client: httpx.AsyncClient, site_id: int) -> int:
    async with app_client.app.state.db.read() as conn:  # type: ignore[attr-defined]
        return await ledger.total(conn, site_id)


async def test_it_refuses_an_account_that_sets_its_own_balance_or_points(app_client) -> None:  # type: ignore[no-untyped-def]
    alice = await _alice(app_client)
    for body in ({"minutesBalance": 99999}, {"apiPointsPerDay": 10**6}, {"minutesBalance": 5, "name": "x"}):
        response = await app_client.post("/api/admin/v1/sites", json={"name": "Mine", **body}, headers=alice.headers)
        assert response.status_code == 403 and response.json()["type"] == "forbidden", body
    assert await alice.get("/sites") == []  # nothing was created

    site = await alice.post("/sites", {"name": "Mine"})  # an account's site gets the defaults
    assert (site["minutesBalance"], site["apiPointsPerDay"]) == (1000, 50_000)
    for body in ({"minutesBalance": 99999}, {"apiPointsPerDay": 1}, {"name": "Renamed", "minutesBalance": 7}):
        response = await app_client.patch(f"/api/admin/v1/sites/{site['id']}", json=body, headers=alice.headers)
        assert response.status_code == 403 and response.json()["type"] == "forbidden", body
    unchanged = await alice.get(f"/sites/{site['id']}")
    assert (unchanged["name"], unchanged["minutesBalance"], unchanged["apiPointsPerDay"]) == ("Mine", 1000, 50_000)
    response = await app_client.post(
        f"/api/admin/v1/sites/{site['id']}/minutes", json={"minutes": 10}, headers=alice.headers
    )
    assert response.status_code == 403


async def test_the_ledger_starts_with_the_balance_and_always_sums_to_it(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    site = await admin.post("/sites", {"name": "Paid", "minutesBalance": 300})
    topped = await admin.post(f"/sites/{site['id']}/minutes", {"minutes": 200, "note": "invoice 17"})
    assert topped["kind"] == "topup" and topped["minutes"] == 200 and topped["note"] == "invoice 17"
    assert set(topped) == {"id", "at", "minutes", "kind", "requestId", "note"}
    await admin.patch(f"/sites/{site['id']}", {"minutesBalance": 450})  # an operator sets it: -50

    book = await admin.get(f"/sites/{site['id']}/ledger")
    assert book["total"] == 3
    assert [(e["kind"], e["minutes"]) for e in book["items"]] == [("adjustment", -50), ("topup", 200), ("topup", 300)]
    assert book["items"][-1]["note"] == "starting balance"
    assert (await admin.get(f"/sites/{site['id']}"))["minutesBalance"] == 450 == await _sum(app_client, site["id"])


async def test_minutes_cannot_be_taken_below_zero(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    site = await admin.post("/sites", {"name": "Small", "minutesBalance": 5})
    response = await app_client.post(
        f"/api/admin/v1/sites/{site['id']}/minutes", json={"minutes": -6}, headers=admin.headers
    )
    assert response.status_code == 409
    too_many = await app_client.post(
        f"/api/admin/v1/sites/{site['id']}/minutes", json={"minutes": 2**31 - 2}, headers=admin.headers
    )
    assert too_many.status_code == 409  # found by schemathesis: a 32-bit balance overflowed on PostgreSQL
    taken = await admin.post(f"/sites/{site['id']}/minutes", {"minutes": -5, "note": "refund"})
    assert taken["kind"] == "adjustment"
    assert (await admin.get(f"/sites/{site['id']}"))["minutesBalance"] == 0 == await _sum(app_client, site["id"])


async def test_another_accounts_ledger_is_not_found(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    alice = await _alice(app_client)
    site = await admin.post("/sites", {"name": "Operator's"})
    response = await app_client.get(f"/api/admin/v1/sites/{site['id']}/ledger", headers=alice.headers)
    assert response.status_code == 404


async def test_a_sites_destinations_default_from_its_zone_and_can_be_set(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    moscow = await admin.post("/sites", {"name": "Moscow", "timezone": "Europe/Moscow"})
    assert (moscow["allowedCountries"], moscow["maxRequestsPerNumberPerDay"]) == (["RU"], 5)
    assert (await admin.post("/sites", {"name": "NY", "timezone": "America/New_York"}))["allowedCountries"] == ["US"]
    both = await admin.patch(
        f"/sites/{moscow['id']}", {"allowedCountries": ["RU", "KZ"], "maxRequestsPerNumberPerDay": 0}
    )
    assert (both["allowedCountries"], both["maxRequestsPerNumberPerDay"]) == (["RU", "KZ"], 0)
    for bad in (["ru"], ["XX"], [], ["RUS"]):
        response = await app_client.patch(
            f"/api/admin/v1/sites/{moscow['id']}", json={"allowedCountries": bad}, headers=admin.headers
        )
        assert response.status_code == 400, bad
