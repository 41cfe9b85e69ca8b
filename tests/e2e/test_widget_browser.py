"""The drop-in widget in Chromium on a site page of another origin, against a real ``perezvon serve``
(worker in-process, simulated line): at 390 px and 1280 px, by keyboard alone, with the analytics events
the page sees, a closed call center's slot picker, and what a visitor typed shown only as text.

    PEREZVON_SCREENSHOTS=docs/screenshots .venv/bin/pytest tests/e2e/test_widget_browser.py

writes the widget's PNGs that docs/sdk.md shows; without the variable they go to a temporary directory.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from e2e.browser import CHROMIUM, CHROMIUM_ARGS, page_host, require_chromium
from support import ADMIN_TOKEN, LiveServer, start_server, stop_server

pytestmark = pytest.mark.e2e

API = "/api/admin/v1"
EVIL = '<img src=x onerror="window.__pwned=1">'
# What the page has of analytics: stand-ins that record what they are given.
ANALYTICS = """<script>
window.dataLayer = [];
window.gtagCalls = [];
function gtag() { window.gtagCalls.push([].slice.call(arguments)); }
window.ymCalls = [];
window.ym = function () { window.ymCalls.push([].slice.call(arguments)); };
</script>"""


def site_page(base_url: str, site_key: str, title: str) -> str:
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title>
<style>body {{ font: 18px Georgia, serif; margin: 0; padding: 32px; background: #f4efe6; color: #222; }}
button, input {{ all: unset; }} /* a site's rough reset must not reach inside the widget */</style>
{ANALYTICS}
<script src="{base_url}/ctw.js?site={site_key}"></script></head>
<body><h1>{title}</h1><p><a href="#top">A link before the widget</a></p>
<p>Fresh flowers delivered within two hours. Ask us to call you back.</p></body></html>"""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, dict]]:
    workdir = tmp_path_factory.mktemp("widget-e2e")
    server = start_server(
        f"sqlite:///{workdir / 'perezvon.db'}",
        workdir,
        env={"PEREZVON_IP_RATE_LIMIT": "0", "PEREZVON_SIM_RING_S": "0.3", "PEREZVON_SIM_TALK_S": "1"},
    )
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with httpx.Client(base_url=server.base_url + API, headers=headers) as admin:
        site = admin.post("/sites", json={"name": "Flowers", "timezone": "Europe/Moscow"}).json()
        ui = {"enabled": True, "color": "#ffd400", "nameField": "optional", "language": "en",
              "consentText": "By asking for a call you agree to our privacy policy."}  # fmt: skip
        ru = {"language": "ru", "consentText": "Нажимая кнопку, вы соглашаетесь с политикой конфиденциальности."}
        open_widget = admin.post(
            f"/sites/{site['id']}/widgets",
            json={
                "routeKey": "open_form",
                "operatorPhones": ["+7 999 000-00-11"],
                "ui": {**ui, "title": "We call back in 30 seconds", "pages": ["/open*"]},
                "analytics": {"enabled": True, "goal": "callback_ok", "metrikaCounterId": 4242},
            },
        ).json()
        # Open only 03:00–04:00 Moscow time on Sundays, in a zone we are outside of now.
        now = datetime.now(UTC) + timedelta(hours=3)
        closed_day = (now + timedelta(days=2)).isoweekday()
        closed_widget = admin.post(
            f"/sites/{site['id']}/widgets",
            json={
                "routeKey": "closed_form",
                "operatorPhones": ["+7 999 000-00-11"],
                "schedule": {"utcTimezone": "UTC+03:00", "hours": [{"dayOfWeek": closed_day, "hour": 10}]},
                "ui": {**ui, **ru, "color": "#1a56db", "position": "bottom-left", "pages": ["/closed*"]},
            },
        ).json()
        admin.post(
            f"/sites/{site['id']}/widgets",
            json={
                "routeKey": "evil_form",
                "ui": {**ui, "title": "Call me " + EVIL, "consentText": EVIL, "pages": ["/evil"]},
            },
        )
        admin.post(
            f"/sites/{site['id']}/widgets",
            json={
                "routeKey": "retry_form",
                "operatorPhones": ["+7 999 000-00-11"],
                "callback": {"redialAttempts": 0, "ringTimeoutSeconds": 5},
                "ui": {**ui, "pages": ["/retry"]},
            },
        )
        assert open_widget["ui"]["enabled"] and closed_widget["ui"]["enabled"]
    with page_host(
        {
            "/open": site_page(server.base_url, site["siteKey"], "Flowers: open"),
            "/closed": site_page(server.base_url, site["siteKey"], "Цветы: закрыто"),
            "/elsewhere": site_page(server.base_url, site["siteKey"], "No widget here"),
            "/evil": site_page(server.base_url, site["siteKey"], "Admin texts are text"),
            "/retry": site_page(server.base_url, site["siteKey"], "A visitor who does not answer"),
        }
    ) as host:
        yield server, {"site": site, "host": host, "closed_day": closed_day}
    stop_server(server)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    require_chromium()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def shots(tmp_path: Path) -> Path:
    out = Path(os.environ.get("PEREZVON_SCREENSHOTS") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    return out


def journal(server: LiveServer) -> list[dict]:
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    return httpx.get(server.base_url + API + "/requests", headers=headers).json()["items"]


def tab_to(page: Page, selector: str, limit: int = 10) -> None:
    """Press Tab until the element is focused: the keyboard path a visitor takes."""
    target = page.locator(selector)
    for _ in range(limit):
        page.keyboard.press("Tab")
        if target.evaluate("e => e.getRootNode().activeElement === e"):
            return
    raise AssertionError(f"Tab never reached {selector}")


@pytest.mark.parametrize("width", [1280, 390])
def test_a_visitor_asks_for_a_call_by_keyboard_and_watches_it_happen(
    served: tuple[LiveServer, dict], browser: Browser, width: int, tmp_path: Path
) -> None:
    server, ctx = served
    context = browser.new_context(viewport={"width": width, "height": 800}, locale="en-GB")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(ctx["host"] + "/open")

    launcher = page.locator("perezvon-widget [part=launcher]")
    expect(launcher).to_be_visible()
    expect(launcher).to_have_accessible_name("Request a callback")
    # The colour the admin chose, with the text colour that reads on it (yellow: black, 19:1).
    colours = launcher.evaluate("e => [getComputedStyle(e).backgroundColor, getComputedStyle(e).color]")
    assert colours == ["rgb(255, 212, 0)", "rgb(0, 0, 0)"]
    out = shots(tmp_path)
    if width == 1280:
        page.screenshot(path=str(out / "widget-launcher-1280.png"), animations="disabled")

    tab_to(page, "perezvon-widget [part=launcher]")
    page.keyboard.press("Enter")
    dialog = page.locator("perezvon-widget [part=dialog]")
    expect(dialog).to_be_visible()
    expect(dialog).to_have_attribute("role", "dialog")
    expect(page.get_by_role("dialog")).to_have_accessible_name("We call back in 30 seconds")
    name = page.get_by_label("Your name")
    phone = page.get_by_label("Your phone number")
    expect(name).to_be_focused()
    page.keyboard.type("Анна <b>")
    page.keyboard.press("Tab")
    expect(phone).to_be_focused()
    page.keyboard.type("8 900 123-45-67")
    expect(phone).to_have_value("+7 (900) 123-45-67")

    # Tab stays inside the dialog; Escape closes it and gives focus back to the launcher.
    for _ in range(6):
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.tagName") == "PEREZVON-WIDGET"
        assert dialog.evaluate("(d) => d.contains(d.getRootNode().activeElement)")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(launcher).to_be_focused()
    expect(launcher).to_have_attribute("aria-expanded", "false")
    page.keyboard.press("Enter")
    expect(dialog).to_be_visible()
    expect(phone).to_have_value("+7 (900) 123-45-67")  # what was typed is kept
    page.screenshot(path=str(out / f"widget-form-{width}.png"), animations="disabled")

    phone.focus()
    page.keyboard.press("Enter")  # submits the form
    status = page.locator("perezvon-widget [part=status]")
    expect(status).to_have_text("Thank you for the call!", timeout=20_000)
    expect(status).to_have_attribute("role", "status")
    page.screenshot(path=str(out / f"widget-status-{width}.png"), animations="disabled")

    mine = [r for r in journal(server) if r["routeKey"] == "open_form"][0]
    assert mine["phone"] == "79001234567"
    assert mine["fields"] == [{"name": "Name", "value": "Анна <b>"}]
    assert mine["status"] == "completed"

    # The page's analytics heard of it once each, with the widget's goal.
    pushed = page.evaluate("window.dataLayer.filter(e => e.event === 'callback_ok')")
    assert pushed == [{"event": "callback_ok", "perezvon": {"routeKey": "open_form", "callbackRequestId": mine["id"]}}]
    assert page.evaluate("window.gtagCalls") == [["event", "callback_ok", pushed[0]["perezvon"]]]
    assert page.evaluate("window.ymCalls") == [[4242, "reachGoal", "callback_ok", pushed[0]["perezvon"]]]
    assert page.evaluate("window.__pwned") is None
    assert errors == []
    context.close()


def test_a_closed_call_center_offers_slots_from_its_schedule(
    served: tuple[LiveServer, dict], browser: Browser, tmp_path: Path
) -> None:
    server, ctx = served
    context = browser.new_context(viewport={"width": 390, "height": 800}, locale="ru-RU", timezone_id="Europe/Moscow")
    page = context.new_page()
    page.goto(ctx["host"] + "/closed")
    launcher = page.locator("perezvon-widget [part=launcher]")
    expect(launcher).to_have_accessible_name("Заказать обратный звонок")
    box = launcher.bounding_box()
    assert box and box["x"] < 100  # bottom-left, as set
    launcher.click()
    slot = page.get_by_label("Когда позвонить")
    expect(slot).to_be_visible()
    options = slot.locator("option")
    assert options.count() == 2  # "as soon as we open" and the one working hour in the next week
    value = options.nth(1).get_attribute("value")
    assert value and value.endswith(" 10:00:00")
    assert datetime.strptime(value, "%Y-%m-%d %H:%M:%S").isoweekday() == ctx["closed_day"]
    slot.select_option(value)
    page.get_by_label("Ваш номер телефона").fill("900 765 43 21")
    page.screenshot(path=str(shots(tmp_path) / "widget-slots-390.png"), animations="disabled")
    page.locator("perezvon-widget [part=submit]").click()
    status = page.locator("perezvon-widget [part=status]")
    expect(status).to_contain_text("Мы позвоним вам:")
    expect(status).to_contain_text("10:00")
    mine = [r for r in journal(server) if r["routeKey"] == "closed_form"][0]
    assert mine["phone"] == "79007654321" and mine["scheduleTime"] == value and mine["status"] == "pending"
    context.close()


def test_a_wrong_number_is_said_next_to_the_field(served: tuple[LiveServer, dict], browser: Browser) -> None:
    _, ctx = served
    context = browser.new_context(viewport={"width": 1280, "height": 800}, reduced_motion="reduce")
    page = context.new_page()
    page.goto(ctx["host"] + "/evil")
    page.locator("perezvon-widget [part=launcher]").click()
    dialog = page.locator("perezvon-widget [part=dialog]")
    expect(page.get_by_role("dialog")).to_have_accessible_name("Call me " + EVIL)  # the admin's text, as text
    expect(page.locator("perezvon-widget [part=consent]")).to_have_text(EVIL)
    assert page.locator("perezvon-widget img").count() == 0
    assert dialog.evaluate("d => getComputedStyle(d).animationName") == "none"  # prefers-reduced-motion
    phone = page.get_by_label("Your phone number")
    phone.fill("12345")
    page.locator("perezvon-widget [part=submit]").click()
    expect(phone).to_have_attribute("aria-invalid", "true")
    expect(phone).to_be_focused()
    expect(page.locator("perezvon-widget #pz-phone-error")).to_contain_text("Enter the whole number")
    assert page.evaluate("window.__pwned") is None
    context.close()


def test_a_visitor_not_reached_is_told_so_and_may_ask_again(served: tuple[LiveServer, dict], browser: Browser) -> None:
    _, ctx = served
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(ctx["host"] + "/retry")
    page.locator("perezvon-widget [part=launcher]").click()
    page.get_by_label("Your phone number").fill("+7 900 123-45-01")  # the simulated line: never answers
    page.locator("perezvon-widget [part=submit]").click()
    status = page.locator("perezvon-widget [part=status]")
    expect(status).to_have_text("We could not reach you. Please try again later.", timeout=30_000)
    expect(page.get_by_label("Your phone number")).to_be_visible()
    context.close()


def test_pages_outside_the_widgets_patterns_get_no_widget(served: tuple[LiveServer, dict], browser: Browser) -> None:
    _, ctx = served
    context = browser.new_context()
    page = context.new_page()
    with page.expect_response(lambda r: r.url.endswith("/api/widget/v1/ui")):
        page.goto(ctx["host"] + "/elsewhere")
    page.wait_for_load_state("networkidle")
    assert page.locator("perezvon-widget [part=launcher]").count() == 0
    context.close()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    workdir = tmp_path_factory.mktemp("widget-cabinet")
    server = start_server(f"sqlite:///{workdir / 'perezvon.db'}", workdir, args=("demo",))
    yield server
    stop_server(server)


@pytest.mark.parametrize("width", [1280, 390])
def test_the_cabinet_previews_the_widget_live_and_saves_its_settings(
    demo: LiveServer, browser: Browser, width: int, tmp_path: Path
) -> None:
    context = browser.new_context(viewport={"width": width, "height": 900}, locale="en-US")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)  # CSP refusals land here
    page.goto(demo.base_url + "/")
    page.fill("input[name=email]", "demo@perezvon.local")
    page.fill("input[name=password]", "perezvon-demo")
    page.click("button[type=submit]")
    page.click("nav.mainnav >> text=Sites")
    page.click("text=Demo site")
    page.click("text=my_form_1")
    section = page.locator("#widget-ui")
    section.scroll_into_view_if_needed()

    preview = page.locator("#widget-preview perezvon-widget")
    expect(preview.locator("[part=dialog]")).to_be_visible()
    expect(preview.locator("[part=submit]")).to_have_text("Перезвоните мне")  # the default language is Russian
    assert not page.evaluate("document.activeElement.closest('perezvon-widget')"), "the preview takes no focus"

    page.select_option("select[name='ui.language']", "en")
    page.fill("input[name='ui.title']", "Ring me <b>now</b>")
    page.select_option("select[name='ui.nameField']", "required")
    page.locator("input[name='ui.color']").evaluate(
        "(e) => { e.value = '#0b6e4f'; e.dispatchEvent(new Event('input', {bubbles: true})); }"
    )
    expect(preview.locator("#pz-title")).to_have_text("Ring me <b>now</b>")
    expect(preview.locator("[part=submit]")).to_have_text("Call me back")
    expect(preview.get_by_label("Your name")).to_be_visible()
    # The admin's colour, white text on it (7.0:1): the preview is redrawn a moment after each change.
    expect(preview.locator("[part=submit]")).to_have_css("background-color", "rgb(11, 110, 79)")
    expect(preview.locator("[part=submit]")).to_have_css("color", "rgb(255, 255, 255)")

    page.select_option("#widget-preview-mode", "closed")
    expect(preview.get_by_label("When to call")).to_be_visible()  # slots from the painted schedule
    page.select_option("#widget-preview-mode", "open")
    expect(preview.get_by_label("When to call")).to_have_count(0)
    section.screenshot(path=str(shots(tmp_path) / f"widget-settings-{width}.png"), animations="disabled")

    page.check("input[name='ui.enabled']")
    page.fill("textarea[name='ui.pages']", "/catalog/*\n!/cart")
    page.check("input[name='analytics.enabled']")
    page.fill("input[name='analytics.goal']", "callback_ok")
    page.click("#widget-form button.primary")
    expect(page.locator("input[name='ui.title']")).to_have_value("Ring me <b>now</b>")
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    [widget] = [
        w
        for s in httpx.get(demo.base_url + API + "/sites", headers=headers).json()
        for w in httpx.get(demo.base_url + API + f"/sites/{s['id']}/widgets", headers=headers).json()
        if w["routeKey"] == "my_form_1"
    ]
    assert widget["ui"]["enabled"] is True and widget["ui"]["color"] == "#0b6e4f"
    assert widget["ui"]["pages"] == ["/catalog/*", "!/cart"] and widget["ui"]["nameField"] == "required"
    assert widget["analytics"]["enabled"] is True and widget["analytics"]["goal"] == "callback_ok"
    assert errors == []
    # Put it back for the other width.
    httpx.patch(demo.base_url + API + f"/widgets/{widget['id']}", json={"ui": UI_RESET}, headers=headers)
    context.close()


UI_RESET = {"enabled": False, "language": "ru", "title": "", "nameField": "off", "color": "#1a56db", "pages": []}
