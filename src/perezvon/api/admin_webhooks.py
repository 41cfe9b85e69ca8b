"""Admin API for a request's life and its webhooks: the delivery log, cancel and reschedule (DESIGN §7)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request
from pydantic import BaseModel, ConfigDict

from ..domain.digits import MAX_ID
from ..domain.errors import PublicError
from ..services.requests import RequestLife
from ..services.timeline import api_actor
from ..shapes.resources import iso
from ..store import outbox
from .admin import Cat, Jour, PathId, Who, as_utc
from .openapi import ADMIN_ERRORS

router = APIRouter(prefix="/api/admin/v1", tags=["admin"], responses=ADMIN_ERRORS)


class RescheduleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    at: datetime | None = None  # ISO 8601 UTC; null: now


def delivery_resource(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "siteId": row["site_id"],
        "requestId": row["request_id"],
        "event": row["event"],
        "url": row["url"],
        "status": row["status"],
        "tries": row["tries"],
        "nextTryAt": iso(row["next_try_at"]) if row["status"] == outbox.PENDING else None,
        "lastStatusCode": row["last_status_code"],
        "lastError": row["last_error"],
        "deliveredAt": iso(row["delivered_at"]),
        "createdAt": iso(row["created_at"]),
        "payload": row["payload"],
    }


@router.get("/sites/{site_id}/webhook-deliveries", summary="The site's webhook deliveries, newest first")
async def list_deliveries(
    request: Request,
    site_id: PathId,
    who: Who,
    cat: Cat,
    status: Annotated[str | None, Query(description=" | ".join(outbox.DELIVERY_STATUSES))] = None,
    request_id: Annotated[int | None, Query(alias="requestId", ge=1, le=MAX_ID)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> dict[str, Any]:
    await cat.get_site(who, site_id)  # tenancy: another account's site is "not found"
    if status is not None and status not in outbox.DELIVERY_STATUSES:
        raise PublicError(
            "validation_error",
            "Unknown status",
            {"fields": [{"name": "status", "errors": [{"message": f"one of {', '.join(outbox.DELIVERY_STATUSES)}"}]}]},
        )
    rows, total = await outbox.deliveries_of_site(
        request.app.state.db, site_id, status=status, request_id=request_id, limit=limit, offset=offset
    )
    return {"items": [delivery_resource(r) for r in rows], "total": total, "limit": limit, "offset": offset}


def _life(request: Request) -> RequestLife:
    return request.app.state.requests


@router.post("/requests/{request_id}/cancel", summary="Cancel a pending request (one being dialled cannot be)")
async def cancel_request(request: Request, request_id: PathId, who: Who, jour: Jour) -> dict[str, Any]:
    await jour.get(who, request_id)  # tenancy check (NotFound for others' requests)
    return await _life(request).cancel(request_id, actor=api_actor(who))


@router.post(
    "/requests/{request_id}/reschedule",
    summary="Call a request at `at` (null: now): a pending one is moved, a finished one is called again",
)
async def reschedule_request(
    request: Request, request_id: PathId, who: Who, jour: Jour, body: Annotated[RescheduleIn, Body()]
) -> dict[str, Any]:
    await jour.get(who, request_id)  # tenancy check (NotFound for others' requests)
    # The API speaks UTC: a time without an offset is UTC.
    at = as_utc(body.at, "at") if body.at is not None else None
    return await _life(request).reschedule(request_id, at, actor=api_actor(who))
