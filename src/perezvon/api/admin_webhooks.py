"""Admin API for the callback engine: a site's webhook delivery log, and cancelling a pending request."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from sqlalchemy import func, select, update

from ..clock import utcnow
from ..domain.callback import CANCELLED, PENDING
from ..domain.errors import PublicError
from ..services.catalog import Conflict
from ..shapes.resources import iso, request_resource
from ..store.tables import call_attempts, callback_requests, sites, webhook_deliveries
from .admin import Cat, Jour, Who

router = APIRouter(prefix="/api/admin/v1", tags=["admin"])

DELIVERY_STATUSES = ("pending", "delivered", "failed")
_w = webhook_deliveries.c


def delivery_resource(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "siteId": row["site_id"],
        "requestId": row["request_id"],
        "event": row["event"],
        "url": row["url"],
        "status": row["status"],
        "tries": row["tries"],
        "nextTryAt": iso(row["next_try_at"]) if row["status"] == "pending" else None,
        "lastStatusCode": row["last_status_code"],
        "lastError": row["last_error"],
        "deliveredAt": iso(row["delivered_at"]),
        "createdAt": iso(row["created_at"]),
        "payload": row["payload"],
    }


@router.get("/sites/{site_id}/webhook-deliveries", summary="The site's webhook deliveries, newest first")
async def list_deliveries(
    request: Request,
    site_id: int,
    who: Who,
    cat: Cat,
    status: Annotated[str | None, Query(description=" | ".join(DELIVERY_STATUSES))] = None,
    request_id: Annotated[int | None, Query(alias="requestId")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    await cat.get_site(who, site_id)  # tenancy: another account's site is "not found"
    if status is not None and status not in DELIVERY_STATUSES:
        raise PublicError(
            "validation_error",
            "Unknown status",
            {"fields": [{"name": "status", "errors": [{"message": f"one of {', '.join(DELIVERY_STATUSES)}"}]}]},
        )
    query = select(webhook_deliveries).where(_w.site_id == site_id)
    if status is not None:
        query = query.where(_w.status == status)
    if request_id is not None:
        query = query.where(_w.request_id == request_id)
    async with request.app.state.db.read() as conn:
        total = (await conn.execute(select(func.count()).select_from(query.subquery()))).scalar() or 0
        rows = (await conn.execute(query.order_by(_w.id.desc()).limit(limit).offset(offset))).mappings().all()
    return {"items": [delivery_resource(r) for r in rows], "total": int(total), "limit": limit, "offset": offset}


@router.post("/requests/{request_id}/cancel", summary="Cancel a pending request (one being dialled cannot be)")
async def cancel_request(request: Request, request_id: int, who: Who, jour: Jour) -> dict[str, Any]:
    row, _attempts = await jour.get(who, request_id)  # tenancy check (NotFound for others' requests)
    state = request.app.state
    now = utcnow()
    queued = 0
    async with state.db.write() as conn:
        moved = await conn.execute(
            update(callback_requests)
            .where(callback_requests.c.id == request_id, callback_requests.c.status == PENDING)
            .values(status=CANCELLED, next_attempt_at=None, finished_at=now, updated_at=now)
        )
        if moved.rowcount != 1:
            raise Conflict(f"request {request_id} is {row['status']}: only a pending request can be cancelled")
        row = (await conn.execute(select(callback_requests).where(callback_requests.c.id == request_id))
               ).mappings().one()
        attempts = (await conn.execute(select(call_attempts).where(call_attempts.c.request_id == request_id)
                                       .order_by(call_attempts.c.number))).mappings().all()
        resource = request_resource(row, list(attempts))
        site = (await conn.execute(select(sites).where(sites.c.id == row["site_id"]))).mappings().first()
        if site is not None:
            from ..calls.webhooks import FINISHED, enqueue

            queued = await enqueue(conn, site, FINISHED, resource, now)
    runtime = getattr(state, "worker", None)
    if queued and runtime is not None and getattr(runtime, "webhooks", None) is not None:
        runtime.webhooks.wake()
    events = getattr(state, "events", None)
    if events is not None:
        events.publish({"requestId": request_id, "siteId": row["site_id"], "status": CANCELLED})
    return resource
