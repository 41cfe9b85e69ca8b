"""createRequest (DESIGN §2–§4): accepted requests are committed with their due time; refusals are typed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from api.helpers import create, route_key_data
from perezvon.domain.schedule import format_utc_offset


async def test_the_reference_example_is_accepted_and_journaled_in_order(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    site, widget = await admin.site_with_widget()
    unit = await admin.post(f"/sites/{site['id']}/units", {"name": "РТТ-Автомаркет", "phone": "+7 900 000-00-00"})
    fields = [
        {"name": "Имя", "value": "Иван"},
        {"name": "Отчество", "value": "Иванович"},
        {"name": "Фамилия", "value": "Иванов"},
    ]
    response = await create(
        app_client,
        site["siteKey"],
        phone="79000000000",
        fields=fields,
        tags=["Форма заявки на тестдрайв", "Nissan"],
        unitId=unit["id"],
    )
    assert response.status_code == 200, response.text
    request_id = response.json()["callbackRequestId"]
    assert isinstance(request_id, int)

    journal = await admin.get(f"/requests/{request_id}")
    assert journal["fields"] == fields
    assert journal["tags"] == ["Форма заявки на тестдрайв", "Nissan"]
    assert journal["unitId"] == unit["id"]
    assert journal["phone"] == "79000000000"
    assert journal["status"] == "pending"
    assert journal["routeKey"] == "my_form_1"
    assert journal["scheduleTime"] is None
    assert journal["dueAt"].endswith("Z") and len(journal["dueAt"]) == 24
    assert journal["attempts"] == []


async def test_every_invalid_field_is_listed_at_once_including_site_checks(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    site, _ = await admin.site_with_widget()
    response = await create(
        app_client,
        site["siteKey"],
        phone="+79001234567",
        unitId=999999,
        scheduleTime="2020-01-01 10:00:00",
        tags=[""],
    )
    assert response.status_code == 400
    body = response.json()
    assert body["type"] == "validation_error"
    assert [f["name"] for f in body["details"]["fields"]] == ["phone", "tags[0]", "unitId", "scheduleTime"]


async def test_a_unit_of_another_site_is_refused(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    site, _ = await admin.site_with_widget()
    other = await admin.post("/sites", {"name": "Other"})
    foreign = await admin.post(f"/sites/{other['id']}/units", {"name": "Theirs", "phone": "79001112233"})
    response = await create(app_client, site["siteKey"], unitId=foreign["id"])
    assert response.json()["details"]["fields"][0]["name"] == "unitId"


async def test_unknown_or_disabled_widget_is_widget_not_found(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    site, widget = await admin.site_with_widget()
    response = await create(app_client, site["siteKey"], routeKey="missing")
    assert response.status_code == 404
    assert response.json()["type"] == "request_widget_not_found"
    await admin.patch(f"/widgets/{widget['id']}", {"enabled": False})
    assert (await create(app_client, site["siteKey"])).json()["type"] == "request_widget_not_found"


async def test_a_site_without_minutes_takes_no_requests(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    site, _ = await admin.site_with_widget()
    await admin.patch(f"/sites/{site['id']}", {"minutesBalance": 0})
    assert (await create(app_client, site["siteKey"])).json()["type"] == "request_widget_not_found"


async def test_a_blacklisted_phone_is_refused(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    site, _ = await admin.site_with_widget()
    await admin.post(f"/sites/{site['id']}/blacklist", {"phone": "+7 900 123-45-67"})
    response = await create(app_client, site["siteKey"], phone="79001234567")
    assert response.status_code == 403
    assert response.json()["type"] == "request_phone_blacklisted"
    assert (await create(app_client, site["siteKey"], phone="79001234568")).status_code == 200


async def test_outside_working_hours_a_collecting_widget_queues_for_the_next_hour(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    now = datetime.now(UTC)
    later = now + timedelta(hours=3)
    site, _ = await admin.site_with_widget(
        schedule={"utcTimezone": "UTC+00:00", "hours": [{"dayOfWeek": later.isoweekday(), "hour": later.hour}]},
        collectNonWorkingRequests=True,
    )
    response = await create(app_client, site["siteKey"])
    assert response.status_code == 200
    journal = await admin.get(f"/requests/{response.json()['callbackRequestId']}")
    expected = later.replace(minute=0, second=0, microsecond=0)
    assert journal["dueAt"] == expected.strftime("%Y-%m-%dT%H:%M:%S.000Z")


async def test_outside_working_hours_a_non_collecting_widget_refuses(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    later = datetime.now(UTC) + timedelta(hours=3)
    site, _ = await admin.site_with_widget(
        schedule={"utcTimezone": "UTC+00:00", "hours": [{"dayOfWeek": later.isoweekday(), "hour": later.hour}]},
        collectNonWorkingRequests=False,
    )
    response = await create(app_client, site["siteKey"])
    assert response.status_code == 409
    assert response.json()["type"] == "request_non_working_hours"


async def test_schedule_time_is_read_in_the_widgets_offset(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    site, _ = await admin.site_with_widget(
        schedule={
            "utcTimezone": "UTC+05:00",
            "hours": [{"dayOfWeek": d, "hour": h} for d in range(1, 8) for h in range(24)],
        }
    )
    wanted_utc = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    local = wanted_utc + timedelta(hours=5)
    schedule_time = local.strftime("%Y-%m-%d %H:%M:%S")
    response = await create(app_client, site["siteKey"], scheduleTime=schedule_time)
    assert response.status_code == 200, response.text
    journal = await admin.get(f"/requests/{response.json()['callbackRequestId']}")
    assert journal["scheduleTime"] == schedule_time
    assert journal["dueAt"] == wanted_utc.strftime("%Y-%m-%dT%H:%M:%S.000Z")


async def test_a_schedule_time_in_non_working_hours_moves_to_the_next_working_hour(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    target = (datetime.now(UTC) + timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    site, _ = await admin.site_with_widget(
        schedule={
            "utcTimezone": format_utc_offset(timedelta(0)),
            "hours": [{"dayOfWeek": target.isoweekday(), "hour": target.hour}],
        },
    )
    wanted = target - timedelta(hours=5, minutes=30)
    response = await create(app_client, site["siteKey"], scheduleTime=wanted.strftime("%Y-%m-%d %H:%M:%S"))
    journal = await admin.get(f"/requests/{response.json()['callbackRequestId']}")
    assert journal["dueAt"] == target.strftime("%Y-%m-%dT%H:%M:%S.000Z")


async def test_user_cooldown_and_phone_count_throttles(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    site, widget = await admin.site_with_widget(
        throttle={"userTimeoutSeconds": 60, "maxRequestsPerPhone": 2, "periodSeconds": 3600}
    )
    key = site["siteKey"]
    first = await app_client.post("/api/widget/v1/session", json={"site": key})
    second = await app_client.post("/api/widget/v1/session", json={"site": key})
    s1, s2 = first.json()["sessionId"], second.json()["sessionId"]
    assert (await create(app_client, key, sessionId=s1)).status_code == 200
    throttled = await create(app_client, key, sessionId=s1, phone="79001234568")
    assert throttled.status_code == 429
    assert throttled.json()["type"] == "request_throttle_timeout"
    assert int(throttled.headers["retry-after"]) >= 1
    # Another visitor (session) is not held back by the first one's cooldown...
    assert (await create(app_client, key, sessionId=s2)).status_code == 200
    # ...but the phone has had its two requests this period.
    third = await app_client.post("/api/widget/v1/session", json={"site": key})
    counted = await create(app_client, key, sessionId=third.json()["sessionId"])
    assert counted.status_code == 429
    assert counted.json()["type"] == "request_throttle_count"
    assert counted.json()["details"]["retryAfterSeconds"] >= 1


async def test_api_points_are_spent_and_an_exhausted_budget_is_refused(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    site = await admin.post("/sites", {"name": "Budget", "apiPointsPerDay": 3, "apiPointCosts": {"createRequest": 2}})
    await admin.post(f"/sites/{site['id']}/widgets", {"routeKey": "my_form_1"})
    key = site["siteKey"]
    assert (await route_key_data(app_client, key)).status_code == 200  # 1 point
    assert (await create(app_client, key)).status_code == 200  # 2 points: 3 of 3
    assert (await admin.get(f"/sites/{site['id']}"))["apiPointsSpentToday"] == 3
    refused = await route_key_data(app_client, key)
    assert refused.status_code == 429
    assert refused.json()["type"] == "api_points_exhausted"
    assert (await create(app_client, key)).json()["type"] == "api_points_exhausted"
    # Refused requests spend nothing.
    assert (await admin.get(f"/sites/{site['id']}"))["apiPointsSpentToday"] == 3


async def test_an_unknown_session_id_does_not_fail_the_request(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    site, _ = await admin.site_with_widget()
    response = await create(app_client, site["siteKey"], sessionId=987654321)
    assert response.status_code == 200
    journal = await admin.get(f"/requests/{response.json()['callbackRequestId']}")
    assert journal["sessionId"] is None


async def test_the_tracking_session_is_attached_to_the_request(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    site, _ = await admin.site_with_widget()
    session = await app_client.post(
        "/api/widget/v1/session",
        json={
            "site": site["siteKey"],
            "url": "https://shop.example/?utm_source=ya",
            "referrer": "https://ya.ru/",
            "userAgent": "Mozilla/5.0 test",
            "utmSource": "ya",
            "utmCampaign": "winter",
        },
    )
    session_id = session.json()["sessionId"]
    response = await create(app_client, site["siteKey"], sessionId=session_id)
    journal = await admin.get(f"/requests/{response.json()['callbackRequestId']}")
    assert journal["sessionId"] == session_id
    assert journal["session"]["landingUrl"] == "https://shop.example/?utm_source=ya"
    assert journal["session"]["referrer"] == "https://ya.ru/"
    assert journal["session"]["utm"] == {"utmSource": "ya", "utmCampaign": "winter"}


async def test_a_session_of_another_site_is_not_attached(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    site, _ = await admin.site_with_widget()
    other = await admin.post("/sites", {"name": "Other"})
    foreign = (await app_client.post("/api/widget/v1/session", json={"site": other["siteKey"]})).json()["sessionId"]
    response = await create(app_client, site["siteKey"], sessionId=foreign)
    assert (await admin.get(f"/requests/{response.json()['callbackRequestId']}"))["sessionId"] is None


async def test_custom_fields_the_eighth_argument_are_kept(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    site, _ = await admin.site_with_widget()
    response = await create(app_client, site["siteKey"], customFields=[{"name": "orderId", "value": "A-17"}])
    journal = await admin.get(f"/requests/{response.json()['callbackRequestId']}")
    assert journal["customFields"] == [{"name": "orderId", "value": "A-17"}]
