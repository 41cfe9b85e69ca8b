"""Admin REST API under /api/admin/v1 (DESIGN §5), described by the served OpenAPI document."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import Field

from ..domain.digits import MAX_ID
from ..domain.errors import FieldErrors, PublicError
from ..outbound import UnsafeURL, check_url
from ..services.accounts import Principal, authenticate_token
from ..services.catalog import Catalog, require_operator_for_money
from ..services.intake import points_spent_today
from ..services.journal import STATUSES, Journal, JournalFilter
from ..services.ledger import Ledger
from ..services.timeline import action_resource, actions_of
from ..shapes.resources import (
    blacklist_resource,
    ledger_entry_resource,
    request_resource,
    session_resource,
    site_resource,
    unit_resource,
    widget_resource,
)
from ..shapes.schemas import (
    MAX_INT32,
    BlacklistIn,
    CamelModel,
    SiteIn,
    SitePatch,
    UnitIn,
    UnitPatch,
    WidgetIn,
    WidgetPatch,
)
from .openapi import ADMIN_ERRORS

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
# Ids are 64-bit in both databases: a larger one is refused as invalid, never sent to the database.
PathId = Annotated[int, Path(ge=1, le=MAX_ID)]


def catalog(request: Request) -> Catalog:
    return request.app.state.catalog


def journal(request: Request) -> Journal:
    return request.app.state.journal


Cat = Annotated[Catalog, Depends(catalog)]
Jour = Annotated[Journal, Depends(journal)]

router = APIRouter(prefix="/api/admin/v1", tags=["admin"], responses=ADMIN_ERRORS)


async def _check_webhook_urls(request: Request, urls: list[str] | None) -> None:
    """Refuse (422) webhook URLs that resolve to loopback, private, link-local or unspecified addresses."""
    allow_private = request.app.state.settings.webhook_allow_private
    errors = FieldErrors()
    for index, url in enumerate(urls or []):
        try:
            await check_url(url, allow_private=allow_private)
        except UnsafeURL as exc:
            errors.add(f"webhookUrls[{index}]", str(exc))
    if errors:
        raise PublicError("validation_error", "A webhook URL may not be called", errors.as_details(), http_status=422)


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
    require_operator_for_money(who, body.model_fields_set)
    await _check_webhook_urls(request, body.webhook_urls)
    values = body.model_dump()
    values["trunk"] = body.trunk.model_dump(by_alias=True) if body.trunk else None
    if values.get("account_id") is not None and not who.is_operator:
        raise AdminError("forbidden", "Only an operator token may create a site for another account")
    return await _site_out(request, await cat.create_site(who, values))


@router.get("/sites/{site_id}")
async def get_site(request: Request, site_id: PathId, who: Who, cat: Cat) -> dict[str, Any]:
    return await _site_out(request, await cat.get_site(who, site_id))


@router.patch("/sites/{site_id}")
async def patch_site(request: Request, site_id: PathId, body: SitePatch, who: Who, cat: Cat) -> dict[str, Any]:
    # null means "unchanged" for fields that always have a value; only the trunk can be removed with it.
    values = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None or k == "trunk"}
    if "trunk" in values:
        values["trunk"] = body.trunk.model_dump(by_alias=True) if body.trunk else None
    if "webhook_urls" in values:
        await cat.get_site(who, site_id)  # another account's site is "not found" before anything else
        await _check_webhook_urls(request, values["webhook_urls"])
    if "api_point_costs" in values:
        values["api_point_costs"] = values["api_point_costs"] or {}
    return await _site_out(request, await cat.update_site(who, site_id, values))


@router.delete("/sites/{site_id}", status_code=204)
async def delete_site(site_id: PathId, who: Who, cat: Cat) -> Response:
    await cat.delete_site(who, site_id)
    return Response(status_code=204)


# -- minutes ----------------------------------------------------------------------------------------------


def ledger(request: Request) -> Ledger:
    return request.app.state.ledger


Led = Annotated[Ledger, Depends(ledger)]


class TopUp(CamelModel):
    minutes: Annotated[int, Field(ge=-MAX_INT32, le=MAX_INT32, strict=True)]
    note: Annotated[str, Field(max_length=255)] = ""


@router.get("/sites/{site_id}/ledger", summary="Every change of the site's minutes, newest first")
async def get_ledger(
    site_id: PathId,
    who: Who,
    led: Led,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> dict[str, Any]:
    rows, total = await led.entries(who, site_id, limit, offset)
    return {"items": [ledger_entry_resource(r) for r in rows], "total": total, "limit": limit, "offset": offset}


@router.post("/sites/{site_id}/minutes", status_code=201,
             summary="Top up the site's minutes (operator token; negative minutes take some back)")
async def top_up(site_id: PathId, body: TopUp, who: Who, led: Led) -> dict[str, Any]:
    return ledger_entry_resource(await led.top_up(who, site_id, body.minutes, body.note))


# -- widgets ----------------------------------------------------------------------------------------------


@router.get("/sites/{site_id}/widgets")
async def list_widgets(site_id: PathId, who: Who, cat: Cat) -> list[dict[str, Any]]:
    return [widget_resource(w) for w in await cat.list_widgets(who, site_id)]


@router.post("/sites/{site_id}/widgets", status_code=201)
async def create_widget(site_id: PathId, body: WidgetIn, who: Who, cat: Cat) -> dict[str, Any]:
    values = body.model_dump()
    values["callback"] = body.callback.model_dump(by_alias=True)
    values["ui"] = body.ui.model_dump(by_alias=True)
    values["analytics"] = body.analytics.model_dump(by_alias=True)
    return widget_resource(await cat.create_widget(who, site_id, values))


@router.get("/widgets/{widget_id}")
async def get_widget(widget_id: PathId, who: Who, cat: Cat) -> dict[str, Any]:
    return widget_resource(await cat.get_widget(who, widget_id))


@router.patch("/widgets/{widget_id}")
async def patch_widget(widget_id: PathId, body: WidgetPatch, who: Who, cat: Cat) -> dict[str, Any]:
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
async def delete_widget(widget_id: PathId, who: Who, cat: Cat) -> Response:
    await cat.delete_widget(who, widget_id)
    return Response(status_code=204)


# -- units ------------------------------------------------------------------------------------------------


@router.get("/sites/{site_id}/units")
async def list_units(site_id: PathId, who: Who, cat: Cat) -> list[dict[str, Any]]:
    return [unit_resource(u) for u in await cat.list_units(who, site_id)]


@router.post("/sites/{site_id}/units", status_code=201)
async def create_unit(site_id: PathId, body: UnitIn, who: Who, cat: Cat) -> dict[str, Any]:
    return unit_resource(await cat.create_unit(who, site_id, body.model_dump()))


@router.get("/units/{unit_id}")
async def get_unit(unit_id: PathId, who: Who, cat: Cat) -> dict[str, Any]:
    return unit_resource(await cat.get_unit(who, unit_id))


@router.patch("/units/{unit_id}")
async def patch_unit(unit_id: PathId, body: UnitPatch, who: Who, cat: Cat) -> dict[str, Any]:
    values = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None}
    return unit_resource(await cat.update_unit(who, unit_id, values))


@router.delete("/units/{unit_id}", status_code=204)
async def delete_unit(unit_id: PathId, who: Who, cat: Cat) -> Response:
    await cat.delete_unit(who, unit_id)
    return Response(status_code=204)


# -- blacklist --------------------------------------------------------------------------------------------


@router.get("/sites/{site_id}/blacklist")
async def list_blacklist(site_id: PathId, who: Who, cat: Cat) -> list[dict[str, Any]]:
    return [blacklist_resource(b) for b in await cat.list_blacklist(who, site_id)]


@router.post("/sites/{site_id}/blacklist", status_code=201)
async def add_blacklist(site_id: PathId, body: BlacklistIn, who: Who, cat: Cat) -> dict[str, Any]:
    return blacklist_resource(await cat.add_blacklist(who, site_id, body.phone, body.comment))


@router.delete("/blacklist/{entry_id}", status_code=204)
async def delete_blacklist(entry_id: PathId, who: Who, cat: Cat) -> Response:
    await cat.delete_blacklist(who, entry_id)
    return Response(status_code=204)


# -- journal ----------------------------------------------------------------------------------------------


def as_utc(moment: datetime, name: str) -> datetime:
    """``moment`` in UTC (naive: read as UTC); one past year 1..9999 once in UTC is a validation_error
    (``9999-12-31T23:59:59-14:00`` overflowed to a 500)."""
    try:
        return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    except OverflowError:
        raise PublicError(
            "validation_error",
            f"{name} is out of range once in UTC",
            {"fields": [{"name": name, "errors": [{"message": "a time between years 1 and 9999 in UTC"}]}]},
        ) from None


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
    return as_utc(moment, name)


@router.get("/requests", summary="The call journal, newest first, with filters and paging")
async def list_requests(
    who: Who,
    jour: Jour,
    site_id: Annotated[int | None, Query(alias="siteId", ge=1, le=MAX_ID)] = None,
    status: Annotated[str | None, Query(description=" | ".join(STATUSES))] = None,
    route_key: Annotated[str | None, Query(alias="routeKey")] = None,
    widget_id: Annotated[int | None, Query(alias="widgetId", ge=1, le=MAX_ID)] = None,
    unit_id: Annotated[int | None, Query(alias="unitId", ge=1, le=MAX_ID)] = None,
    phone: str | None = None,
    tag: str | None = None,
    q: Annotated[str | None, Query(description="search in fields, tags and phone")] = None,
    date_from: Annotated[str | None, Query(alias="dateFrom")] = None,
    date_to: Annotated[str | None, Query(alias="dateTo")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
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
async def get_request(request: Request, request_id: PathId, who: Who, jour: Jour) -> dict[str, Any]:
    row, attempts = await jour.get(who, request_id)
    resource = request_resource(row, attempts)
    session = await jour.session(row["session_id"])
    resource["session"] = session_resource(session) if session else None
    # Who cancelled, called now, rescheduled or called it again, oldest first.
    resource["actions"] = [action_resource(a) for a in await actions_of(request.app.state.db, request_id)]
    return resource
