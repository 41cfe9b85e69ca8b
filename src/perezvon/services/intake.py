"""Accepting callback requests and answering widget look-ups: shared by the JS API and the server-side twin."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from ..clock import utcnow
from ..domain.destinations import destination_problem
from ..domain.errors import FieldErrors, PublicError, throttled, validation_error
from ..domain.quiet_hours import quiet_hold
from ..domain.redial import allowed_time
from ..domain.request_rules import RequestInput, check_route_key, check_schedule_in_future, parse_schedule_time
from ..domain.schedule import WeeklySchedule
from ..shapes.resources import UTM_KEYS
from ..store.snapshots import SiteSnapshot, SnapshotCache
from ..store.tables import tracking_sessions
from ..throttling import Guard
from .onpage import new_status_token
from .refusals import Refusals, refused
from .requests import RequestLife

SESSION_ID_LIMIT = 2**53  # tracking session ids are random integers in 1 .. 2**53 - 1
DEFAULT_POINT_COSTS = {"getRouteKeyData": 1, "createRequest": 1, "serverCreate": 1}


def site_day(site: dict[str, Any], now: datetime) -> str:
    """The site's calendar day: the points budget resets at midnight in the site's time zone."""
    return now.astimezone(ZoneInfo(site["timezone"])).date().isoformat()


async def points_spent_today(guard: Guard, site: dict[str, Any], now: datetime | None = None) -> int:
    """The API points the site has spent on its current calendar day."""
    return await guard.points_spent(site["id"], site_day(site, now or utcnow()))


@dataclass
class Origin:
    """Where a request came from: the client IP, the browser's Origin header, the tracking session."""

    ip: str
    origin: str | None = None
    session_id: int | None = None
    user_agent: str = ""


@dataclass
class Accepted:
    request_id: int
    due_at: datetime
    status_token: str | None = None  # the visitor's key to this request's public status


