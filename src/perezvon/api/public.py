"""The public widget API behind window.ctw (DESIGN §2–§3), plain Starlette routes for speed."""

from __future__ import annotations

import gzip
import logging
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..domain.errors import PublicError, throttled
from ..domain.request_rules import validate_request
from ..ops.metrics import public_request
from ..services.intake import Intake
from ..services.onpage import analytics_of, page_widgets, request_status
from ..settings import Settings
from .http import RawJSON, dumps_shared, error_response, json_response, read_json_object, request_origin

log = logging.getLogger("perezvon.api.public")
SDK_DIR = Path(__file__).resolve().parent.parent / "sdk"
PREFIX = "/api/widget/v1"


def cors_headers(request: Request) -> dict[str, str]:
    """Reflect the Origin: whether it is allowed is decided per site, in the handler (a refusal still
    carries these headers so the page's developer can read why)."""
    origin = request.headers.get("origin")
    if not origin:
        return {}
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin", "Access-Control-Expose-Headers": "Retry-After"}


async def preflight(request: Request) -> Response:
    headers = cors_headers(request)
    headers.update(
        {
            "Access-Control-Allow-Methods": "POST, OPTIONS",
            "Access-Control-Allow-Headers": request.headers.get("access-control-request-headers", "Content-Type"),
            "Access-Control-Max-Age": "86400",
        }
    )
    return Response(status_code=204, headers=headers)


def _state(request: Request) -> tuple[Intake, Settings]:
    return request.app.state.intake, request.app.state.settings


async def _guarded(request: Request, endpoint: str, handler) -> Response:  # type: ignore[no-untyped-def]
    """Per-IP limit, JSON body, error shape, CORS headers and metrics, common to every counted endpoint."""
    intake, settings = _state(request)
    headers = cors_headers(request)
    try:
        origin = request_origin(request, settings)
        retry = await intake.guard.hit_ip(origin.ip)
        if retry is not None:
            raise throttled(
                "request_throttle_count",
                f"Too many API requests from {origin.ip}: at most {settings.ip_rate_limit} per second",
                retry,
                limitPerSecond=settings.ip_rate_limit,
            )
        payload = await read_json_object(request)
        origin = request_origin(request, settings, payload.get("sessionId"))
        body = await handler(intake, payload, origin)
        public_request(endpoint, "ok")
        return json_response(body, 200, headers)
    except PublicError as error:
        public_request(endpoint, error.type)
        return error_response(error, headers)
    except Exception:
        log.exception("public API request failed")
        public_request(endpoint, "server_error")
        return error_response(PublicError("server_error", "Internal server error", {}), headers)


async def route_key_data(request: Request) -> Response:
    async def handle(intake: Intake, payload, origin):  # type: ignore[no-untyped-def]
        answer = await intake.route_key_data(payload.get("site"), payload, origin)
        data = answer["widgetData"]
        if data is None:
            return answer
        # widgetData is memoised per site snapshot (Intake.widget_data) and its default schedule is 168
        # cells: encode it once per snapshot, not per request. Same bytes as dumps(answer).
        return RawJSON('{"widgetFound":true,"widgetData":' + dumps_shared(data) + "}")

    return await _guarded(request, "routeKeyData", handle)


async def create_request(request: Request) -> Response:
    async def handle(intake: Intake, payload, origin):  # type: ignore[no-untyped-def]
        site_key = payload.get("site")
        snapshot = await intake.snapshots.by_key(site_key) if isinstance(site_key, str) else None
        request_input, errors = validate_request(payload)
        accepted = await intake.create_request(snapshot, request_input, errors, origin)
        answer = {"callbackRequestId": accepted.request_id, "statusToken": accepted.status_token}
        events = analytics_of(snapshot, request_input.route_key)
        if events is not None:
            answer["analytics"] = events  # ctw.js sends them to the page's dataLayer, Metrica, GA4
        return answer

    return await _guarded(request, "createRequest", handle)


