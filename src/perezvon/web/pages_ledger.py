"""A site's minutes ledger: the balance per day as a chart, then every entry, newest first."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..clock import utcnow
from ..shapes.resources import ledger_entry_resource, site_resource
from . import i18n
from .base import page, render
from .charts import bar_chart

DAYS = 30
PAGE = 100


def end_of_day_balances(balance: int, entries: list[dict[str, Any]], days: list[date], zone: str) -> list[int]:
    """The balance at the end of each of ``days`` (local to ``zone``), walking back from today's
    ``balance`` through ``entries`` (oldest first, all of them after the first day began)."""
    tz = ZoneInfo(zone)
    moved_after: dict[date, int] = {}
    for entry in entries:
        day = entry["at"].astimezone(tz).date()
        moved_after[day] = moved_after.get(day, 0) + entry["minutes"]
    balances: list[int] = []
    running = balance
    for day in reversed(days):
        balances.append(running)
        running -= moved_after.get(day, 0)
    return list(reversed(balances))


@page
async def ledger_page(request: Request) -> Response:
    who = request.state.user.principal
    site_id = request.path_params["site_id"]
    ledger = request.app.state.ledger
    site, recent = await ledger.history(who, site_id, DAYS)
    entries, total = await ledger.entries(who, site_id, PAGE, 0)
    today = utcnow().astimezone(ZoneInfo(site["timezone"])).date()
    days = [today - timedelta(days=n) for n in range(DAYS - 1, -1, -1)]
    t = i18n.translator(getattr(request.state, "lang", "en"))
    chart = bar_chart(
        end_of_day_balances(site["minutes_balance"], recent, days, site["timezone"]),
        [f"{d.day:02d}.{d.month:02d}" for d in days],
        title=t("ledger_chart"),
        fmt=lambda v: f"{v:.0f}",
        css_class="c-minutes",
    )
    return render(
        request,
        "ledger.html",
        {
            "nav": "sites",
            "site": site_resource(site),
            "chart": chart,
            "entries": [ledger_entry_resource(e) | {"localAt": _local(e["at"], site["timezone"])} for e in entries],
            "total": total,
            "shown": PAGE,
        },
    )


def _local(moment: datetime, zone: str) -> str:
    return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")


routes = [Route("/sites/{site_id:int}/ledger", ledger_page, methods=["GET"])]
