"""What the drop-in widget reads on a visitor's page: which widgets to show and how, and one request's status.

Neither spends API points nor counts toward the per-IP API limit (DESIGN §3): like the tracking session,
this is the SDK's own bookkeeping, and the page's getRouteKeyData / createRequest are what count.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from sqlalchemy import select

from ..clock import utcnow
from ..domain.digits import parse_id
from ..domain.errors import PublicError
from ..domain.schedule import offset_of_zone
from ..domain.widget_ui import phone_plan, zone_country
from ..shapes.resources import iso, widget_ui
from ..store.db import Database
from ..store.snapshots import SiteSnapshot
from ..store.tables import call_attempts, callback_requests

# What of a widget's ui a page may see (every key is about how the widget looks and when it shows).
PUBLIC_UI_KEYS = (
    "color", "position", "title", "language", "buttonText", "nameField", "consentText",
    "pages", "delaySeconds", "displaySchedule",
)  # fmt: skip


def new_status_token() -> str:
    return secrets.token_urlsafe(18)  # 24 characters, 144 random bits


def page_widgets(snapshot: SiteSnapshot | None) -> dict[str, Any]:
    """The answer of ``GET /api/widget/v1/ui``: the site's widgets whose drop-in ``ui`` is on.

    Built once per snapshot: an admin change replaces the snapshot, so a page loaded after it shows it.
    """
    if snapshot is None or not snapshot.callback_active:
        return {"widgets": []}
    answer = snapshot.memo.get("page_widgets")
    if answer is None:
        plan = phone_plan(zone_country(snapshot.site["timezone"]))
        shown = []
        for widget in sorted(snapshot.widgets.values(), key=lambda w: w["id"]):
            ui = widget_ui(widget)
            if not (widget["enabled"] and ui["enabled"]):
                continue
            shown.append(
                {
                    "routeKey": widget["route_key"],
                    "ui": {key: ui[key] for key in PUBLIC_UI_KEYS},
                    "phone": plan,
                    # the zone's offset now (a DST change replaces the snapshot soon enough for a display rule)
                    "utcTimezone": offset_of_zone(widget["schedule_timezone"], utcnow()),
                }
            )
        answer = snapshot.memo["page_widgets"] = {"widgets": shown}
    return answer


def analytics_of(snapshot: SiteSnapshot | None, route_key: object) -> dict[str, Any] | None:
    """The analytics events ``ctw.js`` sends for a request created on ``route_key``, or None when off."""
    widget = snapshot.widgets.get(route_key) if snapshot is not None and isinstance(route_key, str) else None
    settings = (widget or {}).get("analytics") or {}
    if not settings.get("enabled"):
        return None
    events: dict[str, Any] = {"goal": settings.get("goal") or "callback_request"}
    if settings.get("metrikaCounterId"):
        events["metrikaCounterId"] = settings["metrikaCounterId"]
    return events


async def request_status(db: Database, snapshot: SiteSnapshot | None, request_id: object, token: object) -> dict:
    """One request's status for the visitor who made it: the token createRequest gave is the only key."""
    missing = PublicError("request_not_found", "No such request for this status token", {})
    # A JSON integer in 1..2**63-1 only: a larger one names no row and must not reach the database.
    is_id = type(request_id) is int and parse_id(request_id) is not None
    if snapshot is None or not is_id or not isinstance(token, str) or not token:
        raise missing
    async with db.read() as conn:
        row = (
            (
                await conn.execute(
                    select(
                        callback_requests.c.site_id,
                        callback_requests.c.status,
                        callback_requests.c.due_at,
                        callback_requests.c.next_attempt_at,
                        callback_requests.c.status_token,
                    ).where(callback_requests.c.id == request_id)
                )
            )
            .mappings()
            .first()
        )
        stored = row["status_token"] if row is not None else None
        if row is None or row["site_id"] != snapshot.id or not stored or not hmac.compare_digest(stored, token):
            raise missing
        last = (
            await conn.execute(
                select(call_attempts.c.outcome, call_attempts.c.operator_answered_at)
                .where(call_attempts.c.request_id == request_id)
                .order_by(call_attempts.c.number.desc())
                .limit(1)
            )
        ).first()
    return {
        "callbackRequestId": request_id,
        "status": row["status"],
        "dueAt": iso(row["due_at"]),
        "nextAttemptAt": iso(row["next_attempt_at"]),
        "lastOutcome": None if last is None else last[0],
        # The operator took the call and the visitor's phone is ringing (or they are talking) now.
        "operatorOnLine": row["status"] == "dialing" and last is not None and last[1] is not None and last[0] is None,
    }
