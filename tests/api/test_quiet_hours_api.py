"""A widget's quiet hours and per-outcome redial intervals (#11) through the admin API."""

from __future__ import annotations


async def test_quiet_hours_default_custom_and_off(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    site, widget = await admin.site_with_widget()
    assert widget["quietHours"] == {"start": "21:00", "end": "09:00"}
    assert widget["callback"]["redialBusyIntervalSeconds"] is None  # falls back to redialIntervalSeconds
    patched = await admin.patch(f"/widgets/{widget['id']}", {"quietHours": {"start": "22:30", "end": "08:00"}})
    assert patched["quietHours"] == {"start": "22:30", "end": "08:00"}
    patched = await admin.patch(f"/widgets/{widget['id']}", {"name": "kept"})
    assert patched["quietHours"] == {"start": "22:30", "end": "08:00"}
    patched = await admin.patch(f"/widgets/{widget['id']}", {"quietHours": None})
    assert patched["quietHours"] is None
    patched = await admin.patch(
        f"/widgets/{widget['id']}",
        {"callback": {"redialBusyIntervalSeconds": 120, "redialNoAnswerIntervalSeconds": 900}},
    )
    assert (patched["callback"]["redialBusyIntervalSeconds"], patched["callback"]["redialNoAnswerIntervalSeconds"]) == (
        120,
        900,
    )
    none = await admin.post(f"/sites/{site['id']}/widgets", {"routeKey": "night_ok", "quietHours": None})
    assert none["quietHours"] is None


async def test_bad_quiet_hours_are_refused_by_field(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    _, widget = await admin.site_with_widget()
    response = await app_client.patch(
        f"/api/admin/v1/widgets/{widget['id']}",
        headers=admin.headers,
        json={"quietHours": {"start": "25:00", "end": "9"}, "callback": {"redialBusyIntervalSeconds": 1}},
    )
    assert response.status_code == 400, response.text
    names = {f["name"] for f in response.json()["details"]["fields"]}
    assert {"quietHours.start", "quietHours.end", "callback.redialBusyIntervalSeconds"} <= names
