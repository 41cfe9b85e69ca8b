"""Admin API reports: where the requests came from (attribution by UTM source / medium / campaign), and
the requests refused at intake (what the sites' visitors met)."""

from __future__ import annotations

from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request

from ..clock import utcnow
from ..services.attribution import Attribution, Line, Report, read_period
from ..services.refusals import Refusals
from ..shapes.resources import iso
from .admin import Cat, Who
from .openapi import ADMIN_ERRORS

router = APIRouter(prefix="/api/admin/v1", tags=["admin"], responses=ADMIN_ERRORS)


def line_resource(line: Line, group_by: list[str]) -> dict[str, Any]:
    keys = {d: getattr(line, d) for d in group_by}
    rate = line.connection_rate
    return {
        **keys,
        "requests": line.requests,
        "connected": line.connected,
        "finished": line.finished,
        "connectionRate": None if rate is None else round(rate, 4),
        "minutes": line.minutes,
    }


def report_resource(report: Report) -> dict[str, Any]:
    return {
        "dateFrom": report.first.isoformat(),
        "dateTo": report.last.isoformat(),
        "groupBy": report.group_by,
        "items": [line_resource(line, report.group_by) for line in report.lines],
        "total": line_resource(report.total, []),
    }


@router.get(
    "/reports/attribution",
    summary="Requests, connected calls, connection rate and billed minutes by UTM source / medium / campaign",
)
async def attribution(
    request: Request,
    who: Who,
    cat: Cat,
    site_id: Annotated[int | None, Query(alias="siteId")] = None,
    date_from: Annotated[str | None, Query(alias="dateFrom", description="YYYY-MM-DD, local to each site")] = None,
    date_to: Annotated[str | None, Query(alias="dateTo", description="YYYY-MM-DD, inclusive; default today")] = None,
    group_by: Annotated[
        str | None, Query(alias="groupBy", description="comma list of source, medium, campaign")
    ] = None,
) -> dict[str, Any]:
    zone = (await cat.get_site(who, site_id))["timezone"] if site_id is not None else "UTC"
    today = utcnow().astimezone(ZoneInfo(zone)).date()
    period = read_period(date_from, date_to, group_by, today)
    service: Attribution = request.app.state.attribution
    return report_resource(await service.report(who, period, site_id))


def refusal_resource(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "siteId": row["site_id"],
        "widgetId": row["widget_id"],
        "routeKey": row["route_key"],
        "phone": row["phone"],
        "reason": row["reason"],
        "message": row["message"],
        "source": row["source"],
        "createdAt": iso(row["created_at"]),
    }


@router.get("/refusals", summary="Requests refused at intake (blacklisted, throttled, not allowed), newest first")
async def refusals(
    request: Request,
    who: Who,
    site_id: Annotated[int | None, Query(alias="siteId")] = None,
    reason: Annotated[str | None, Query(description="an error type, e.g. request_phone_blacklisted")] = None,
    before: Annotated[int | None, Query(description="the `next` of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    service: Refusals = request.app.state.refusals
    rows = await service.list(who, site_id, reason, before, limit)
    return {"items": [refusal_resource(r) for r in rows], "next": rows[-1]["id"] if len(rows) == limit else None}
