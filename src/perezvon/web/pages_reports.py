"""Reports: where the requests came from (by UTM source / medium / campaign, with a chart and the same
table as CSV, a GET link like the journal's), and the requests refused at intake."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..clock import utcnow
from ..domain.errors import PublicError
from ..services.attribution import Attribution, Line, Period, Report, read_period
from ..services.refusals import KEPT, Refusals
from . import csvexport, i18n
from .base import page, render, url
from .charts import horizontal_bar_chart

GROUPINGS = ("source,medium,campaign", "source,medium", "source", "medium", "campaign")
CHART_ROWS = 12
PAGE_ROWS = 100  # Refusals.list's page


def _params(request: Request) -> dict[str, str]:
    q = request.query_params
    return {k: q.get(k, "") for k in ("site", "from", "to", "by")}


async def _report(request: Request) -> tuple[dict[str, Any], Report | None, dict[str, list[str]]]:
    """The chosen site (or all), and the report for the asked period, or the errors that stop it."""
    who = request.state.user.principal
    sites = await request.app.state.catalog.list_sites(who)
    params = _params(request)
    chosen = next((s for s in sites if str(s["id"]) == params["site"]), None)
    zone = chosen["timezone"] if chosen else (sites[0]["timezone"] if sites else "UTC")
    today = utcnow().astimezone(ZoneInfo(zone)).date()
    context = {"sites": sites, "chosen": chosen, "params": params, "zone": zone}
    try:
        period = read_period(params["from"], params["to"], params["by"] or None, today)
    except PublicError as error:
        fallback = read_period(None, None, None, today)
        context["period"] = fallback
        return context, None, {f["name"]: [e["message"] for e in f["errors"]] for f in error.details["fields"]}
    context["period"] = period
    service: Attribution = request.app.state.attribution
    return context, await service.report(who, period, chosen["id"] if chosen else None), {}


def label(line: Line, group_by: list[str], t: Callable[..., str]) -> str:
    values = [getattr(line, d) for d in group_by]
    if not any(values):
        return t("utm_none")  # one "(none)", not "(none) / (none) / (none)"
    return " / ".join(v or t("utm_none") for v in values)


def rate_text(line: Line) -> str:
    rate = line.connection_rate
    return "—" if rate is None else f"{rate * 100:.0f}%"


@page
async def attribution_page(request: Request) -> Response:
    context, report, errors = await _report(request)
    t = i18n.translator(request.state.lang)
    chart = None
    if report is not None and report.lines:
        shown = report.lines[:CHART_ROWS]
        chart = horizontal_bar_chart(
            [line.requests for line in shown],
            [label(line, report.group_by, t) for line in shown],
            title=t("chart_attribution"),
            fmt=lambda v: f"{v:.0f}",
        )
    period: Period = context["period"]
    p = context["params"]
    csv_url = url("/reports/attribution.csv", site=p["site"], **{"from": p["from"], "to": p["to"], "by": p["by"]})
    return render(
        request,
        "attribution.html",
        {
            **context,
            "nav": "reports",
            "report": report,
            "errors": errors,
            "chart": chart,
            "groupings": [(g, " / ".join(t("utm_" + d) for d in g.split(","))) for g in GROUPINGS],
            "dimensions": period.group_by,
            "label": lambda line: label(line, period.group_by, t),
            "rate_text": rate_text,
            "csv_url": csv_url,
        },
        status=400 if errors else 200,
    )


@page
async def attribution_csv(request: Request) -> Response:
    context, report, errors = await _report(request)
    if report is None:
        return Response("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()), status_code=400)
    buffer = io.StringIO()
    buffer.write("\ufeff")  # a BOM, so spreadsheets read the UTF-8 (Cyrillic campaign names) right
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([*report.group_by, "requests", "connected", "finished", "connectionRate", "minutes"])
    for line in report.lines:  # one row per group: small, no need to stream
        rate = line.connection_rate
        values = [getattr(line, d) or "" for d in report.group_by]
        counts = [line.requests, line.connected, line.finished, "" if rate is None else f"{rate:.4f}", line.minutes]
        writer.writerow([csvexport.neutralize(v) for v in [*values, *counts]])
    body = buffer.getvalue()
    name = f"perezvon-attribution-{report.first.isoformat()}-{report.last.isoformat()}.csv"
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
    )


@page
async def refusals_page(request: Request) -> Response:
    """The newest refusals of the account's sites (or one site, or one reason), a page at a time."""
    who = request.state.user.principal
    sites = {s["id"]: s for s in await request.app.state.catalog.list_sites(who)}
    q = request.query_params
    chosen = next((s for s in sites.values() if str(s["id"]) == q.get("site", "")), None)
    reason = q.get("reason") if q.get("reason") in KEPT else None
    before = int(q["before"]) if q.get("before", "").isascii() and q.get("before", "").isdigit() else None
    service: Refusals = request.app.state.refusals
    rows = await service.list(who, chosen["id"] if chosen else None, reason, before)
    shown = [{**r, "site": sites.get(r["site_id"])} for r in rows]
    older = rows[-1]["id"] if len(rows) == PAGE_ROWS else None
    filters = {"site": chosen["id"] if chosen else "", "reason": reason or ""}
    return render(
        request,
        "refusals.html",
        {
            "nav": "journal",
            "sites": list(sites.values()),
            "chosen": chosen,
            "reason": reason,
            "reasons": sorted(KEPT),
            "rows": shown,
            "older_url": url("/refusals", **filters, before=older) if older is not None else None,
            "newest_url": url("/refusals", **filters) if before is not None else None,
        },
    )


routes = [
    Route("/refusals", refusals_page, methods=["GET"]),
    Route("/reports/attribution", attribution_page, methods=["GET"]),
    Route("/reports/attribution.csv", attribution_csv, methods=["GET"]),
]
