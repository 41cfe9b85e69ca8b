"""Screenshots of the cabinet's main pages, taken from a real ``perezvon demo`` with a month of history.

    PEREZVON_SCREENSHOTS=docs/screenshots .venv/bin/pytest tests/e2e/test_cabinet_screenshots.py

writes the PNGs that docs/cabinet.md shows; without the variable they go to a temporary directory (the
test then only checks that every page renders in a real browser with nothing blocked by the CSP).
"""

from __future__ import annotations

import os
import random
import struct
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect, sync_playwright
from sqlalchemy import create_engine, insert, select

from e2e.browser import CHROMIUM, CHROMIUM_ARGS, require_chromium
from perezvon.store.tables import (
    call_attempts,
    callback_requests,
    sites,
    tracking_sessions,
    units,
    widgets,
)
from support import ADMIN_TOKEN, LiveServer, start_server, stop_server

pytestmark = pytest.mark.e2e

NAMES = ["Анна", "Иван", "Maria", "Сергей", "Ольга", "Dmitry", "Елена", "Павел", "Tatiana", "Алексей"]
COMMENTS = [
    "Перезвоните после обеда",
    "Interested in the annual plan",
    "Нужна консультация по доставке",
    "Call me about the order #4471",
    "Хочу записаться на пробный урок",
]
TAGS = [["landing"], ["promo", "black-friday"], ["pricing"], [], ["лендинг"], ["ads", "retargeting"]]
UTM = [
    {"utmSource": "google", "utmMedium": "cpc", "utmCampaign": "winter_sale"},
    {"utmSource": "yandex", "utmMedium": "cpc", "utmCampaign": "brand"},
    {"utmSource": "newsletter", "utmMedium": "email", "utmCampaign": "november"},
    {},
]


def _wav(path: Path, seconds: float = 1.0) -> None:
    """A short silent 8 kHz WAV: enough for the recording player to show its controls."""
    frames = int(8000 * seconds)
    header = (
        b"RIFF"
        + struct.pack("<I", 36 + frames * 2)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, 8000, 16000, 2, 16)
    )
    path.write_bytes(header + b"data" + struct.pack("<I", frames * 2) + b"\x00\x00" * frames)


