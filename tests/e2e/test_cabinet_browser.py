"""The cabinet in Chromium against a real ``perezvon demo`` process: log in, paint a widget's schedule,
send a request from /demo and watch it reach ``completed`` in the journal without reloading, open it,
export CSV; and a request full of script payloads never runs anything on any cabinet page.

Needs the callback engine in the server (merged): with the simulated line a request completes within
seconds. If the engine were missing, the live test would fail at the ``completed`` expectation.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from e2e.browser import CHROMIUM, CHROMIUM_ARGS, require_chromium
from support import LiveServer, start_server, stop_server

pytestmark = pytest.mark.e2e

DEMO_EMAIL = "demo@perezvon.local"
DEMO_PASSWORD = "perezvon-demo"
SCRIPT = "<script>window.__pwned=1;alert('script')</script>"
IMG = "<img src=x onerror=\"window.__pwned=1;alert('img')\">"


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    workdir = tmp_path_factory.mktemp("cabinet-demo")
    server = start_server(
        f"sqlite:///{workdir / 'perezvon.db'}",
        workdir,
        args=("demo",),
        env={"PEREZVON_IP_RATE_LIMIT": "0", "PEREZVON_SIM_TALK_S": "3"},
    )
    yield server
    stop_server(server)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    require_chromium()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def log_in(page: Page, base_url: str) -> None:
    page.goto(base_url + "/")
    expect(page.locator("input[name=email]")).to_be_visible()
    page.fill("input[name=email]", DEMO_EMAIL)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_contain_text("Call journal")


def cell(page: Page, day: int, hour: int):  # type: ignore[no-untyped-def]
    return page.locator(f'label.cell:has(input[value="{day}-{hour}"])')


def test_a_request_from_demo_completes_live_in_the_journal(demo_server: LiveServer, browser: Browser) -> None:
    context = browser.new_context(accept_downloads=True, locale="en-US", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    log_in(page, demo_server.base_url)

    # A new widget on the demo site, its schedule painted with the mouse.
    page.click("nav.mainnav >> text=Sites")
    page.click("text=Demo site")
    page.click("text=+ New widget")
    page.fill("input[name=routeKey]", "e2e_form")
    page.fill("textarea[name=operatorPhones]", "+7 999 000-00-11")
    page.click("button[data-fill=none]")
    page.locator("#schedule-grid").scroll_into_view_if_needed()
    start, end = cell(page, 1, 9).bounding_box(), cell(page, 1, 12).bounding_box()
    assert start and end
    page.mouse.move(start["x"] + start["width"] / 2, start["y"] + start["height"] / 2)
    page.mouse.down()
    page.mouse.move(end["x"] + end["width"] / 2, end["y"] + end["height"] / 2, steps=12)
    page.mouse.up()
    cell(page, 3, 14).click()
    for hour in range(9, 13):
        expect(page.locator(f'input[value="1-{hour}"]')).to_be_checked()
    expect(page.locator('input[value="1-13"]')).not_to_be_checked()
    page.click("#widget-form button[type=submit]")
    expect(page.locator(".flash")).to_have_text("Saved.")
    expect(page.locator("h1")).to_contain_text("e2e_form")
    for value in ("1-9", "1-10", "1-11", "1-12", "3-14"):
        expect(page.locator(f'input[value="{value}"]')).to_be_checked()
    assert page.locator('input[name="cell"]:checked').count() == 5

    # The journal stays open (never reloaded) while a visitor sends a request from /demo.
    page.click("nav.mainnav >> text=Journal")
    page.evaluate("window.__notReloaded = true")
    visitor = context.new_page()
    visitor.goto(demo_server.base_url + "/demo?lang=en")
    expect(visitor.locator("#callback-form")).to_be_visible()
    visitor.fill("#phone", "79001234567")
    visitor.click("#send")
    expect(visitor.locator("#result")).to_contain_text("Callback request created, id: ")
    request_id = visitor.locator("#result").inner_text().rsplit(" ", 1)[1].strip()

    # Its own page, opened while the call is still going (3 s of simulated talk), follows it too.
    detail = context.new_page()
    detail.goto(f"{demo_server.base_url}/cabinet/requests/{request_id}")
    detail.evaluate("window.__notReloaded = true")
    expect(detail.locator("#request-status .badge")).to_have_attribute("data-status", "completed", timeout=30_000)
    expect(detail.locator("#request-attempts .attempt").first).to_contain_text("Connected")
    assert detail.evaluate("window.__notReloaded") is True

    row = page.locator(f'tr[data-request-id="{request_id}"]')
    expect(row).to_be_visible(timeout=20_000)
    expect(row.locator(".badge")).to_have_attribute("data-status", "completed", timeout=30_000)
    expect(row.locator(".badge")).to_have_text("Completed")
    assert page.evaluate("window.__notReloaded") is True

    # Its own page: fields in the order sent, the attempt timeline.
    row.locator("a").first.click()
    expect(page.locator("h1")).to_contain_text(f"Request #{request_id}")
    fields = page.locator("section.card").first.locator("dt")
    expect(fields).to_have_text(["Name", "Last name"])
    expect(page.locator(".attempt").first).to_contain_text("Connected")

    # CSV export is a plain GET link.
    page.click("nav.mainnav >> text=Journal")
    with page.expect_download() as download:
        page.click("text=Export CSV")
    text = Path(download.value.path()).read_text(encoding="utf-8-sig")
    assert text.splitlines()[0].startswith("id,createdAt,site,routeKey,phone,status")
    assert any(line.startswith(f"{request_id},") and "79001234567" in line for line in text.splitlines())
    context.close()


def test_script_payloads_never_run_on_any_cabinet_page(demo_server: LiveServer, browser: Browser) -> None:
    with httpx.Client(base_url=demo_server.base_url) as client:
        session = client.post(
            "/api/widget/v1/session",
            json={
                "site": "demo",
                "url": "javascript:window.__pwned=1//" + SCRIPT,
                "referrer": IMG,
                "utmSource": SCRIPT,
                "utmMedium": IMG,
                "utmCampaign": SCRIPT,
            },
        )
        assert session.status_code == 200, session.text
        made = client.post(
            "/api/widget/v1/requests",
            json={
                "site": "demo",
                "routeKey": "my_form_1",
                "phone": "79001234501",
                "fields": [{"name": SCRIPT, "value": IMG}, {"name": "Comment", "value": SCRIPT}],
                "tags": [SCRIPT, IMG],
                "sessionId": session.json()["sessionId"],
            },
        )
        assert made.status_code == 200, made.text
        request_id = made.json()["callbackRequestId"]

    context = browser.new_context(locale="en-US")
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    blocked: list[str] = []  # a CSP report here would mean escaping failed and only the CSP saved us
    page.on("console", lambda msg: blocked.append(msg.text) if "Content Security Policy" in msg.text else None)
    log_in(page, demo_server.base_url)

    for path in (
        "/cabinet/journal",
        f"/cabinet/requests/{request_id}",
        "/cabinet/dashboard",
        "/cabinet/sites",
        "/cabinet/journal?q=script",
        "/cabinet/journal?lang=ru",
    ):
        page.goto(demo_server.base_url + path)
        page.wait_for_load_state("load")
        assert page.evaluate("window.__pwned") is None, path
    page.goto(demo_server.base_url + f"/cabinet/requests/{request_id}")
    expect(page.locator(".kv-list").first).to_contain_text(SCRIPT)  # shown, as text
    expect(page.locator(".tags").first).to_contain_text(IMG)
    expect(page.locator("body")).to_contain_text("javascript:window.__pwned=1//")
    assert page.locator("a[href^='javascript']").count() == 0

    # The live journal re-renders rows while the request is dialed: still inert.
    page.goto(demo_server.base_url + "/cabinet/journal")
    row = page.locator(f'tr[data-request-id="{request_id}"]')
    expect(row.locator(".badge")).not_to_have_attribute("data-status", "pending", timeout=20_000)
    expect(row.locator(".fields-cell")).to_contain_text(SCRIPT)
    assert page.evaluate("window.__pwned") is None
    assert dialogs == []
    assert blocked == []
    context.close()


def test_without_an_event_bus_the_journal_polls(tmp_path: Path, browser: Browser) -> None:
    """An API-only process (no worker, so no bus): new requests still appear without a reload."""
    server = start_server(
        f"sqlite:///{tmp_path / 'perezvon.db'}",
        tmp_path,
        args=("demo",),
        env={"PEREZVON_RUN_WORKER": "false", "PEREZVON_IP_RATE_LIMIT": "0"},
    )
    try:
        context = browser.new_context(locale="en-US")
        page = context.new_page()
        log_in(page, server.base_url)
        expect(page.locator("#live-indicator")).to_have_attribute("data-mode", "poll")
        page.evaluate("window.__notReloaded = true")
        with httpx.Client(base_url=server.base_url) as client:
            made = client.post(
                "/api/widget/v1/requests",
                json={
                    "site": "demo",
                    "routeKey": "my_form_1",
                    "phone": "79001230000",
                    "fields": [{"name": "Name", "value": "Polled"}],
                },
            )
            assert made.status_code == 200, made.text
        row = page.locator(f'tr[data-request-id="{made.json()["callbackRequestId"]}"]')
        expect(row).to_contain_text("Polled", timeout=10_000)
        expect(row.locator(".badge")).to_have_attribute("data-status", "pending")
        assert page.evaluate("window.__notReloaded") is True
        context.close()
    finally:
        stop_server(server)


def test_the_schedule_grid_is_plain_checkboxes_without_javascript(demo_server: LiveServer, browser: Browser) -> None:
    context = browser.new_context(java_script_enabled=False, locale="en-US")
    page = context.new_page()
    log_in(page, demo_server.base_url)
    page.goto(demo_server.base_url + "/cabinet/sites")
    page.click("text=Demo site")
    page.click("text=+ New widget")
    expect(page.locator(".schedule-tools")).to_be_hidden()  # the fill buttons need the script
    page.fill("input[name=routeKey]", "no_js_form")
    box = page.locator('input[value="6-11"]')
    expect(box).to_be_visible()
    box.check()
    page.locator('input[value="1-9"]').uncheck()
    page.click("#widget-form button[type=submit]")
    expect(page.locator(".flash")).to_have_text("Saved.")
    expect(page.locator('input[value="6-11"]')).to_be_checked()
    expect(page.locator('input[value="1-9"]')).not_to_be_checked()
    expect(page.locator('input[value="1-10"]')).to_be_checked()  # the default Mon–Fri 9–18 otherwise kept
    context.close()
