"""Limits stay exact under concurrency: calls in flight at once cannot spend past a budget."""

from __future__ import annotations

import asyncio

ALWAYS = {"utcTimezone": "UTC+00:00", "hours": [{"dayOfWeek": d, "hour": h} for d in range(1, 8) for h in range(24)]}


async def test_concurrent_calls_never_spend_past_the_daily_points(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    site, _ = await admin.site_with_widget()
    await admin.patch(f"/sites/{site['id']}", {"apiPointsPerDay": 3})
    body = {"site": site["siteKey"], "routeKey": "my_form_1"}
    answers = await asyncio.gather(
        *(app_client.post("/api/widget/v1/requests", json={**body, "phone": f"7900123456{i}"}) for i in range(8))
    )
    kinds = sorted(a.json().get("type", "ok") for a in answers)
    assert kinds == ["api_points_exhausted"] * 5 + ["ok"] * 3
    assert (await admin.get(f"/sites/{site['id']}"))["apiPointsSpentToday"] == 3


async def test_a_refused_call_gives_its_points_back(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    site, _ = await admin.site_with_widget()
    await admin.patch(f"/sites/{site['id']}", {"apiPointsPerDay": 2})
    await admin.post(f"/sites/{site['id']}/blacklist", {"phone": "79001234567"})
    body = {"site": site["siteKey"], "routeKey": "my_form_1"}
    refused = await app_client.post("/api/widget/v1/requests", json={**body, "phone": "79001234567"})
    assert refused.json()["type"] == "request_phone_blacklisted"
    assert (await admin.get(f"/sites/{site['id']}"))["apiPointsSpentToday"] == 0
    for phone in ("79001234568", "79001234569"):
        assert (await app_client.post("/api/widget/v1/requests", json={**body, "phone": phone})).status_code == 200
    last = await app_client.post("/api/widget/v1/requests", json={**body, "phone": "79001234570"})
    assert last.json()["type"] == "api_points_exhausted"
    assert last.json()["details"] == {"pointsPerDay": 2, "pointsSpent": 2}
