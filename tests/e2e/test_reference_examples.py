"""The reference page's examples, verbatim, in Chromium, on a page from a second origin, against a real
``perezvon serve`` provisioned through the admin API (the fixed contracts of DESIGN §5)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from e2e.browser import CHROMIUM, CHROMIUM_ARGS, page_host, require_chromium
from support import ADMIN_TOKEN

pytestmark = pytest.mark.e2e

# The reference's examples, copied as they stand (only console.log kept: the test reads the console).
GET_ROUTE_KEY_DATA = """
window.ctw.getRouteKeyData('my_form_1', function(success, data){
    console.log(success, data);
    if (success) {
        if (data.widgetFound) {
            if (data.widgetData.callCenterWorkingMode == 'working_hours') {
                console.log('колл-центр работает, отображение виджета');
            } else {
                if (data.widgetData.collectNonWorkingRequests) {
                    console.log('колл-центр не работает, но можем отобразить форму нерабочего времени'); } else { console.log('колл-центр не работает, заявки в нерабочее время не собираем'); } } } else { console.log('не найден включенный виджет по routeKey, либо услуга обратного звонка не активна'); } } else { console.log('во время обработки произошла ошибка'); console.log(data) } });
"""

CREATE_REQUEST = """
window.ctw.createRequest(
    'my_form_1',
    'PHONE',
    [
        {"name": "Name", "value": "Ivan"},
        {"name": "Last name", "value": "Petrov"}
    ],
    function(success, data){
        console.log(success, data)
        if (success) {
            console.log('Создана заявка на колбек, идентификатор: ' + data.callbackRequestId)
        } else {
            switch(data.type) {
                case "request_throttle_timeout":
                case "request_throttle_count":
                    console.log('Достигнут лимит создания заявок, попробуйте позже');
                    break;
                case "request_phone_blacklisted":
                    console.log('номер телефона находится в черном списке');
                    break;
                case "validation_error":
                    console.log('были переданы некорректные данные');
                    break;
                default:
                    console.log('Во время выполнения запроса произошла ошибка: ' + data.type);
            }
        }
    },
SCHEDULE,
[
'Тег_1',
'Тег_2'
],
UNIT )
"""


def page(base_url: str, site_key: str, script: str) -> str:
    return f"""<!doctype html><meta charset="utf-8"><title>shop</title>
<script src="{base_url}/ctw.js?site={site_key}"></script>
<script>{script}</script>"""


@pytest.fixture
def shop() -> Iterator[tuple[str, dict[str, str]]]:
    """A second origin (another port) whose pages the test fills in."""
    pages: dict[str, str] = {}
    with page_host(pages) as origin:
        yield origin, pages


class Provisioner:
    def __init__(self, base_url: str) -> None:
        self.api = f"{base_url}/api/admin/v1"
        self.headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

    def post(self, path: str, body: dict) -> dict:
        response = httpx.post(f"{self.api}{path}", headers=self.headers, json=body)
        assert response.status_code == 201, response.text
        return response.json()

    def get(self, path: str, **params: object) -> dict:
        return httpx.get(f"{self.api}{path}", headers=self.headers, params=params).json()


def run_page(url: str, *, expect_lines: int) -> list[str]:
    """Open url in Chromium; return the console lines once ``expect_lines`` have arrived."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            tab = browser.new_page()
            lines: list[str] = []
            errors: list[str] = []
            # Only the page's own console.log lines: Chromium also logs failed loads as console errors.
            tab.on("console", lambda message: lines.append(message.text) if message.type == "log" else None)
            tab.on("pageerror", lambda exc: errors.append(str(exc)))
            tab.goto(url)
            while len(lines) < expect_lines:
                tab.wait_for_event("console", timeout=15_000)
            assert not errors, errors
            return lines
        finally:
            browser.close()


def test_both_reference_examples_run_unchanged(live_server, shop) -> None:  # type: ignore[no-untyped-def]
    require_chromium()
    origin, pages = shop
    admin = Provisioner(live_server.base_url)
    site = admin.post("/sites", {"name": "Shop", "allowedOrigins": [origin]})
    admin.post(f"/sites/{site['id']}/widgets", {"routeKey": "my_form_1"})
    unit = admin.post(f"/sites/{site['id']}/units", {"name": "Salon", "phone": "79001110000"})
    script = GET_ROUTE_KEY_DATA + CREATE_REQUEST.replace("PHONE", "79001234567").replace("SCHEDULE", "null").replace(
        "UNIT", str(unit["id"])
    )
    pages["/shop.html"] = page(live_server.base_url, site["siteKey"], script)
    lines = run_page(f"{origin}/shop.html?utm_source=ya", expect_lines=4)
    assert "колл-центр работает, отображение виджета" in lines
    created = [line for line in lines if line.startswith("Создана заявка на колбек, идентификатор: ")]
    assert len(created) == 1, lines
    request_id = int(created[0].rsplit(" ", 1)[1])

    journal = admin.get(f"/requests/{request_id}")
    assert journal["fields"] == [{"name": "Name", "value": "Ivan"}, {"name": "Last name", "value": "Petrov"}]
    assert journal["tags"] == ["Тег_1", "Тег_2"]
    assert journal["unitId"] == unit["id"]
    # The SDK made and attached the tracking session; the page passed nothing.
    assert journal["sessionId"] is not None
    assert journal["session"]["landingUrl"] == f"{origin}/shop.html?utm_source=ya"
    assert journal["session"]["utm"] == {"utmSource": "ya"}


def test_the_verbatim_example_values_are_rejected_as_the_reference_says(live_server, shop) -> None:  # type: ignore[no-untyped-def]
    """'7xxxxxxxxxx' and a 2020 scheduleTime are invalid: the page's own switch prints the validation line."""
    require_chromium()
    origin, pages = shop
    admin = Provisioner(live_server.base_url)
    site = admin.post("/sites", {"name": "Shop", "allowedOrigins": [origin]})
    admin.post(f"/sites/{site['id']}/widgets", {"routeKey": "my_form_1"})
    script = (
        CREATE_REQUEST.replace("PHONE", "7xxxxxxxxxx")
        .replace("SCHEDULE", "'2020-11-24 15:11:00'")
        .replace("UNIT", "12345")
    )
    pages["/shop.html"] = page(live_server.base_url, site["siteKey"], script)
    lines = run_page(f"{origin}/shop.html", expect_lines=2)
    assert lines[-1] == "были переданы некорректные данные"


def test_a_page_on_an_origin_not_allowed_fails_cleanly(live_server, shop) -> None:  # type: ignore[no-untyped-def]
    require_chromium()
    origin, pages = shop
    admin = Provisioner(live_server.base_url)
    site = admin.post("/sites", {"name": "Shop", "allowedOrigins": ["https://shop.example"]})
    admin.post(f"/sites/{site['id']}/widgets", {"routeKey": "my_form_1"})
    pages["/shop.html"] = page(live_server.base_url, site["siteKey"], GET_ROUTE_KEY_DATA)
    lines = run_page(f"{origin}/shop.html", expect_lines=3)
    assert lines[0].startswith("false")
    assert "во время обработки произошла ошибка" in lines
    assert admin.get("/requests", siteId=site["id"])["total"] == 0