def seed_history(database_url: str, workdir: Path) -> int:
    """Thirty days of finished requests on the demo site; returns one with two attempts and a recording."""
    rng = random.Random(5)
    engine = create_engine(database_url)
    recording = workdir / "call-0001.wav"
    _wav(recording)
    showcase = 0
    with engine.begin() as conn:
        site_id = conn.execute(select(sites.c.id).where(sites.c.site_key == "demo")).scalar_one()
        widget_id = conn.execute(select(widgets.c.id).where(widgets.c.site_id == site_id)).scalar()
        unit_id = conn.execute(select(units.c.id).where(units.c.site_id == site_id)).scalar()
        now = datetime.now(UTC)
        for days_ago in range(29, 0, -1):
            weekend = (now - timedelta(days=days_ago)).isoweekday() > 5
            for _ in range(rng.randint(1, 4) if weekend else rng.randint(4, 12)):
                created = (now - timedelta(days=days_ago)).replace(hour=rng.randint(6, 16), minute=rng.randint(0, 59))
                status = rng.choices(["completed", "failed", "cancelled"], [84, 13, 3])[0]
                utm = rng.choice(UTM)
                session = conn.execute(
                    insert(tracking_sessions).values(
                        site_id=site_id,
                        landing_url="https://shop.example/winter?utm_source=" + utm.get("utmSource", ""),
                        referrer=rng.choice(["https://www.google.com/", "https://ya.ru/", ""]),
                        user_agent="Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0",
                        ip="203.0.113.5",
                        utm=utm,
                        created_at=created - timedelta(minutes=4),
                    )
                ).inserted_primary_key[0]
                request_id = conn.execute(
                    insert(callback_requests).values(
                        site_id=site_id,
                        widget_id=widget_id,
                        route_key="my_form_1",
                        phone=f"7916{rng.randint(1000000, 9999999)}",
                        fields=[
                            {"name": "Name", "value": rng.choice(NAMES)},
                            {"name": "Comment", "value": rng.choice(COMMENTS)},
                        ],
                        custom_fields=[],
                        tags=rng.choice(TAGS),
                        unit_id=unit_id if rng.random() < 0.3 else None,
                        due_at=created,
                        session_id=session,
                        source="js",
                        utm={},
                        status=status,
                        attempts_made=1,
                        finished_at=created + timedelta(minutes=3),
                        updated_at=created,
                        created_at=created,
                    )
                ).inserted_primary_key[0]
                wait = rng.randint(12, 95)
                attempts = [("client_no_answer", None)] if status != "completed" else []
                if status == "completed":
                    if rng.random() < 0.2:
                        attempts.append(("client_no_answer", None))
                    attempts.append(("connected", wait))
                for number, (outcome, answered) in enumerate(attempts, start=1):
                    start = created + timedelta(seconds=5 + (number - 1) * 70)
                    talk = rng.randint(40, 420) if answered else 0
                    conn.execute(
                        insert(call_attempts).values(
                            request_id=request_id,
                            number=number,
                            operator_phone="79990000010",
                            started_at=start,
                            operator_answered_at=start + timedelta(seconds=6),
                            client_answered_at=start + timedelta(seconds=answered) if answered else None,
                            ended_at=start + timedelta(seconds=(answered or 36) + talk),
                            outcome=outcome,
                            billed_seconds=-(-talk // 60) * 60 if answered else 0,
                            recording_path=str(recording) if answered and not showcase and number == 2 else None,
                        )
                    )
                    if answered and number == 2 and not showcase:
                        showcase = request_id
    engine.dispose()
    return showcase


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, int, int]]:
    workdir = tmp_path_factory.mktemp("cabinet-shots")
    database_url = f"sqlite:///{workdir / 'perezvon.db'}"
    server = start_server(
        database_url, workdir, args=("demo",), env={"PEREZVON_IP_RATE_LIMIT": "0", "PEREZVON_SIM_TALK_S": "3"}
    )
    try:
        showcase = seed_history(database_url, workdir)
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        with httpx.Client(base_url=server.base_url) as client:
            site_id = client.get("/api/admin/v1/sites", headers=admin).json()[0]["id"]
            hours = [{"dayOfWeek": d, "hour": h} for d in range(1, 6) for h in range(9, 18)]
            hours += [{"dayOfWeek": 6, "hour": h} for h in range(10, 15)]
            widget = client.post(
                f"/api/admin/v1/sites/{site_id}/widgets",
                headers=admin,
                json={
                    "routeKey": "pricing_page_form",
                    "name": "Pricing page",
                    "operatorPhones": ["79990000011", "79990000012"],
                    "schedule": {"utcTimezone": "UTC+03:00", "hours": hours},
                    "throttle": {"userTimeoutSeconds": 60, "maxRequestsPerPhone": 3, "periodSeconds": 3600},
                },
            ).json()
            client.post(f"/api/admin/v1/sites/{site_id}/blacklist", headers=admin, json={"phone": "79005550101"})
            tomorrow = (datetime.now(UTC) + timedelta(days=1, hours=3)).strftime("%Y-%m-%d 10:00:00")
            for i, (phone, schedule) in enumerate(
                [("79161234567", None), ("79031112233", None), ("79267654321", tomorrow), ("79154443322", None)]
            ):
                utm = UTM[i % len(UTM)]
                session = client.post(
                    "/api/widget/v1/session",
                    json={
                        "site": "demo",
                        "url": "https://shop.example/pricing",
                        "referrer": "https://www.google.com/",
                        **utm,
                    },
                ).json()["sessionId"]
                made = client.post(
                    "/api/widget/v1/requests",
                    json={
                        "site": "demo",
                        "routeKey": "my_form_1",
                        "phone": phone,
                        "scheduleTime": schedule,
                        "fields": [{"name": "Name", "value": NAMES[i]}, {"name": "Comment", "value": COMMENTS[i]}],
                        "tags": TAGS[i + 1],
                        "sessionId": session,
                    },
                )
                assert made.status_code == 200, made.text
        yield server, showcase, widget["id"]
    finally:
        stop_server(server)