@dataclass
class Intake:
    snapshots: SnapshotCache
    guard: Guard
    # Stores what is accepted (with its request.created webhooks) and wakes the worker.
    life: RequestLife
    refusals: Refusals | None = None  # where refusals of known sites are kept (the cabinet shows them)

    @property
    def db(self) -> Any:
        return self.life.db

    # -- checks shared by every entry point -------------------------------------------------------

    @staticmethod
    def check_origin(snapshot: SiteSnapshot, origin: str | None) -> None:
        allowed = snapshot.site["allowed_origins"] or []
        # An empty list allows every origin; no Origin header means not a browser (nothing to check).
        if allowed and origin is not None and origin.rstrip("/") not in allowed:
            raise PublicError(
                "origin_not_allowed",
                f"Origin {origin} is not allowed for this site; add it to the site's allowedOrigins",
                {"origin": origin},
            )

    @asynccontextmanager
    async def paying(self, snapshot: SiteSnapshot, method: str, now: datetime) -> AsyncIterator[None]:
        """The call's API points, taken before the work and given back if the call is refused or fails.

        Checked and taken in one atomic step (a Redis script, one SQL upsert on PostgreSQL, an in-process
        counter written back to the database on SQLite: see throttling/points.py), so concurrent calls,
        in one process or many, never spend past the budget, and a restart remembers the day's spend."""
        cost = int((snapshot.site["api_point_costs"] or {}).get(method, DEFAULT_POINT_COSTS.get(method, 1)))
        if cost <= 0:
            yield
            return
        budget = snapshot.site["api_points_per_day"]
        day = site_day(snapshot.site, now)
        taken, spent = await self.guard.take_points(snapshot.id, day, cost, budget)
        if not taken:
            raise PublicError(
                "api_points_exhausted",
                "The site's daily API points budget is spent; it resets at midnight in the site's time zone",
                {"pointsPerDay": budget, "pointsSpent": spent},
            )
        try:
            yield
        except BaseException:
            await asyncio.shield(self.guard.give_back_points(snapshot.id, day, cost))
            raise

    @staticmethod
    def active_widget(snapshot: SiteSnapshot | None, route_key: str) -> dict[str, Any] | None:
        if snapshot is None or not snapshot.callback_active:
            return None
        widget = snapshot.widgets.get(route_key)
        return widget if widget is not None and widget["enabled"] else None

    # -- getRouteKeyData ------------------------------------------------------------------------------

    async def route_key_data(self, site_key: str, payload: dict[str, Any], origin: Origin) -> dict[str, Any]:
        now = utcnow()
        errors = FieldErrors()
        route_key = payload.get("routeKey")
        check_route_key(route_key, errors)
        snapshot = await self.snapshots.by_key(site_key) if isinstance(site_key, str) else None
        if snapshot is not None:
            self.check_origin(snapshot, origin.origin)
        errors.raise_if_any()
        if snapshot is None:
            return {"widgetFound": False, "widgetData": None}
        async with self.paying(snapshot, "getRouteKeyData", now):
            widget = self.active_widget(snapshot, route_key)  # type: ignore[arg-type]
            if widget is None:
                return {"widgetFound": False, "widgetData": None}
            return {"widgetFound": True, "widgetData": self.widget_data(snapshot, widget, now)}

    @staticmethod
    def widget_data(snapshot: SiteSnapshot, widget: dict[str, Any], now: datetime) -> dict[str, Any]:
        """getRouteKeyData's ``widgetData``. Only the working mode depends on the moment, so the answer for
        each of the two modes is built once per snapshot (the 168-cell default schedule made building it
        the largest cost of the call). The dict is shared: callers serialise it and must not change it."""
        schedule = snapshot.schedule(widget)
        mode, offset = schedule.mode(now), schedule.utc_offset(now)  # the offset changes with DST
        key = ("widgetData", widget["id"], mode, offset)
        data = snapshot.memo.get(key)
        if data is None:
            collect = bool(widget["collect_non_working"])
            data = snapshot.memo[key] = {
                "widgetId": widget["id"],
                "callCenterWorkingMode": mode,
                "collectNonWorkingRequests": collect,
                "collectRequests": collect,
                "workingSchedule": {"utcTimezone": offset, "hours": schedule.sorted_hours()},
            }
        return data

    # -- createRequest --------------------------------------------------------------------------------

    async def create_request(
        self, snapshot: SiteSnapshot | None, request: RequestInput, errors: FieldErrors, origin: Origin, **options: Any
    ) -> Accepted:
        """``_create_request`` (``options``: its keywords), keeping a copy of a refusal of a known site for
        its admins to see."""
        try:
            return await self._create_request(snapshot, request, errors, origin, **options)
        except PublicError as error:
            if snapshot is not None and self.refusals is not None:
                widget = snapshot.widgets.get(request.route_key) if isinstance(request.route_key, str) else None
                await self.refusals.record(refused(snapshot.id, widget, request, error, options.get("source", "js")))
            raise

    async def _create_request(
        self,
        snapshot: SiteSnapshot | None,
        request: RequestInput,
        errors: FieldErrors,
        origin: Origin,
        *,
        method: str = "createRequest",
        source: str = "js",
        extra: dict[str, Any] | None = None,
    ) -> Accepted:
        """Run every rule in the documented order, then commit the request before returning its id.

        ``errors`` holds the shape errors found by ``validate_request``; site-dependent ones join them so
        that one answer lists every invalid field.
        """
        now = utcnow()
        snapshot, widget, schedule = self._check_fields(snapshot, request, errors, origin, now)
        async with self.paying(snapshot, method, now):  # given back if any rule below refuses
            if request.phone in snapshot.blacklist:
                raise PublicError("request_phone_blacklisted", "This phone number is blacklisted", {})
            due_at = self._due_at(widget, schedule, request, now)
            session_id = await self._session_of_site(origin.session_id, snapshot.id)
            await self._check_throttles(
                widget, request.phone, f"s{session_id}" if session_id is not None else f"ip{origin.ip}"
            )
            await self._check_number_cap(snapshot.site, request.phone, now)
            extra = extra or {}
            values = dict(
                site_id=snapshot.id,
                widget_id=widget["id"],
                route_key=request.route_key,
                phone=request.phone,
                fields=request.fields,
                custom_fields=request.custom_fields,
                tags=request.tags,
                unit_id=request.unit_id,
                schedule_time=request.schedule_time,
                session_id=session_id,
                source=source,
                call_url=extra.get("callUrl"),
                utm=extra.get("utm") or {},
                status_token=new_status_token(),
            )
            request_id = await self.life.accept(values, due_at, snapshot.site["webhook_urls"] or (), now)
        return Accepted(request_id, due_at, values["status_token"])

    def _check_fields(
        self,
        snapshot: SiteSnapshot | None,
        request: RequestInput,
        errors: FieldErrors,
        origin: Origin,
        now: datetime,
    ) -> tuple[SiteSnapshot, dict[str, Any], WeeklySchedule]:
        """The origin, the unit and the schedule time (all invalid fields in one answer), then the widget."""
        if snapshot is not None:
            self.check_origin(snapshot, origin.origin)
            if request.phone and not errors.has("phone"):  # premium-rate, another country: never called
                problem = destination_problem(request.phone, snapshot.site["allowed_countries"] or [])
                if problem:
                    errors.add("phone", problem)
        widget = self.active_widget(snapshot, request.route_key) if request.route_key else None
        schedule = snapshot.schedule(widget) if widget is not None and snapshot is not None else None
        if snapshot is not None and request.unit_id is not None and request.unit_id not in snapshot.units:
            errors.add("unitId", f"No unit with id {request.unit_id} on this site")
        if schedule is not None and request.schedule_time is not None:
            problem = check_schedule_in_future(request.schedule_time, schedule.zone, now)
            if problem:
                errors.add("scheduleTime", problem)
        if errors:
            raise validation_error(errors)
        if widget is None or snapshot is None or schedule is None:
            raise PublicError(
                "request_widget_not_found",
                f"No enabled widget for routeKey {request.route_key!r}, or the callback service is not active",
                {"routeKey": request.route_key},
            )
        return snapshot, widget, schedule

    @staticmethod
    def _due_at(widget: dict[str, Any], schedule: WeeklySchedule, request: RequestInput, now: datetime) -> datetime:
        """When to call: the wanted time, moved into working hours if the widget collects such requests
        (and then out of the visitor's quiet hours: a collected request waits for their morning)."""
        wanted = parse_schedule_time(request.schedule_time, schedule.zone) if request.schedule_time else now
        due_at = schedule.due_at(wanted)
        if due_at is not None and due_at != wanted:
            due_at = allowed_time(due_at, schedule, quiet_hold(request.phone, widget.get("quiet_hours"), schedule.tz))
        if due_at != wanted and not widget["collect_non_working"]:
            raise PublicError(
                "request_non_working_hours",
                "The call center is not working at that time and this widget does not collect "
                "non-working-hours requests",
                {"callCenterWorkingMode": "non_working_hours"},
            )
        if due_at is None:
            raise PublicError(
                "request_non_working_hours",
                "The widget's working schedule has no working hours, so no callback can be planned",
                {"callCenterWorkingMode": "non_working_hours"},
            )
        return due_at

    async def _check_number_cap(self, site: dict[str, Any], phone: str, now: datetime) -> None:
        """The site's maxRequestsPerNumberPerDay across all its widgets: nobody gets a stranger called
        twenty times (DESIGN §7). The day is the site's; 0 switches the cap off."""
        cap = int(site["max_requests_per_number_per_day"])
        if cap <= 0:
            return
        local = now.astimezone(ZoneInfo(site["timezone"]))
        midnight = datetime.combine(local.date() + timedelta(days=1), time(), local.tzinfo)
        if not await self.guard.hit_number_day(site["id"], local.date().isoformat(), phone, cap):
            retry = max(1, int((midnight - local).total_seconds()))
            raise throttled(
                "request_throttle_count",
                f"Too many requests for this number today: at most {cap} per day on this site",
                retry,
                maxRequestsPerNumberPerDay=cap,
            )

    async def _check_throttles(self, widget: dict[str, Any], phone: str, user_key: str) -> None:
        """The widget's per-user cooldown and per-phone count (each hit counts only if it passes)."""
        retry = await self.guard.hit_user_cooldown(widget["id"], user_key, widget["throttle_user_timeout_s"])
        if retry is not None:
            raise throttled(
                "request_throttle_timeout",
                f"Too many requests from this user: wait {retry} s before the next one",
                retry,
            )
        retry = await self.guard.hit_phone_count(
            widget["id"], phone, widget["throttle_max_per_phone"], widget["throttle_period_s"]
        )
        if retry is not None:
            raise throttled(
                "request_throttle_count",
                f"Too many requests for this phone: at most {widget['throttle_max_per_phone']} "
                f"per {widget['throttle_period_s']} s; retry in {retry} s",
                retry,
            )

    async def _session_of_site(self, session_id: int | None, site_id: int) -> int | None:
        """The session id if it is one of this site's sessions; an unknown one is dropped, not an error."""
        if session_id is None:
            return None
        async with self.db.read() as conn:
            owner = (
                await conn.execute(select(tracking_sessions.c.site_id).where(tracking_sessions.c.id == session_id))
            ).scalar()
        return session_id if owner == site_id else None

    # -- tracking sessions ----------------------------------------------------------------------------

    async def create_session(self, site_key: str, payload: dict[str, Any], origin: Origin) -> int:
        snapshot = await self.snapshots.by_key(site_key) if isinstance(site_key, str) else None
        if snapshot is None:
            raise PublicError("request_widget_not_found", "Unknown site key", {"site": site_key})
        self.check_origin(snapshot, origin.origin)

        def text(key: str, limit: int = 2048) -> str:
            value = payload.get(key)
            return value[:limit] if isinstance(value, str) else ""

        utm = {k: text(k, 255) for k in UTM_KEYS}
        values = dict(
            site_id=snapshot.id,
            landing_url=text("url"),
            referrer=text("referrer"),
            user_agent=text("userAgent", 512) or origin.user_agent[:512],
            ip=origin.ip[:45],
            utm={k: v for k, v in utm.items() if v},
            created_at=utcnow(),
        )
        for _ in range(5):
            # Unguessable, so nobody can attach another visitor's session; below 2**53, because Calltouch
            # clients (and its export) read sessionId as a JavaScript number.
            session_id = secrets.randbelow(SESSION_ID_LIMIT - 1) + 1
            try:
                async with self.db.write() as conn:
                    await conn.execute(insert(tracking_sessions).values(id=session_id, **values))
                return session_id
            except IntegrityError:  # one chance in ~10^15 per session already made: draw again
                continue
        raise RuntimeError("could not draw a free tracking session id")
