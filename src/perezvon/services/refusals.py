"""Requests refused at intake, kept so an admin sees what the site's visitors met: a blacklisted number,
a throttle, a number or origin not allowed, a closed call center.

Recording must never turn a refusal into a failure, nor let a flood of refusals (a bot hammering the
form) flood the table: each site keeps at most ``PER_MINUTE`` refusals a minute in this process; the
rest are not kept (the per-IP limit and the throttles already hold such a bot back).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select

from ..clock import utcnow
from ..domain.errors import PublicError
from ..store.db import Database
from ..store.tables import refused_requests
from .accounts import Principal
from .request_export import sites_in_scope

log = logging.getLogger("perezvon.services.refusals")
PER_MINUTE = 60
PAGE = 100
# Refusals worth showing an admin: what stopped a visitor who meant it. Malformed calls (a bad routeKey,
# broken JSON) are a site's code talking to us, not a visitor being turned away.
KEPT = frozenset(
    {
        "request_phone_blacklisted",
        "request_throttle_timeout",
        "request_throttle_count",
        "request_non_working_hours",
        "api_points_exhausted",
        "origin_not_allowed",
        "validation_error",
    }
)


@dataclass(frozen=True)
class Refusal:
    site_id: int
    widget_id: int | None
    route_key: str
    phone: str
    reason: str
    message: str
    source: str  # js | api


def refused(site_id: int, widget: dict[str, Any] | None, request: Any, error: PublicError, source: str) -> Refusal:
    """A refusal as kept: a validation error only when it was about the number (not allowed, premium…);
    others are a site's code calling us wrongly, not a visitor being turned away."""
    reason = error.type
    if reason == "validation_error":
        about_phone = [f for f in error.details.get("fields", []) if f.get("name") == "phone"]
        if not about_phone:
            reason = "malformed"
        message = "; ".join(e["message"] for f in about_phone for e in f["errors"]) or error.message
    else:
        message = error.message
    return Refusal(
        site_id=site_id,
        widget_id=widget["id"] if widget else None,
        route_key=request.route_key if isinstance(request.route_key, str) else "",
        phone=request.phone if isinstance(request.phone, str) else str(request.phone or ""),
        reason=reason,
        message=message,
        source=source,
    )


class Refusals:
    def __init__(self, db: Database, per_minute: int = PER_MINUTE) -> None:
        self.db = db
        self.per_minute = per_minute
        self._window: dict[int, tuple[int, int]] = {}  # site id → (minute, refusals kept in it)

    def _admit(self, site_id: int) -> bool:
        minute = int(time.monotonic() // 60)
        seen_minute, count = self._window.get(site_id, (minute, 0))
        if seen_minute != minute:
            count = 0
            if len(self._window) > 10_000:
                self._window.clear()
        if count >= self.per_minute:
            return False
        self._window[site_id] = (minute, count + 1)
        return True

    async def record(self, refusal: Refusal) -> None:
        """Keep one refusal (if its kind is worth showing and the site's minute allows); never raises."""
        if refusal.reason not in KEPT or not self._admit(refusal.site_id):
            return
        try:
            async with self.db.write() as conn:
                await conn.execute(
                    insert(refused_requests).values(
                        site_id=refusal.site_id,
                        widget_id=refusal.widget_id,
                        route_key=refusal.route_key[:255],
                        phone=refusal.phone[:32],
                        reason=refusal.reason,
                        message=refusal.message[:1000],
                        source=refusal.source,
                        created_at=utcnow(),
                    )
                )
        except Exception:  # the visitor's answer is the refusal itself: keeping a copy must not change it
            log.warning("could not keep a refused request of site %s", refusal.site_id, exc_info=True)

    async def list(
        self,
        who: Principal,
        site_id: int | None = None,
        reason: str | None = None,
        before: int | None = None,
        limit: int = PAGE,
    ) -> list[dict[str, Any]]:
        """The newest refusals of the principal's sites (or one), ``before`` an id for the next page."""
        site_ids = [s["id"] for s in await sites_in_scope(self.db, who, site_id)]
        if not site_ids:
            return []
        r = refused_requests.c
        query = select(refused_requests).where(r.site_id.in_(site_ids)).order_by(r.id.desc()).limit(limit)
        if reason:
            query = query.where(r.reason == reason)
        if before is not None:
            query = query.where(r.id < before)
        async with self.db.read() as conn:
            return [dict(row) for row in (await conn.execute(query)).mappings()]
