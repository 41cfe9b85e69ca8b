"""Widget schedules in IANA zones (DESIGN §7): the admin API's schedule shape, and what the public API
reads from it across daylight-saving time. Real time: expectations are computed for today's offsets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from api.helpers import create, route_key_data
from perezvon.domain.schedule import offset_of_zone

ALL_WEEK = [{"dayOfWeek": d, "hour": h} for d in range(1, 8) for h in range(24)]
BERLIN = ZoneInfo("Europe/Berlin")


async def _berlin_site(admin) -> dict:  # type: ignore[no-untyped-def]
    berlin = {"name": "Berlin shop", "timezone": "Europe/Berlin", "allowedCountries": ["DE", "RU"]}
    return await admin.post("/sites", berlin)


async def test_a_widget_made_with_only_a_route_key_takes_the_sites_zone(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    site = await _berlin_site(admin)
    widget = await admin.post(f"/sites/{site['id']}/widgets", {"routeKey": "call_me"})
    assert widget["schedule"]["timezone"] == "Europe/Berlin"
    assert widget["schedule"]["utcTimezone"] == offset_of_zone("Europe/Berlin", datetime.now(UTC))
    assert len(widget["schedule"]["hours"]) == 168
    assert await admin.get(f"/widgets/{widget['id']}") == widget


async def test_a_body_with_only_utc_timezone_keeps_that_fixed_offset(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    site = await _berlin_site(admin)
    widget = await admin.post(
        f"/sites/{site['id']}/widgets", {"routeKey": "old", "schedule": {"utcTimezone": "UTC+05:00", "hours": []}}
    )
    assert widget["schedule"] == {"timezone": None, "utcTimezone": "UTC+05:00", "hours": []}


async def test_timezone_wins_over_a_stale_utc_timezone_sent_back(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    site = await _berlin_site(admin)
    widget = await admin.post(
        f"/sites/{site['id']}/widgets",
        {"routeKey": "w", "schedule": {"timezone": "America/New_York", "utcTimezone": "UTC+09:00", "hours": ALL_WEEK}},
    )
    assert widget["schedule"]["timezone"] == "America/New_York"
    assert widget["schedule"]["utcTimezone"] == offset_of_zone("America/New_York", datetime.now(UTC))


async def test_patch_changes_the_zone_or_the_hours_alone(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    site = await _berlin_site(admin)
    widget = await admin.post(f"/sites/{site['id']}/widgets", {"routeKey": "w"})
    moved = await admin.patch(f"/widgets/{widget['id']}", {"schedule": {"timezone": "Asia/Kolkata"}})
    assert moved["schedule"]["timezone"] == "Asia/Kolkata" and len(moved["schedule"]["hours"]) == 168
    assert moved["schedule"]["utcTimezone"] == "UTC+05:30"
    cut = await admin.patch(f"/widgets/{widget['id']}", {"schedule": {"hours": [{"dayOfWeek": 1, "hour": 9}]}})
    assert cut["schedule"]["timezone"] == "Asia/Kolkata" and cut["schedule"]["hours"] == [{"dayOfWeek": 1, "hour": 9}]
    fixed = await admin.patch(f"/widgets/{widget['id']}", {"schedule": {"utcTimezone": "UTC-03:00"}})
    assert fixed["schedule"]["timezone"] is None and fixed["schedule"]["utcTimezone"] == "UTC-03:00"


async def test_a_zone_that_is_no_iana_name_is_a_validation_error(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    site = await _berlin_site(admin)
    response = await admin.client.post(
        f"/api/admin/v1/sites/{site['id']}/widgets",
        json={"routeKey": "w", "schedule": {"timezone": "Mars/Olympus", "hours": []}},
        headers=admin.headers,
    )
    assert response.status_code == 400
    body = response.json()
    assert body["type"] == "validation_error"
    assert [f["name"] for f in body["details"]["fields"]] == ["schedule.timezone"]


async def test_route_key_data_shows_the_zones_offset_now(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    site = await _berlin_site(admin)
    await admin.post(f"/sites/{site['id']}/widgets", {"routeKey": "my_form_1"})
    data = (await route_key_data(app_client, site["siteKey"])).json()
    assert data["widgetData"]["workingSchedule"]["utcTimezone"] == offset_of_zone("Europe/Berlin", datetime.now(UTC))


def _next(month: int, day: int, hour: int) -> datetime:
    """That wall time in Berlin in the next year that has it ahead of now (naive, for scheduleTime)."""
    year = datetime.now(UTC).year + 1
    return datetime(year, month, day, hour, 0, 0)


async def test_schedule_time_is_read_with_the_offset_of_its_own_date(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    site = await _berlin_site(admin)
    await admin.post(f"/sites/{site['id']}/widgets", {"routeKey": "my_form_1"})
    for wall, offset_hours in ((_next(1, 15, 10), 1), (_next(7, 15, 10), 2)):  # CET, then CEST
        response = await create(app_client, site["siteKey"], scheduleTime=wall.strftime("%Y-%m-%d %H:%M:%S"))
        assert response.status_code == 200, response.text
        journal = await admin.get(f"/requests/{response.json()['callbackRequestId']}")
        assert journal["dueAt"] == (wall - timedelta(hours=offset_hours)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


async def test_a_summer_request_outside_hours_waits_for_nine_local(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    site = await _berlin_site(admin)
    await admin.post(
        f"/sites/{site['id']}/widgets",
        {"routeKey": "my_form_1", "schedule": {"timezone": "Europe/Berlin", "hours": [{"dayOfWeek": 1, "hour": 9}]}},
    )
    wall = _next(7, 1, 20)  # an evening in July, before the next Monday
    response = await create(app_client, site["siteKey"], scheduleTime=wall.strftime("%Y-%m-%d %H:%M:%S"))
    journal = await admin.get(f"/requests/{response.json()['callbackRequestId']}")
    due = datetime.fromisoformat(journal["dueAt"].replace("Z", "+00:00")).astimezone(BERLIN)
    assert (due.isoweekday(), due.hour, due.minute) == (1, 9, 0)
    assert due.utcoffset() == timedelta(hours=2)
