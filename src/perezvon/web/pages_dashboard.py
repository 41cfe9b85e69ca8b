"""The dashboard: the last 30 days in four server-drawn charts."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..services.intake import points_spent_today
from ..services.stats import daily
from . import i18n
from .base import duration, page, render
from .charts import bar_chart, nice_ceiling

DAYS = 30


def _short_duration(seconds: float, t: Callable[..., str]) -> str:
    """Axis labels are narrow: 45 s, 2.5 min (45 с, 2.5 мин)."""
    if seconds < 60:
        return f"{seconds:.0f} {t('unit_s')}"
    return f"{seconds / 60:.1f}".removesuffix(".0") + f" {t('unit_min')}"


def minutes_text(minutes: float) -> str:
    return f"{minutes:.1f}".removesuffix(".0")


@page
async def dashboard(request: Request) -> Response:
    who = request.state.user.principal
    sites = await request.app.state.catalog.list_sites(who)
    chosen_id = request.query_params.get("site", "")
    chosen = next((s for s in sites if str(s["id"]) == chosen_id), None)
    selected = [chosen] if chosen else sites
    zone = selected[0]["timezone"] if selected else "UTC"
    today = datetime.now(ZoneInfo(zone)).date()
    summary = await daily(request.app.state.db, [s["id"] for s in selected], zone, today, DAYS)
    t = i18n.translator(request.state.lang)
    labels = [d.day.strftime("%d.%m") for d in summary.days]
    # Waits read best against whole minutes once they pass one (1, 2, 2.5, 5 min rather than 3.3 min).
    longest = max((d.median_wait or 0 for d in summary.days), default=0)
    wait_top = nice_ceiling(longest / 60) * 60 if longest >= 60 else None
    charts = [
        (
            t("chart_requests"),
            bar_chart(
                [d.requests for d in summary.days],
                labels,
                title=t("chart_requests"),
                fmt=lambda v: f"{v:.0f}",
                css_class="c-requests",
            ),
        ),
        (
            t("chart_answered"),
            bar_chart(
                [None if d.answered_share is None else d.answered_share * 100 for d in summary.days],
                labels,
                title=t("chart_answered"),
                fmt=lambda v: f"{v:.0f}%",
                maximum=100,
                css_class="c-answered",
            ),
        ),
        (
            t("chart_wait"),
            bar_chart(
                [d.median_wait for d in summary.days],
                labels,
                title=t("chart_wait"),
                fmt=lambda v: duration(v, request.state.lang),
                axis_fmt=lambda v: _short_duration(v, t),
                maximum=wait_top,
                css_class="c-wait",
            ),
        ),
        (
            t("chart_minutes"),
            bar_chart(
                [d.minutes for d in summary.days],
                labels,
                title=t("chart_minutes"),
                fmt=minutes_text,
                css_class="c-minutes",
            ),
        ),
    ]
    guard = request.app.state.guard
    balance = sum(s["minutes_balance"] for s in selected)
    points = sum([await points_spent_today(guard, s) for s in selected])
    return render(
        request,
        "dashboard.html",
        {
            "nav": "dashboard",
            "sites": sites,
            "chosen": chosen,
            "summary": summary,
            "charts": charts,
            "balance": balance,
            "minutes_text": minutes_text,
            "points": points,
            "zone": zone,
            "days": DAYS,
        },
    )


routes = [Route("/dashboard", dashboard, methods=["GET"])]