def test_screenshots_of_the_main_pages(seeded: tuple[LiveServer, int, int], tmp_path: Path) -> None:
    require_chromium()
    server, showcase, widget_id = seeded
    out = Path(os.environ.get("PEREZVON_SCREENSHOTS") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    blocked: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1360, "height": 860}, locale="en-US", device_scale_factor=1)
        page = context.new_page()
        page.on("console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None)
        page.goto(server.base_url + "/cabinet/login")
        page.screenshot(path=str(out / "login.png"))
        page.fill("input[name=email]", "demo@perezvon.local")
        page.fill("input[name=password]", "perezvon-demo")
        page.click("button[type=submit]")
        expect(page.locator("h1")).to_contain_text("Call journal")
        # Let the live requests get going so the journal shows several statuses at once.
        expect(page.locator('.badge[data-status="completed"]').first).to_be_visible()
        expect(page.locator('.badge[data-status="dialing"]').first).to_be_visible(timeout=15_000)
        page.screenshot(path=str(out / "journal.png"), full_page=False)
        page.goto(server.base_url + f"/cabinet/requests/{showcase}")
        expect(page.locator("audio")).to_have_count(1)
        page.screenshot(path=str(out / "request.png"), full_page=True)
        page.goto(server.base_url + f"/cabinet/widgets/{widget_id}")
        page.screenshot(path=str(out / "widget.png"), full_page=True)
        page.goto(server.base_url + "/cabinet/dashboard")
        expect(page.locator("svg.chart")).to_have_count(4)
        page.screenshot(path=str(out / "dashboard.png"), full_page=True)
        page.goto(server.base_url + "/cabinet/reports/attribution")
        expect(page.locator("svg.hchart")).to_have_count(1)
        page.screenshot(path=str(out / "attribution.png"), full_page=True)
        page.goto(server.base_url + "/cabinet/sites")
        page.click("text=Demo site")
        page.screenshot(path=str(out / "site.png"), full_page=True)
        page.click("section.card >> text=Manage >> nth=1")
        page.fill("textarea[name=phones]", "+7 900 123-45-67\n8 (903) 555-01-02\nnot a number\n79005550101")
        page.click("form.stack button[type=submit]")
        page.screenshot(path=str(out / "blacklist.png"), full_page=True)
        page.goto(server.base_url + "/cabinet/sites")
        page.click("text=Demo site")
        page.click("section.card >> text=Manage >> nth=0")
        page.fill("form.row-form:not([action*='/units/']) input[name=name]", "Support")
        page.fill("form.row-form:not([action*='/units/']) input[name=phone]", "+7 (999) 000-00-21")
        page.click("form.row-form:not([action*='/units/']) button[type=submit]")
        expect(page.locator(".flash")).to_be_visible()
        page.screenshot(path=str(out / "units.png"), full_page=True)
        page.goto(server.base_url + "/cabinet/tokens")
        page.fill("input[name=name]", "CRM sync")
        page.click("form.row-form button[type=submit]")
        expect(page.locator("#new-token")).to_be_visible()
        page.screenshot(path=str(out / "tokens.png"), full_page=True)
        page.goto(server.base_url + f"/cabinet/widgets/{widget_id}?lang=ru")
        page.screenshot(path=str(out / "widget-ru.png"), full_page=True)
        page.goto(server.base_url + "/cabinet/journal?lang=ru")
        expect(page.locator("h1")).to_contain_text("Журнал заявок")
        page.screenshot(path=str(out / "journal-ru.png"), full_page=False)
        browser.close()
    assert blocked == []
    for name in (
        "login",
        "journal",
        "request",
        "widget",
        "dashboard",
        "attribution",
        "site",
        "blacklist",
        "units",
        "tokens",
        "widget-ru",
        "journal-ru",
    ):
        assert (out / f"{name}.png").stat().st_size > 10_000, name
