"""The call journal: filtered list with live statuses, one request's page, CSV export, recordings."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse
from starlette.routing import Route

from ..clock import utcnow
from ..domain import callback as cb
from ..domain.digits import parse_id
from ..domain.schedule import local_to_utc
from ..services.accounts import Principal
from ..services.catalog import Catalog, Conflict, NotFound
from ..services.journal import STATUSES, Journal, JournalFilter
from ..services.timeline import actions_of
from ..shapes.resources import UTM_KEYS, attempt_resource
from . import csvexport
from .base import page, redirect, render, url

PAGE_SIZE = 50
KEEPALIVE_S = 15.0
# uvicorn waits for open responses before it shuts down, so an endless stream would hold up every
# restart while a journal tab is open. Each stream ends after this long; EventSource reconnects by itself.
STREAM_MAX_S = 60.0
FILTER_KEYS = ("site", "status", "widget", "unit", "tag", "phone", "q", "from", "to")


def _int(value: str | None) -> int | None:
    return parse_id(value)  # ASCII digits, 1..2**63-1: "²" or a 30-digit page is not a number


def _cursor(value: str | None) -> int | None:
    """A keyset cursor: a request id, 64-bit at most (a larger one is past every id anyway)."""
    number = _int(value)
    return None if number is None else min(number, 2**63 - 1)


def _day(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


class Scope:
    """The account's sites, widgets and units (for filter menus and names), and the parsed filter."""

    def __init__(self, sites: list[dict], widgets: list[dict], units: list[dict], params: dict[str, str]) -> None:
        self.sites = {s["id"]: s for s in sites}
        self.widgets = {w["id"]: w for w in widgets}
        self.units = {u["id"]: u for u in units}
        self.params = params
        site_id = _int(params.get("site"))
        chosen = self.sites.get(site_id) if site_id else None
        first = chosen or (sites[0] if sites else None)
        # Dates are calendar days where the call center is: the chosen site's zone (or the first site's).
        self.zone = first["timezone"] if first else "UTC"
        tz = ZoneInfo(self.zone)
        day_from, day_to = _day(params.get("from")), _day(params.get("to"))
        self.filter = JournalFilter(
            site_id=site_id,
            status=params.get("status") if params.get("status") in STATUSES else None,
            widget_id=_int(params.get("widget")),
            unit_id=_int(params.get("unit")),
            tag=params.get("tag") or None,
            phone=params.get("phone") or None,
            search=params.get("q") or None,
            created_from=datetime(day_from.year, day_from.month, day_from.day, tzinfo=tz) if day_from else None,
            created_to=(datetime(day_to.year, day_to.month, day_to.day, tzinfo=tz) + timedelta(days=1))
            if day_to
            else None,
        )

    def site_zone(self, site_id: int) -> str:
        site = self.sites.get(site_id)
        return site["timezone"] if site else "UTC"

    def unit_name(self, unit_id: int | None) -> str:
        unit = self.units.get(unit_id) if unit_id else None
        return unit["name"] if unit else ""


async def load_scope(request: Request) -> Scope:
    cat: Catalog = request.app.state.catalog
    who: Principal = request.state.user.principal
    sites = await cat.list_sites(who)
    widgets, units = [], []
    for site in sites:
        widgets += await cat.list_widgets(who, site["id"])
        units += await cat.list_units(who, site["id"])
    params = {k: request.query_params.get(k, "").strip() for k in FILTER_KEYS}
    return Scope(sites, widgets, units, params)


def _row_view(scope: Scope, row: dict[str, Any], attempts: list[dict[str, Any]]) -> dict[str, Any]:
    site = scope.sites.get(row["site_id"])
    return {
        "id": row["id"],
        "created": row["created_at"],
        "zone": scope.site_zone(row["site_id"]),
        "site": site["name"] if site else "",
        "routeKey": row["route_key"],
        "phone": row["phone"],
        "fields": list(row["fields"]),
        "tags": list(row["tags"]),
        "unit": scope.unit_name(row["unit_id"]),
        "status": row["status"],
        "attempts": len(attempts),
        "lastOutcome": attempts[-1]["outcome"] if attempts else None,
        # A request waiting for a redial is due at its next attempt, not at its first call's time.
        "due": row["next_attempt_at"] or row["due_at"],
    }


