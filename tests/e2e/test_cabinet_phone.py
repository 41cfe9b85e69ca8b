"""What a phone (390 px) and a desktop (1280 px) show, in Debian's Chromium against a real ``perezvon demo``:
no page scrolls sideways, the journal does not break words, the sources report draws its chart, a
request's buttons move it and its timeline says who did, and the demo page speaks one language."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from e2e.browser import chromium
from support import LiveServer, start_server, stop_server

pytestmark = pytest.mark.e2e

WIDTHS = (390, 1280)
LONG_WORD = "Константинопольский"


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    workdir = tmp_path_factory.mktemp("phone-demo")
    server = start_server(
        f"sqlite:///{workdir / 'perezvon.db'}", workdir, args=("demo",), env={"PEREZVON_IP_RATE_LIMIT": "0"}
    )
    session = httpx.post(
        f"{server.base_url}/api/widget/v1/session",
        json={"site": "demo", "utmSource": "yandex", "utmMedium": "cpc", "utmCampaign": "зимняя_распродажа_2026"},
    ).json()["sessionId"]
    for n, utm_session in enumerate((session, session, None)):
        body = {
            "site": "demo",
            "routeKey": "my_form_1",
            "phone": f"7900123456{n}",
            "fields": [
                {"name": "Имя", "value": LONG_WORD},
                {"name": "Комментарий", "value": "Перезвоните после обеда"},
            ],
            "tags": ["интернет-магазин"],
            "sessionId": utm_session,
        }
        assert httpx.post(f"{server.base_url}/api/widget/v1/requests", json=body).status_code == 200
    yield server
    stop_server(server)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def logged_in(browser: Browser, base_url: str, width: int) -> Page:
    page = browser.new_context(locale="en-US", viewport={"width": width, "height": 860}).new_page()
    page.goto(base_url + "/cabinet/login")
    page.fill("input[name=email]", "demo@perezvon.local")
    page.fill("input[name=password]", "perezvon-demo")
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_contain_text("Call journal")
    return page


def scrolls_sideways(page: Page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth > window.innerWidth")


@pytest.mark.parametrize("width", WIDTHS)
def test_no_page_scrolls_sideways(demo_server: LiveServer, browser: Browser, width: int) -> None:
    page = logged_in(browser, demo_server.base_url, width)
    for path in (
        "/cabinet/journal",
        "/cabinet/widgets/1",
        "/cabinet/requests/1",
        "/cabinet/sites/1",
        "/cabinet/dashboard",
        "/cabinet/reports/attribution",
        "/cabinet/refusals",
    ):
        page.goto(demo_server.base_url + path)
        assert not scrolls_sideways(page), f"{path} scrolls sideways at {width} px"


@pytest.mark.parametrize("width", WIDTHS)
def test_the_journal_keeps_words_whole(demo_server: LiveServer, browser: Browser, width: int) -> None:
    page = logged_in(browser, demo_server.base_url, width)
    expect(page.locator(".fields-cell .v", has_text=LONG_WORD).first).to_be_visible()
    # One box per line: a word broken across lines would give its span two. Measured in one script run,
    # as the live journal may replace its rows between two calls.
    boxes = page.evaluate(
        """word => [...document.querySelectorAll('.fields-cell .v, .fields-cell .tag')]
            .filter(el => el.textContent.includes(word) || el.classList.contains('tag'))
            .map(el => el.getClientRects().length)""",
        LONG_WORD,
    )
    assert boxes and set(boxes) == {1}, boxes


@pytest.mark.parametrize("width", WIDTHS)
def test_the_sources_report_draws_its_chart(demo_server: LiveServer, browser: Browser, width: int) -> None:
    page = logged_in(browser, demo_server.base_url, width)
    page.click("nav.mainnav >> text=Sources")
    expect(page.locator("h1")).to_contain_text("Where requests come from")
    chart = page.locator("svg.hchart")
    expect(chart).to_be_visible()
    assert chart.locator("rect.bar").count() == 2  # yandex / cpc / зимняя_распродажа_2026, and (none)
    assert chart.bounding_box()["width"] <= width  # type: ignore[index]
    expect(page.locator("table.attribution")).to_contain_text("зимняя_распродажа_2026")
    with page.expect_download() as download:
        page.click("text=Export CSV")
    assert download.value.suggested_filename.startswith("perezvon-attribution-")


@pytest.mark.parametrize("width", WIDTHS)
def test_the_demo_page_speaks_one_language(demo_server: LiveServer, browser: Browser, width: int) -> None:
    page = browser.new_context(locale="en-US", viewport={"width": width, "height": 860}).new_page()
    page.goto(demo_server.base_url + "/demo")
    expect(page.locator("#mode")).to_contain_text("the call center is working")
    assert not re.search("[А-Яа-яЁё]", page.locator("body").inner_text().split("Console")[0])
    page.click("nav.langs >> text=RU")
    expect(page.locator("h1")).to_have_text("Заказать обратный звонок")
    expect(page.locator("#mode")).to_contain_text("колл-центр работает")
    assert "Call me back" not in page.locator("body").inner_text()
    assert not scrolls_sideways(page)


@pytest.mark.parametrize("width", WIDTHS)
def test_a_requests_buttons_move_it_and_its_timeline_says_who(
    demo_server: LiveServer, browser: Browser, width: int
) -> None:
    tomorrow = (datetime.now(ZoneInfo("Europe/Moscow")) + timedelta(days=1)).strftime("%Y-%m-%d 12:00:00")
    body = {"site": "demo", "routeKey": "my_form_1", "phone": "79001239999", "scheduleTime": tomorrow}
    request_id = httpx.post(f"{demo_server.base_url}/api/widget/v1/requests", json=body).json()["callbackRequestId"]
    page = logged_in(browser, demo_server.base_url, width)
    page.goto(f"{demo_server.base_url}/cabinet/requests/{request_id}")
    expect(page.locator("#request-status [data-status]")).to_have_attribute("data-status", "pending")
    assert not scrolls_sideways(page)
    later = (datetime.now(ZoneInfo("Europe/Moscow")) + timedelta(days=2)).replace(hour=9, minute=30)
    page.fill("input[name=at]", later.strftime("%Y-%m-%dT%H:%M"))
    page.click("form.reschedule-form button[type=submit]")
    expect(page.locator(".flash")).to_contain_text("rescheduled")
    entry = page.locator("#request-attempts li.event-reschedule")
    expect(entry).to_contain_text(later.strftime("%Y-%m-%d %H:%M"))
    expect(entry).to_contain_text("by demo@perezvon.local")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("text=Cancel the request")
    expect(page.locator("#request-status [data-status]")).to_have_attribute("data-status", "cancelled")
    expect(page.locator("#request-attempts li.event-cancel")).to_contain_text("by demo@perezvon.local")
    expect(page.locator("text=Call again now")).to_be_visible()
    assert not scrolls_sideways(page)
