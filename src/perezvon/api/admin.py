"""Admin REST API under /api/admin/v1 (DESIGN §5), described by the served OpenAPI document."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..domain.errors import PublicError
from ..services.accounts import Principal, authenticate_token
from ..services.catalog import Catalog
from ..services.intake import points_spent_today
from ..services.journal import STATUSES, Journal, JournalFilter
from ..services.timeline import action_resource, actions_of
from ..shapes.resources import (
    blacklist_resource,
    request_resource,
    session_resource,
    site_resource,
    unit_resource,
    widget_resource,
)
from ..shapes.schemas import BlacklistIn, SiteIn, SitePatch, UnitIn, UnitPatch, WidgetIn, WidgetPatch

bearer = HTTPBearer(auto_error=False, description="An admin API token (`perezvon token create`)")


class AdminError(PublicError):
    """Admin API refusals share the public {type, message, details} shape."""


async def principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Principal:
    state = request.app.state
    who = await authenticate_token(
        state.db, credentials.credentials if credentials else None, state.settings.admin_token
    )
    if who is None:
        raise AdminError("unauthorized", "A valid 'Authorization: Bearer <token>' header is required")
    return who


Who = Annotated[Principal, Depends(principal)]


def catalog(request: Request) -> Catalog:
    return request.app.state.catalog


def journal(request: Request) -> Journal:
    return request.app.state.journal


Cat = Annotated[Catalog, Depends(catalog)]
Jour = Annotated[Journal, Depends(journal)]

router = APIRouter(prefix="/api/admin/v1", tags=["admin"])


async def _site_out(request: Request, row: dict[str, Any]) -> dict[str, Any]:
    spent = await points_spent_today(request.app.state.guard, row)
    resource = site_resource(row, spent)
    resource["webhookSecret"] = row["webhook_secret"]
    return resource


# -- sites ------------------------------------------------------------------------------------------------


@router.get("/sites", summary="List the sites this token reaches")
async def list_sites(request: Request, who: Who, cat: Cat) -> list[dict[str, Any]]:
    return [await _site_out(request, s) for s in await cat.list_sites(who)]


@router.post("/sites", status_code=201, summary="Create a site (its siteKey is generated)")
async def create_site(request: Request, body: SiteIn, who: Who, cat: Cat) -> dict[str, Any]:
    values = body.model_dump()
    values["trunk"] = body.trunk.model_dump(by_alias=True) if body.trunk else None
    if values.get("account_id") is not None and not who.is_operator:
        raise AdminError("forbidden", "Only an operator token may create a site for another account")
    return await _site_out(request, await cat.create_site(who, values))


@router.get("/sites/{site_id}")
async def get_site(request: Request, site_id: int, who: Who, cat: Cat) -> dict[str, Any]:
    return await _site_out(request, await cat.get_site(who, site_id))


@router.patch("/sites/{site_id}")
async def patch_site(request: Request, site_id: int, body: SitePatch, who: Who, cat: Cat) -> dict[str, Any]:
    values = body.model_dump(exclude_unset=True)
    if "trunk" in values:
        values["trunk"] = body.trunk.model_dump(by_alias=True) if body.trunk else None
    if "api_point_costs" in values:
        values["api_point_costs"] = values["api_point_costs"] or {}
    return await _site_out(request, await cat.update_site(who, site_id, values))


@router.delete("/sites/{site_id}", status_code=204)
async def delete_site(site_id: int, who: Who, cat: Cat) -> Response:
    await cat.delete_site(who, site_id)
    return Response(status_code=204)


# -- widgets ----------------------------------------------------------------------------------------------


@router.get("/sites/{site_id}/widgets")
async def list_widgets(site_id: int, who: Who, cat: Cat) -> list[dict[str, Any]]:
    return [widget_resource(w) for w in await cat.list_widgets(who, site_id)]


@router.post("/sites/{site_id}/widgets", status_code=201)
async def create_widget(site_id: int, body: WidgetIn, who: Who, cat: Cat) -> dict[str, Any]:
    values = body.model_dump()
    values["callback"] = body.callback.model_dump(by_alias=True)
    values["ui"] = body.ui.model_dump(by_alias=True)
    values["analytics"] = body.analytics.model_dump(by_alias=True)
    return widget_resource(await cat.create_widget(who, site_id, values))


@router.get("/widgets/{widget_id}")
async def get_widget(widget_id: int, who: Who, cat: Cat) -> dict[str, Any]:
    return widget_resource(await cat.get_widget(who, widget_id))


@router.patch("/widgets/{widget_id}")
async def patch_widget(widget_id: int, body: WidgetPatch, who: Who, cat: Cat) -> dict[str, Any]:
    current = await cat.get_widget(who, widget_id)
    values = body.model_dump(exclude_unset=True)
    # Nested settings merge with what is stored: PATCH {"callback": {"redialAttempts": 0}} keeps the rest.
    if body.callback is not None:
        values["callback"] = {**current["callback"], **body.callback.model_dump(by_alias=True, exclude_unset=True)}
    for key in ("ui", "analytics"):
        given = getattr(body, key)
        if given is not None:
            values[key] = {**current[key], **given.model_dump(by_alias=True, exclude_unset=True)}
    if body.throttle is not None:
        given = body.throttle.model_dump(exclude_unset=True)
        values["throttle"] = {
            "user_timeout_seconds": given.get("user_timeout_seconds", current["throttle_user_timeout_s"]),
            "max_requests_per_phone": given.get("max_requests_per_phone", current["throttle_max_per_phone"]),
            "period_seconds": given.get("period_seconds", current["throttle_period_s"]),
        }
    if body.schedule is not None:
        values["schedule"] = body.schedule.model_dump()
    return widget_resource(await cat.update_widget(who, widget_id, values))


@router.delete("/widgets/{widget_id}", status_code=204)
async def delete_widget(widget_id: int, who: Who, cat: Cat) -> Response:
    await cat.delete_widget(who, widget_id)
    return Response(status_code=204)


# -- units ------------------------------------------------------------------------------------------------


@router.get("/sites/{site_id}/units")
async def list_units(site_id: int, who: Who, cat: Cat) -> list[dict[str, Any]]:
    return [unit_resource(u) for u in await cat.list_units(who, site_id)]


@router.post("/sites/{site_id}/units", status_code=201)
async def create_unit(site_id: int, body: UnitIn, who: Who, cat: Cat) -> dict[str, Any]:
    return unit_resource(await cat.create_unit(who, site_id, body.model_dump()))


@router.get("/units/{unit_id}")
async def get_unit(unit_id: int, who: Who, cat: Cat) -> dict[str, Any]:
    return unit_resource(await cat.get_unit(who, unit_id))


@router.patch("/units/{unit_id}")
async def patch_unit(unit_id: int, body: UnitPatch, who: Who, cat: Cat) -> dict[str, Any]:
    return unit_resource(await cat.update_unit(who, unit_id, body.model_dump(exclude_unset=True)))


@router.delete("/units/{unit_id}", status_code=204)
async def delete_unit(unit_id: int, who: Who, cat: Cat) -> Response:
    await cat.delete_unit(who, unit_id)
    return Response(status_code=204)


# -- blacklist --------------------------------------------------------------------------------------------


@router.get("/sites/{site_id}/blacklist")
async def list_blacklist(site_id: int, who: Who, cat: Cat) -> list[dict[str, Any]]:
    return [blacklist_resource(b) for b in await cat.list_blacklist(who, site_id)]


@router.post("/sites/{site_id}/blacklist", status_code=201)
async def add_blacklist(site_id: int, body: BlacklistIn, who: Who, cat: Cat) -> dict[str, Any]:
    return blacklist_resource(await cat.add_blacklist(who, site_id, body.phone, body.comment))


@router.delete("/blacklist/{entry_id}", status_code=204)
async def delete_blacklist(entry_id: int, who: Who, cat: Cat) -> Response:
    await cat.delete_blacklist(who, entry_id)
    return Response(status_code=204)


# -- journal ----------------------------------------------------------------------------------------------


MAX_ID = 2**63 - 1  # ids are 64-bit: a larger cursor is a validation error, not a database one


def _date_bound(value: str | None, name: str) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise PublicError(
            "validation_error",
            f"{name} must be an ISO 8601 date or time",
            {"fields": [{"name": name, "errors": [{"message": "expected e.g. 2026-11-25 or 2026-11-25T10:00:00Z"}]}]},
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@router.get("/requests", summary="The call journal, newest first, with filters and paging")
async def list_requests(
    who: Who,
    jour: Jour,
    site_id: Annotated[int | None, Query(alias="siteId")] = None,
    status: Annotated[str | None, Query(description=" | ".join(STATUSES))] = None,
    route_key: Annotated[str | None, Query(alias="routeKey")] = None,
    widget_id: Annotated[int | None, Query(alias="widgetId")] = None,
    unit_id: Annotated[int | None, Query(alias="unitId")] = None,
    phone: str | None = None,
    tag: str | None = None,
    q: Annotated[str | None, Query(description="search in fields, tags and phone")] = None,
    date_from: Annotated[str | None, Query(alias="dateFrom")] = None,
    date_to: Annotated[str | None, Query(alias="dateTo")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
    before: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="requests older than this id (keyset: nextBefore)")
    ] = None,
    after: Annotated[
        int | None, Query(ge=0, le=MAX_ID, description="requests newer than this id (keyset: prevAfter)")
    ] = None,
) -> dict[str, Any]:
    if status is not None and status not in STATUSES:
        raise PublicError(
            "validation_error",
            "Unknown status",
            {"fields": [{"name": "status", "errors": [{"message": f"one of {', '.join(STATUSES)}"}]}]},
        )
    flt = JournalFilter(
        site_id=site_id,
        status=status,
        route_key=route_key,
        widget_id=widget_id,
        unit_id=unit_id,
        phone=phone,
        tag=tag,
        search=q,
        created_from=_date_bound(date_from, "dateFrom"),
        created_to=_date_bound(date_to, "dateTo"),
    )
    if before is not None and after is not None:
        raise PublicError(
            "validation_error",
            "Give before or after, not both",
            {"fields": [{"name": "after", "errors": [{"message": "not together with before"}]}]},
        )
    page = await jour.page(who, flt, limit=limit, offset=offset, before=before, after=after)
    return {
        "items": [request_resource(r, page.attempts.get(r["id"], [])) for r in page.rows],
        "total": page.total,
        "totalExact": page.total_exact,
        "limit": limit,
        "offset": offset,
        "nextBefore": page.older,
        "prevAfter": page.newer,
    }


@router.get("/requests/{request_id}")
async def get_request(request: Request, request_id: int, who: Who, jour: Jour) -> dict[str, Any]:
    row, attempts = await jour.get(who, request_id)
    resource = request_resource(row, attempts)
    session = await jour.session(row["session_id"])
    resource["session"] = session_resource(session) if session else None
    # Who cancelled, called now, rescheduled or called it again, oldest first.
    resource["actions"] = [action_resource(a) for a in await actions_of(request.app.state.db, request_id)]
    return resource
