"""The /demo page: the reference's two examples as a real form against this server, in one language at a
time (``?lang=ru`` or ``?lang=en``; else the browser's, Russian unless it asks for English)."""

from __future__ import annotations

import json
import re
from html import escape
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from .seed import DEMO_SITE_KEY

PAGE = Path(__file__).with_name("page.html")
TOKEN = re.compile(r"\[\[(\w+)\]\]")

# The Russian status messages are the reference's own examples, word for word.
TEXT: dict[str, dict[str, str]] = {
    "ru": {
        "title": "Демо perezvon: форма обратного звонка",
        "language": "Язык",
        "heading": "Заказать обратный звонок",
        "intro_1": "Эта страница выполняет два примера из справки Calltouch JavaScript Callback API на этом "
        "сервере perezvon:",
        "intro_2": "решает, показывать ли форму, а",
        "intro_3": "отправляет её. Номера на 01 не отвечают, на 02 заняты (имитация линии).",
        "checking": "Проверяем, работает ли колл-центр…",
        "phone": "Телефон (11 цифр, например 79001234567)",
        "name": "Имя",
        "name_value": "Иван",
        "last_name": "Фамилия",
        "last_name_value": "Петров",
        "department": "Отдел",
        "any_department": "Любой (оператор виджета)",
        "call_at": "Позвонить в (необязательно, время колл-центра: ГГГГ-ММ-ДД ЧЧ:ММ:СС)",
        "now": "сейчас",
        "call_me": "Перезвоните мне",
        "follow_1": "Заявка видна в",
        "follow_link": "журнале кабинета",
        "follow_2": "(вход для демо печатает",
        "console": "Консоль",
        "working": "колл-центр работает, отображение виджета",
        "collecting": "колл-центр не работает, но можем отобразить форму нерабочего времени",
        "closed": "колл-центр не работает, заявки в нерабочее время не собираем",
        "not_found": "не найден включенный виджет по routeKey, либо услуга обратного звонка не активна",
        "error": "во время обработки произошла ошибка",
        "created": "Создана заявка на колбек, идентификатор: ",
        "throttled": "Достигнут лимит создания заявок, попробуйте позже",
        "blacklisted": "номер телефона находится в черном списке",
        "invalid": "были переданы некорректные данные: ",
        "failed": "Во время выполнения запроса произошла ошибка: ",
        "field_name": "Имя",
        "field_last_name": "Фамилия",
        "tag": "Форма заявки",
    },
    "en": {
        "title": "perezvon demo: callback form",
        "language": "Language",
        "heading": "Request a callback",
        "intro_1": "This page runs the two examples of the Calltouch JavaScript Callback API reference against "
        "this perezvon server:",
        "intro_2": "decides whether the form is shown, and",
        "intro_3": "sends it. Numbers ending in 01 never answer, 02 are busy (simulated line).",
        "checking": "Checking whether the call center is working…",
        "phone": "Phone (11 digits, e.g. 79001234567)",
        "name": "Name",
        "name_value": "Ivan",
        "last_name": "Last name",
        "last_name_value": "Petrov",
        "department": "Department",
        "any_department": "Any (widget operator)",
        "call_at": "Call at (optional, call center's time: YYYY-MM-DD HH:MM:SS)",
        "now": "now",
        "call_me": "Call me back",
        "follow_1": "Follow the request in the",
        "follow_link": "cabinet's journal",
        "follow_2": "(the demo login is printed by",
        "console": "Console",
        "working": "the call center is working: showing the widget",
        "collecting": "the call center is closed, but the non-working-hours form can be shown",
        "closed": "the call center is closed and does not collect requests now",
        "not_found": "no enabled widget for this routeKey, or the callback service is not active",
        "error": "an error occurred while processing",
        "created": "Callback request created, id: ",
        "throttled": "Too many requests, please try later",
        "blacklisted": "this phone number is blacklisted",
        "invalid": "invalid data was sent: ",
        "failed": "The request failed: ",
        "field_name": "Name",
        "field_last_name": "Last name",
        "tag": "Callback form",
    },
}


def pick_language(request: Request) -> str:
    asked = request.query_params.get("lang")
    if asked in TEXT:
        return asked
    return "en" if request.headers.get("accept-language", "").lower().startswith("en") else "ru"


async def demo_page(request: Request) -> Response:
    snapshot = await request.app.state.snapshots.by_key(DEMO_SITE_KEY)
    if snapshot is None:
        return HTMLResponse("<h1>No demo site</h1><p>Start with <code>perezvon demo</code>.</p>", 404)
    lang = pick_language(request)
    text = {
        **TEXT[lang],
        "lang": lang,
        "ru_current": 'aria-current="true"' if lang == "ru" else "",
        "en_current": 'aria-current="true"' if lang == "en" else "",
    }
    units = [{"id": u["id"], "name": u["name"]} for u in snapshot.units.values()]
    # "</" cannot close the JSON <script> block: escape it (names come from admins, still untrusted text).
    config = json.dumps({"units": units, "text": TEXT[lang]}, ensure_ascii=False).replace("</", "<\\/")
    html = PAGE.read_text(encoding="utf-8").replace("__DEMO_CONFIG__", config).replace("__SITE_KEY__", DEMO_SITE_KEY)
    # Our own words only; the two aria-current attributes go in as they are, the rest escaped.
    html = TOKEN.sub(lambda m: text[m[1]] if m[1].endswith("_current") else escape(text[m[1]]), html)
    return HTMLResponse(html, headers={"Content-Language": lang, "Vary": "Accept-Language"})


routes = [Route("/demo", demo_page, methods=["GET"])]