async def _journal_context(request: Request) -> dict[str, Any]:
    scope = await load_scope(request)
    before, after = (_cursor(request.query_params.get(name)) for name in ("before", "after"))
    page_no = min(max(1, _int(request.query_params.get("page")) or 1), 10**9)  # an offset SQL can hold
    offset = (page_no - 1) * PAGE_SIZE if before is None and after is None else 0
    journal: Journal = request.app.state.journal
    found = await journal.page(
        request.state.user.principal, scope.filter, limit=PAGE_SIZE, offset=offset, before=before, after=after
    )
    filters = {k: v for k, v in scope.params.items() if v}
    here = {"before": before} if before is not None else {"after": after} if after is not None else {"page": page_no}
    return {
        "nav": "journal",
        "scope": scope,
        "filters": filters,
        "rows": [_row_view(scope, r, found.attempts.get(r["id"], [])) for r in found.rows],
        "total": found.total,
        "total_exact": found.total_exact,
        "prev_url": url("/journal", **filters, after=found.newer) if found.newer is not None else None,
        "next_url": url("/journal", **filters, before=found.older) if found.older is not None else None,
        "csv_url": url("/journal.csv", **filters),
        "rows_url": url("/journal/rows", **filters, **here),
        "events_url": url("/journal/events") if _bus_sees_calls(request) else "",
        "statuses": STATUSES,
    }


def _bus_sees_calls(request: Request) -> bool:
    """Push only where this process runs the engine: an API-only process's bus never hears the separate
    workers' status changes, so its pages poll instead of waiting on events that will not come."""
    state = request.app.state
    return getattr(state, "events", None) is not None and getattr(state, "worker", None) is not None


@page
async def journal_page(request: Request) -> Response:
    return render(request, "journal.html", await _journal_context(request))


@page
async def journal_rows(request: Request) -> Response:
    """The table body alone, for the page to refresh itself when statuses change (live or polled)."""
    return render(request, "_journal_rows.html", await _journal_context(request))


@page
async def journal_events(request: Request) -> Response:
    """Server-sent events: one message per status change of one of this account's requests."""
    bus = getattr(request.app.state, "events", None)
    if bus is None:
        return Response(status_code=204)  # EventSource stops on 204; the page falls back to polling
    who: Principal = request.state.user.principal
    owned = {s["id"] for s in await request.app.state.catalog.list_sites(who)}
    journal: Journal = request.app.state.journal

    async def visible(event: dict[str, Any]) -> bool:
        if event.get("siteId") is not None:
            return event["siteId"] in owned
        request_id = event.get("requestId")
        if not isinstance(request_id, int):
            return False
        try:
            await journal.get(who, request_id)  # an event without its site: ask the tenancy-checked journal
            return True
        except NotFound:
            return False

    async def stream() -> AsyncIterator[str]:
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(maxsize=1000)

        async def pump() -> None:
            # A separate task owns the subscription, so a keep-alive timeout never cancels the bus's iterator.
            subscription = bus.subscribe()
            try:
                async for event in subscription:
                    with contextlib.suppress(asyncio.QueueFull):
                        queue.put_nowait(dict(event))
            finally:
                close = getattr(subscription, "close", None)
                if close is not None:
                    close()  # unregister from the bus, or it keeps queueing for a reader that left
                with contextlib.suppress(asyncio.QueueFull):
                    queue.put_nowait(None)

        task = asyncio.create_task(pump())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STREAM_MAX_S
        try:
            yield "retry: 3000\n\n"
            while (left := deadline - loop.time()) > 0:
                try:
                    event = await asyncio.wait_for(queue.get(), min(KEEPALIVE_S, left))
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                if event is None:
                    return
                if await visible(event):
                    data = {"requestId": event.get("requestId"), "status": event.get("status")}
                    yield f"data: {json.dumps(data)}\n\n"
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task  # let it unsubscribe before the response is over

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@page
async def journal_csv(request: Request) -> Response:
    """Every matching request as CSV, streamed: rows go out as they are read, in batches by id."""
    scope = await load_scope(request)
    journal: Journal = request.app.state.journal
    who: Principal = request.state.user.principal

    async def lines() -> AsyncIterator[str]:
        writer = csvexport.Writer()
        yield writer.header()
        async for batch, attempts in journal.export(who, scope.filter):
            for row in batch:
                site = scope.sites.get(row["site_id"])
                writer.row(
                    csvexport.request_row(
                        row, attempts.get(row["id"], []), site["name"] if site else "", scope.unit_name(row["unit_id"])
                    )
                )
            yield writer.flush()

    stamp = datetime.now(ZoneInfo(scope.zone)).strftime("%Y%m%d-%H%M")
    return StreamingResponse(
        lines(),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="perezvon-journal-{stamp}.csv"',
            "Cache-Control": "no-store",  # no cap: every matching row is sent
        },
    )


