"""The drop-in widget's server side (DESIGN §7 "Widgets on the page"): ui settings, the page look-up,
analytics events on createRequest, and a visitor's own request status."""

from __future__ import annotations

import json

from api.helpers import create
from perezvon.domain.widget_ui import phone_plan, zone_country

UI = "/api/widget/v1/ui"
STATUS = "/api/widget/v1/request-status"


async def page_widgets(client, site_key: str, **headers: str) -> list[dict]:  # type: ignore[no-untyped-def]
    response = await client.post(UI, content=json.dumps({"site": site_key}), headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    return response.json()["widgets"]


async def test_a_new_widget_has_its_ui_and_analytics_off(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    site, widget = await admin.site_with_widget()
    assert widget["ui"]["enabled"] is False
    assert widget["ui"]["position"] == "bottom-right" and widget["ui"]["language"] == "ru"
    assert widget["analytics"] == {"enabled": False, "goal": "callback_request", "metrikaCounterId": None}
    assert await page_widgets(app_client, site["siteKey"]) == []


async def test_a_page_loaded_after_switching_the_ui_on_gets_it(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    site, widget = await admin.site_with_widget()
    await admin.post(f"/sites/{site['id']}/widgets", {"routeKey": "quiet_form"})  # ui off: not listed
    changed = await admin.patch(
        f"/widgets/{widget['id']}",
        {"ui": {"enabled": True, "color": "#ffd400", "title": "<b>Звонок</b>", "pages": ["/catalog/*", "!*/cart"]}},
    )
    assert changed["ui"]["enabled"] is True and changed["ui"]["language"] == "ru"  # the rest kept its defaults
    [shown] = await page_widgets(app_client, site["siteKey"])
    assert shown["routeKey"] == "my_form_1"
    assert shown["ui"]["color"] == "#ffd400" and shown["ui"]["title"] == "<b>Звонок</b>"  # text, escaped by the widget
    assert shown["ui"]["pages"] == ["/catalog/*", "!*/cart"]
    assert shown["phone"] == {"country": "RU", "callingCode": "7", "trunkPrefix": "8"}
    assert shown["utcTimezone"] == widget["schedule"]["utcTimezone"]
    assert "enabled" not in shown["ui"]

    await admin.patch(f"/widgets/{widget['id']}", {"enabled": False})
    assert await page_widgets(app_client, site["siteKey"]) == []


async def test_ui_settings_are_validated(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    site, widget = await admin.site_with_widget()
    headers = admin.headers
    for bad in (
        {"color": "red"},
        {"position": "top"},
        {"language": "de"},
        {"nameField": "maybe"},
        {"delaySeconds": -1},
        {"displaySchedule": {"days": [1], "fromHour": 18, "toHour": 9}},
    ):
        response = await app_client.patch(f"/api/admin/v1/widgets/{widget['id']}", json={"ui": bad}, headers=headers)
        assert response.status_code == 400, (bad, response.text)
        assert response.json()["type"] == "validation_error"
    response = await app_client.patch(
        f"/api/admin/v1/widgets/{widget['id']}", json={"analytics": {"goal": "has space"}}, headers=headers
    )
    assert response.status_code == 400


async def test_unknown_site_or_origin_not_allowed(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    assert await page_widgets(app_client, "no-such-site") == []
    site = await admin.post("/sites", {"name": "Shop", "allowedOrigins": ["https://shop.example"]})
    await admin.post(f"/sites/{site['id']}/widgets", {"routeKey": "f", "ui": {"enabled": True}})
    assert len(await page_widgets(app_client, site["siteKey"], Origin="https://shop.example")) == 1
    refused = await app_client.post(
        UI, content=json.dumps({"site": site["siteKey"]}), headers={"Origin": "https://evil.example"}
    )
    assert refused.status_code == 403 and refused.json()["type"] == "origin_not_allowed"
    assert refused.headers["access-control-allow-origin"] == "https://evil.example"


async def test_the_page_look_up_spends_no_points(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    site, widget = await admin.site_with_widget(ui={"enabled": True})
    for _ in range(5):
        await page_widgets(app_client, site["siteKey"])
    assert (await admin.get(f"/sites/{site['id']}"))["apiPointsSpentToday"] == 0


async def test_analytics_events_ride_on_the_create_answer_only_when_switched_on(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    site, widget = await admin.site_with_widget()
    answer = (await create(app_client, site["siteKey"])).json()
    assert "analytics" not in answer
    await admin.patch(
        f"/widgets/{widget['id']}", {"analytics": {"enabled": True, "goal": "callback_ok", "metrikaCounterId": 12345}}
    )
    answer = (await create(app_client, site["siteKey"], phone="79001234568")).json()
    assert answer["analytics"] == {"goal": "callback_ok", "metrikaCounterId": 12345}
    assert isinstance(answer["callbackRequestId"], int)


async def test_a_visitor_reads_only_their_own_request_with_its_token(app_client, admin) -> None:  # type: ignore[no-untyped-def]
    site, _ = await admin.site_with_widget()
    other, _ = await admin.site_with_widget()
    answer = (await create(app_client, site["siteKey"])).json()
    token, request_id = answer["statusToken"], answer["callbackRequestId"]
    assert isinstance(token, str) and len(token) >= 20

    def read(site_key: str, rid: object, tok: object):  # type: ignore[no-untyped-def]
        body = {"site": site_key, "callbackRequestId": rid, "statusToken": tok}
        return app_client.post(STATUS, content=json.dumps(body))

    ok = await read(site["siteKey"], request_id, token)
    assert ok.status_code == 200, ok.text
    status = ok.json()
    assert status["callbackRequestId"] == request_id and status["status"] == "pending"
    assert status["dueAt"].endswith("Z") and status["lastOutcome"] is None and status["operatorOnLine"] is False
    assert "phone" not in status and "fields" not in status

    for site_key, rid, tok in (
        (site["siteKey"], request_id, token[:-1] + ("A" if token[-1] != "A" else "B")),
        (site["siteKey"], request_id, ""),
        (site["siteKey"], request_id, None),
        (site["siteKey"], str(request_id), token),
        (site["siteKey"], request_id + 1, token),
        (other["siteKey"], request_id, token),
        ("no-such-site", request_id, token),
    ):
        refused = await read(site_key, rid, tok)
        assert refused.status_code == 404, (site_key, rid, tok)
        assert refused.json()["type"] == "request_not_found"


def test_the_phone_plan_follows_the_sites_zone() -> None:
    assert zone_country("Europe/Moscow") == "RU"
    assert zone_country("Asia/Almaty") == "KZ"
    assert zone_country("America/New_York") == "US"
    assert zone_country("UTC") == "RU"
    assert phone_plan("US") == {"country": "US", "callingCode": "1", "trunkPrefix": "1"}


async def test_the_widget_file_goes_out_gzipped_within_eight_kilobytes(app_client) -> None:  # type: ignore[no-untyped-def]
    response = await app_client.get("/ctw-widget.js", headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert response.headers["content-encoding"] == "gzip"
    assert response.headers["content-type"].startswith("application/javascript")
    assert int(response.headers["content-length"]) <= 8192
    assert "perezvon-widget" in response.text