async def create_session(request: Request) -> Response:
    # Session bookkeeping is not counted against the per-IP limit (DESIGN §3).
    intake, settings = _state(request)
    headers = cors_headers(request)
    try:
        origin = request_origin(request, settings)
        retry = await intake.guard.hit_session(origin.ip)
        if retry is not None:
            raise throttled("request_throttle_count", f"Too many tracking sessions from {origin.ip}", retry)
        payload = await read_json_object(request)
        session_id = await intake.create_session(payload.get("site"), payload, origin)
        public_request("session", "ok")
        return json_response({"sessionId": session_id}, 200, headers)
    except PublicError as error:
        public_request("session", error.type)
        return error_response(error, headers)
    except Exception:
        log.exception("tracking session creation failed")
        public_request("session", "server_error")
        return error_response(PublicError("server_error", "Internal server error", {}), headers)


async def _bookkeeping(request: Request, what: str, work) -> Response:  # type: ignore[no-untyped-def]
    """The error shape and CORS headers of the SDK's own uncounted endpoints: ``work()`` gives the body."""
    headers = cors_headers(request)
    try:
        return json_response(await work(*_state(request)), 200, {**headers, "Cache-Control": "no-store"})
    except PublicError as error:
        return error_response(error, headers)
    except Exception:
        log.exception("%s failed", what)
        return error_response(PublicError("server_error", "Internal server error", {}), headers)


async def widget_ui(request: Request) -> Response:
    """POST ui {site}: the widgets ctw.js draws on this page (not counted, no points: SDK bookkeeping)."""

    async def work(intake: Intake, settings: Settings) -> RawJSON:
        site_key = (await read_json_object(request)).get("site")
        snapshot = await intake.snapshots.by_key(site_key) if isinstance(site_key, str) else None
        if snapshot is not None:
            intake.check_origin(snapshot, request_origin(request, settings).origin)
        return RawJSON(dumps_shared(page_widgets(snapshot)))

    return await _bookkeeping(request, "widget ui look-up", work)


async def widget_request_status(request: Request) -> Response:
    """POST request-status {site, callbackRequestId, statusToken}: the visitor's own request, read by its token."""

    async def work(intake: Intake, settings: Settings) -> dict:
        origin = request_origin(request, settings)
        retry = await intake.guard.hit_status(origin.ip)
        if retry is not None:
            raise throttled("request_throttle_count", f"Too many status reads from {origin.ip}", retry)
        payload = await read_json_object(request)
        site_key = payload.get("site")
        snapshot = await intake.snapshots.by_key(site_key) if isinstance(site_key, str) else None
        if snapshot is not None:
            intake.check_origin(snapshot, origin.origin)
        return await request_status(intake.db, snapshot, payload.get("callbackRequestId"), payload.get("statusToken"))

    return await _bookkeeping(request, "request status read", work)


def _sdk_file(name: str, media_type: str):  # type: ignore[no-untyped-def]
    content = (SDK_DIR / name).read_bytes()  # a few KB, read and compressed once per process
    compressed = gzip.compress(content, compresslevel=9, mtime=0)

    async def serve(request: Request) -> Response:
        headers = {
            "Cache-Control": "public, max-age=300",
            "Access-Control-Allow-Origin": "*",
            "Vary": "Accept-Encoding",
        }
        if "gzip" in request.headers.get("accept-encoding", ""):
            # Only the SDK is compressed here: it is what every page loads, and it is done once.
            return Response(compressed, media_type=media_type, headers={**headers, "Content-Encoding": "gzip"})
        return Response(content, media_type=media_type, headers=headers)

    return serve


routes = [
    Route("/ctw.js", _sdk_file("ctw.js", "application/javascript; charset=utf-8"), methods=["GET", "HEAD"]),
    Route("/ctw.d.ts", _sdk_file("ctw.d.ts", "application/typescript; charset=utf-8"), methods=["GET", "HEAD"]),
    # The drop-in widget: loaded by ctw.js only on pages where a widget's ui is on.
    Route(
        "/ctw-widget.js", _sdk_file("ctw-widget.js", "application/javascript; charset=utf-8"), methods=["GET", "HEAD"]
    ),
    Route(f"{PREFIX}/ui", widget_ui, methods=["POST"]),
    Route(f"{PREFIX}/request-status", widget_request_status, methods=["POST"]),
    Route(f"{PREFIX}/session", create_session, methods=["POST"]),
    Route(f"{PREFIX}/route-key-data", route_key_data, methods=["POST"]),
    Route(f"{PREFIX}/requests", create_request, methods=["POST"]),
    Route(PREFIX + "/{rest:path}", preflight, methods=["OPTIONS"]),
]