@page
async def request_page(request: Request) -> Response:
    who: Principal = request.state.user.principal
    journal: Journal = request.app.state.journal
    cat: Catalog = request.app.state.catalog
    row, attempts = await journal.get(who, request.path_params["request_id"])
    site = await cat.get_site(who, row["site_id"])
    unit = widget = None
    if row["unit_id"] is not None:
        with contextlib.suppress(NotFound):
            unit = await cat.get_unit(who, row["unit_id"])
    if row["widget_id"] is not None:
        with contextlib.suppress(NotFound):
            widget = await cat.get_widget(who, row["widget_id"])
    session = await journal.session(row["session_id"])
    if session is not None and session["site_id"] != row["site_id"]:
        session = None  # never show another site's visitor data, whatever the ids say
    timeline = []
    for attempt in attempts:
        resource = attempt_resource(attempt)
        resource["row"] = attempt
        if resource["recordingUrl"]:
            resource["recordingUrl"] = url(f"/attempts/{attempt['id']}/recording")
        timeline.append(resource)
    utm = [(key, (row["utm"] or {}).get(key)) for key in UTM_KEYS if (row["utm"] or {}).get(key)]
    actions = await actions_of(request.app.state.db, row["id"])
    return render(
        request,
        "request.html",
        {
            "nav": "journal",
            "r": row,
            "site": site,
            "unit": unit,
            "widget": widget,
            "session": session,
            "attempts": timeline,
            "history": _history(row, actions, timeline),
            "can_cancel": row["status"] in cb.sources_of(cb.CANCELLED),
            "can_reschedule": row["status"] in cb.RESCHEDULABLE,
            "suggested_at": _suggested_time(site["timezone"]),
            "utm": utm,
            "zone": site["timezone"],
        },
    )


def _history(row: dict[str, Any], actions: list[dict[str, Any]], attempts: list[dict[str, Any]]) -> list[dict]:
    """The request's timeline, oldest first: received, then admin actions and call attempts by time."""
    entries = [{"kind": "created", "at": row["created_at"]}]
    entries += [{"kind": "action", "at": a["created_at"], **a} for a in actions]
    entries += [{"kind": "attempt", "at": a["row"]["started_at"], "attempt": a} for a in attempts]
    return sorted(entries, key=lambda e: e["at"])


def _suggested_time(zone: str) -> str:
    """The reschedule picker's starting value: the next whole hour, in the site's zone."""
    local = datetime.now(ZoneInfo(zone)).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    return local.strftime("%Y-%m-%dT%H:%M")


@page
async def request_cancel(request: Request) -> Response:
    who: Principal = request.state.user.principal
    request_id = request.path_params["request_id"]
    await request.app.state.journal.get(who, request_id)  # tenancy: another account's request is not found
    try:
        await request.app.state.requests.cancel(request_id, actor=request.state.user.email)
    except Conflict:
        return redirect(f"/requests/{request_id}", done="request_busy")
    return redirect(f"/requests/{request_id}", done="cancelled")


@page
async def request_reschedule(request: Request) -> Response:
    """Call now (no ``at``), or at the picked time in the site's zone; a finished request is called again."""
    who: Principal = request.state.user.principal
    request_id = request.path_params["request_id"]
    row, _ = await request.app.state.journal.get(who, request_id)
    site = await request.app.state.catalog.get_site(who, row["site_id"])
    picked = str((await request.form()).get("at") or "").strip()
    at = None
    if picked:
        try:
            if not picked.isascii():
                raise ValueError(picked)
            at = local_to_utc(datetime.fromisoformat(picked).replace(tzinfo=None), site["timezone"])
        except ValueError:
            return redirect(f"/requests/{request_id}", done="bad_time")
        if at <= utcnow():
            return redirect(f"/requests/{request_id}", done="bad_time")
    try:
        await request.app.state.requests.reschedule(request_id, at, actor=request.state.user.email)
    except Conflict:
        return redirect(f"/requests/{request_id}", done="request_busy")
    return redirect(f"/requests/{request_id}", done="rescheduled" if at else "calling_now")


async def recording_response(request: Request, who: Principal, attempt_id: int) -> Response:
    """An attempt's recording, to whoever may read its request (others get 404, like any foreign object)."""
    path = Path(await request.app.state.journal.recording_path(who, attempt_id))
    base = request.app.state.settings.recordings_dir
    if not path.is_absolute() and base:
        path = Path(base) / path
    if not path.is_file():
        raise NotFound(f"recording of attempt {attempt_id}")
    media = "audio/wav" if path.suffix.lower() == ".wav" else "audio/mpeg" if path.suffix.lower() == ".mp3" else None
    return FileResponse(path, media_type=media or "application/octet-stream", headers={"Cache-Control": "private"})


@page
async def recording(request: Request) -> Response:
    return await recording_response(request, request.state.user.principal, request.path_params["attempt_id"])


routes = [
    Route("/journal", journal_page, methods=["GET"]),
    Route("/journal/rows", journal_rows, methods=["GET"]),
    Route("/journal/events", journal_events, methods=["GET"]),
    Route("/journal.csv", journal_csv, methods=["GET"]),
    Route("/requests/{request_id:int}", request_page, methods=["GET"]),
    Route("/requests/{request_id:int}/cancel", request_cancel, methods=["POST"]),
    Route("/requests/{request_id:int}/reschedule", request_reschedule, methods=["POST"]),
    Route("/attempts/{attempt_id:int}/recording", recording, methods=["GET"]),
]
