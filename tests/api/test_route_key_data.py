"""getRouteKeyData's answers (DESIGN §2), on SQLite and PostgreSQL."""

from __future__ import annotations

from api.helpers import route_key_data


async def test_it_finds_an_enabled_widget_with_its_schedule(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    site, widget = await admin.site_with_widget(
        collectNonWorkingRequests=False,
        schedule={"utcTimezone": "UTC+03:00", "hours": [{"dayOfWeek": 1, "hour": 10}, {"dayOfWeek": 1, "hour": 9}]},
    )
    response = await route_key_data(app_client, site["siteKey"])
    assert response.status_code == 200
    data = response.json()
    assert data["widgetFound"] is True
    widget_data = data["widgetData"]
    assert widget_data["callCenterWorkingMode"] in ("working_hours", "non_working_hours")
    assert widget_data["collectNonWorkingRequests"] is False
    assert widget_data["collectRequests"] is False
    assert widget_data["widgetId"] == widget["id"]
    assert widget_data["workingSchedule"] == {
        "utcTimezone": "UTC+03:00",
        "hours": [{"hour": 9, "dayOfWeek": 1}, {"hour": 10, "dayOfWeek": 1}],
    }


async def test_a_widget_working_around_the_clock_is_in_working_hours(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    site, _ = await admin.site_with_widget()
    data = (await route_key_data(app_client, site["siteKey"])).json()
    assert data["widgetData"]["callCenterWorkingMode"] == "working_hours"
    assert len(data["widgetData"]["workingSchedule"]["hours"]) == 168


async def test_a_schedule_without_the_current_hour_is_non_working(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    site, widget = await admin.site_with_widget(schedule={"utcTimezone": "UTC+00:00", "hours": []})
    data = (await route_key_data(app_client, site["siteKey"])).json()
    assert data["widgetData"]["callCenterWorkingMode"] == "non_working_hours"


async def test_unknown_disabled_or_inactive_means_widget_not_found(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    not_found = {"widgetFound": False, "widgetData": None}
    site, widget = await admin.site_with_widget()
    assert (await route_key_data(app_client, site["siteKey"], "other")).json() == not_found
    assert (await route_key_data(app_client, "no-such-site")).json() == not_found

    await admin.patch(f"/widgets/{widget['id']}", {"enabled": False})
    assert (await route_key_data(app_client, site["siteKey"])).json() == not_found
    await admin.patch(f"/widgets/{widget['id']}", {"enabled": True})
    assert (await route_key_data(app_client, site["siteKey"])).json()["widgetFound"] is True

    await admin.patch(f"/sites/{site['id']}", {"callbackActive": False})
    assert (await route_key_data(app_client, site["siteKey"])).json() == not_found
    await admin.patch(f"/sites/{site['id']}", {"callbackActive": True, "minutesBalance": 0})
    assert (await route_key_data(app_client, site["siteKey"])).json() == not_found


async def test_a_bad_route_key_is_a_validation_error(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    site, _ = await admin.site_with_widget()
    for bad in ("", None, 42, "x" * 256):
        response = await route_key_data(app_client, site["siteKey"], bad)
        assert response.status_code == 400
        body = response.json()
        assert body["type"] == "validation_error"
        assert body["details"]["fields"][0]["name"] == "routeKey"


async def test_a_body_that_is_not_json_is_a_validation_error(app_client) -> None:  # type: ignore[no-untyped-def]
    response = await app_client.post("/api/widget/v1/route-key-data", content=b"{nope")
    assert response.status_code == 400
    assert response.json()["type"] == "validation_error"
    assert set(response.json()) == {"type", "message", "details"}
