"""Accepting callback requests and answering widget look-ups: shared by the JS API and the server-side twin."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select
from sqlalchemy import text as sql_text

from ..clock import utcnow
from ..domain.errors import FieldErrors, PublicError, throttled, validation_error
from ..domain.request_rules import RequestInput, check_route_key, check_schedule_in_future, parse_schedule_time
from ..domain.schedule import WeeklySchedule
from ..store.db import Database
from ..store.snapshots import SiteSnapshot, SnapshotCache
from ..store.tables import callback_requests, tracking_sessions
from ..throttling import Guard
from .onpage import new_status_token

DEFAULT_POINT_COSTS = {"getRouteKeyData": 1, "createRequest": 1, "serverCreate": 1}
# One statement, values passed as parameters: SQLAlchemy compiles it once, where .values(**row) built and
# cache-keyed a new statement per request (the same INSERT reaches the database either way).
INSERT_REQUEST = insert(callback_requests)
# After a batch insert on SQLite: the last new id, and the count, smallest and largest id of the rows from
# the first new id on; for a batch of n that holds ids first..last they are (last, n, first, last).
BATCH_IDS_CHECK = sql_text(
    "SELECT last_insert_rowid(), count(*), min(id), max(id) FROM callback_requests WHERE id > last_insert_rowid() - :n"
)


def widget_schedule(widget: dict[str, Any]) -> WeeklySchedule:
    return WeeklySchedule.build(widget["schedule_timezone"], (tuple(cell) for cell in widget["schedule_hours"]))


def snapshot_schedule(snapshot: SiteSnapshot, widget: dict[str, Any]) -> WeeklySchedule:
    """The widget's schedule, parsed once per snapshot rather than once per request (it only changes
    with the widget, and any widget change replaces the snapshot)."""
    key = ("schedule", widget["id"])
    schedule = snapshot.memo.get(key)
    if schedule is None:
        schedule = snapshot.memo[key] = widget_schedule(widget)
    return schedule


def site_day(site: dict[str, Any], now: datetime) -> str:
    """The site's calendar day: the points budget resets at midnight in the site's time zone."""
    return now.astimezone(ZoneInfo(site["timezone"])).date().isoformat()


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


class GroupCommit:
    """Group commit of accepted requests on SQLite: one transaction, hence one fsync, for many requests.

    SQLite has a single writer and ``Database.write()`` already serialises this process's writers, so
    under load requests queue for the write lock and each pays a whole transaction (lock, BEGIN
    IMMEDIATE, INSERT, COMMIT with fsync) one after another. Here every request that arrives while a
    transaction is in flight joins the next one. Durability is unchanged: a caller gets its id only after
    the transaction holding its row has committed (synchronous=FULL). If a batch fails, its rows are
    retried one per transaction, so a bad row fails only its own request, exactly as without batching.
    """

    def __init__(self, db: Database, max_batch: int = 256) -> None:
        self.db = db
        self.max_batch = max_batch
        self._queue: list[tuple[dict[str, Any], asyncio.Future[int]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def insert(self, values: dict[str, Any]) -> int:
        loop = asyncio.get_running_loop()
        if self._flusher is not None and self._flusher.get_loop() is not loop:
            # Left over from an event loop that is gone (tests run one per test): it will never run again.
            self._flusher = None
            self._queue = [(v, f) for v, f in self._queue if f.get_loop() is loop]
        future: asyncio.Future[int] = loop.create_future()
        self._queue.append((values, future))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        batch: list[tuple[dict[str, Any], asyncio.Future[int]]] = []
        try:
            while self._queue:
                batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
                # A caller that went away before its transaction began gets no row, as it would not have
                # reached its INSERT without batching either.
                batch = [(values, future) for values, future in batch if not future.done()]
                if not batch:
                    continue
                try:
                    ids = await self._commit([values for values, _ in batch])
                except Exception:
                    for values, future in batch:
                        try:
                            (request_id,) = await self._commit([values])
                        except Exception as exc:
                            if not future.done():
                                future.set_exception(exc)
                        else:
                            if not future.done():
                                future.set_result(request_id)
                else:
                    for (_, future), request_id in zip(batch, ids, strict=True):
                        if not future.done():
                            future.set_result(request_id)
                batch = []
        finally:
            self._flusher = None
            # Only on cancellation (shutdown) can callers be left waiting: fail them rather than hang them.
            for _, future in batch + self._queue:
                if not future.done():
                    future.set_exception(RuntimeError("the request was not stored: the server is stopping"))
            self._queue = []

    async def _commit(self, rows: list[dict[str, Any]]) -> list[int]:
        async with self.db.write() as conn:
            if len(rows) == 1:
                result = await conn.execute(INSERT_REQUEST, rows[0])
                return [int(result.inserted_primary_key[0])]
            # One executemany instead of a statement per row: with aiosqlite every statement is several
            # round trips to its thread, which under load cost more than the fsync itself. SQLite's
            # RETURNING order is unspecified, so the ids come from the rowid rule instead: we hold the only
            # write lock (BEGIN IMMEDIATE) and id is the rowid, so each row gets the largest id + 1, in
            # parameter order, the last being last_insert_rowid(). Checked, not assumed: if the table's
            # ids at and above the first one are not exactly our rows, the batch is rolled back and
            # retried one row per transaction.
            await conn.execute(INSERT_REQUEST, rows)
            # One query for the last id and its check (each query is a handful of thread round trips).
            last, count, low, high = (await conn.execute(BATCH_IDS_CHECK, {"n": len(rows)})).one()
            first = last - len(rows) + 1
            if (count, low, high) != (len(rows), first, last):
                raise RuntimeError("batch ids are not consecutive; storing these requests one by one")
            return list(range(first, last + 1))


@dataclass
class Intake:
    db: Database
    snapshots: SnapshotCache
    guard: Guard
    # Called with the new request's id, due time and site after its commit: wakes the in-process worker.
    on_created: list[Callable[[int, datetime, int], None]] = field(default_factory=list)
    # SQLite only: PostgreSQL takes concurrent writers itself, so there each request keeps its own transaction.
    commits: GroupCommit | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.db.is_sqlite:
            self.commits = GroupCommit(self.db)

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

    async def check_points(self, snapshot: SiteSnapshot, method: str, now: datetime) -> int:
        cost = int((snapshot.site["api_point_costs"] or {}).get(method, DEFAULT_POINT_COSTS.get(method, 1)))
        budget = snapshot.site["api_points_per_day"]
        if cost > 0 and budget >= 0:
            spent = await self.guard.points_spent(snapshot.id, site_day(snapshot.site, now))
            if spent + cost > budget:
                raise PublicError(
                    "api_points_exhausted",
                    "The site's daily API points budget is spent; it resets at midnight in the site's time zone",
                    {"pointsPerDay": budget, "pointsSpent": spent},
                )
        return cost

    async def spend(self, snapshot: SiteSnapshot, cost: int, now: datetime) -> None:
        await self.guard.spend_points(snapshot.id, site_day(snapshot.site, now), cost)

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
        cost = await self.check_points(snapshot, "getRouteKeyData", now)
        widget = self.active_widget(snapshot, route_key)  # type: ignore[arg-type]
        if widget is None:
            answer: dict[str, Any] = {"widgetFound": False, "widgetData": None}
        else:
            answer = {"widgetFound": True, "widgetData": self.widget_data(snapshot, widget, now)}
        await self.spend(snapshot, cost, now)
        return answer

    @staticmethod
    def widget_data(snapshot: SiteSnapshot, widget: dict[str, Any], now: datetime) -> dict[str, Any]:
        """getRouteKeyData's ``widgetData``. Only the working mode depends on the moment, so the answer for
        each of the two modes is built once per snapshot (the 168-cell default schedule made building it
        the largest cost of the call). The dict is shared: callers serialise it and must not change it."""
        schedule = snapshot_schedule(snapshot, widget)
        mode = schedule.mode(now)
        key = ("widgetData", widget["id"], mode)
        data = snapshot.memo.get(key)
        if data is None:
            collect = bool(widget["collect_non_working"])
            data = snapshot.memo[key] = {
                "widgetId": widget["id"],
                "callCenterWorkingMode": mode,
                "collectNonWorkingRequests": collect,
                "collectRequests": collect,
                "workingSchedule": {"utcTimezone": schedule.utc_timezone, "hours": schedule.sorted_hours()},
            }
        return data

    # -- createRequest --------------------------------------------------------------------------------

    async def create_request(
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
        if snapshot is not None:
            self.check_origin(snapshot, origin.origin)
        widget = self.active_widget(snapshot, request.route_key) if request.route_key else None
        schedule = snapshot_schedule(snapshot, widget) if widget is not None and snapshot is not None else None
        if snapshot is not None and request.unit_id is not None and request.unit_id not in snapshot.units:
            errors.add("unitId", f"No unit with id {request.unit_id} on this site")
        if schedule is not None and request.schedule_time is not None:
            problem = check_schedule_in_future(request.schedule_time, schedule.utc_timezone, now)
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
        cost = await self.check_points(snapshot, method, now)
        if request.phone in snapshot.blacklist:
            raise PublicError("request_phone_blacklisted", "This phone number is blacklisted", {})

        wanted = parse_schedule_time(request.schedule_time, schedule.utc_timezone) if request.schedule_time else now
        due_at = schedule.due_at(wanted)
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

        session_id = await self._session_of_site(origin.session_id, snapshot.id)
        user_key = f"s{session_id}" if session_id is not None else f"ip{origin.ip}"
        retry = await self.guard.hit_user_cooldown(widget["id"], user_key, widget["throttle_user_timeout_s"])
        if retry is not None:
            raise throttled(
                "request_throttle_timeout",
                f"Too many requests from this user: wait {retry} s before the next one",
                retry,
            )
        retry = await self.guard.hit_phone_count(
            widget["id"], request.phone, widget["throttle_max_per_phone"], widget["throttle_period_s"]
        )
        if retry is not None:
            raise throttled(
                "request_throttle_count",
                f"Too many requests for this phone: at most {widget['throttle_max_per_phone']} "
                f"per {widget['throttle_period_s']} s; retry in {retry} s",
                retry,
            )

        extra = extra or {}
        row = dict(
            site_id=snapshot.id,
            widget_id=widget["id"],
            route_key=request.route_key,
            phone=request.phone,
            fields=request.fields,
            custom_fields=request.custom_fields,
            tags=request.tags,
            unit_id=request.unit_id,
            schedule_time=request.schedule_time,
            due_at=due_at,
            next_attempt_at=due_at,
            session_id=session_id,
            source=source,
            call_url=extra.get("callUrl"),
            utm=extra.get("utm") or {},
            status="pending",
            status_token=new_status_token(),
            attempts_made=0,
            created_at=now,
            updated_at=now,
        )
        if self.commits is not None:
            request_id = await self.commits.insert(row)  # returns once the row is committed and fsynced
        else:
            async with self.db.write() as conn:
                result = await conn.execute(INSERT_REQUEST, row)
                request_id = int(result.inserted_primary_key[0])
        await self.spend(snapshot, cost, now)
        for hook in self.on_created:
            hook(request_id, due_at, snapshot.id)
        return Accepted(request_id, due_at, row["status_token"])

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

        utm = {k: text(k, 255) for k in ("utmSource", "utmMedium", "utmCampaign", "utmContent", "utmTerm")}
        async with self.db.write() as conn:
            result = await conn.execute(
                insert(tracking_sessions).values(
                    site_id=snapshot.id,
                    landing_url=text("url"),
                    referrer=text("referrer"),
                    user_agent=text("userAgent", 512) or origin.user_agent[:512],
                    ip=origin.ip[:45],
                    utm={k: v for k, v in utm.items() if v},
                    created_at=datetime.now(UTC),
                )
            )
            return int(result.inserted_primary_key[0])
