"""The admin cabinet (issue #5): server-rendered pages under /cabinet, mounted into the main app.

``mount_cabinet(app)`` adds a Starlette sub-application, so the cabinet has its own HTML error pages and
security headers, and the JSON APIs keep theirs.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..services.accounts import authenticate_token
from ..services.catalog import NotFound
from ..services.sessions import load_session
from . import pages_account, pages_dashboard, pages_journal, pages_ledger, pages_reports, pages_settings
from .base import PREFIX, error_page, pick_language
from .security import SESSION_COOKIE, SecurityHeaders

STATIC = Path(__file__).resolve().parent / "static"
RECORDING_PATH = "/api/admin/v1/attempts/{attempt_id:int}/recording"


async def _not_found(request: Request, exc: Exception) -> Response:
    request.state.lang = pick_language(request)
    request.state.user = None
    return error_page(request, 404, "error_not_found")


def build_cabinet(parent: FastAPI) -> Starlette:
    cabinet = Starlette(
        routes=[
            *pages_account.routes,
            *pages_settings.routes,
            *pages_ledger.routes,
            *pages_journal.routes,
            *pages_dashboard.routes,
            *pages_reports.routes,
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ],
        middleware=[Middleware(SecurityHeaders)],
        exception_handlers={404: _not_found, 405: _not_found},
    )
    # The pages read the services (db, catalog, journal, events…) from the one shared state object.
    cabinet.state = parent.state
    return cabinet


async def _root(request: Request) -> Response:
    return RedirectResponse(PREFIX + "/", status_code=303)


async def _recording(request: Request) -> Response:
    """The admin API's ``recordingUrl``: readable with a Bearer token or a cabinet session."""
    state = request.app.state
    header = request.headers.get("authorization", "")
    who = None
    if header.lower().startswith("bearer "):
        who = await authenticate_token(state.db, header[7:].strip(), state.settings.admin_token)
    else:
        user = await load_session(state.db, request.cookies.get(SESSION_COOKIE))
        who = user.principal if user else None
    if who is None:
        return Response(
            '{"type":"unauthorized","message":"Login or a Bearer token is required","details":{}}',
            status_code=401,
            media_type="application/json",
        )
    try:
        return await pages_journal.recording_response(request, who, request.path_params["attempt_id"])
    except NotFound:
        return Response(
            '{"type":"not_found","message":"No such recording (or not yours)","details":{}}',
            status_code=404,
            media_type="application/json",
        )


def mount_cabinet(app: FastAPI) -> None:
    taken = {getattr(r, "path", None) for r in app.router.routes}
    if "/" not in taken:
        app.router.routes.append(Route("/", _root, methods=["GET", "HEAD"], include_in_schema=False))
    # Serve recordings at the admin API's advertised path unless the API already does.
    if "/api/admin/v1/attempts/{attempt_id}/recording" not in taken and RECORDING_PATH not in taken:
        app.router.routes.append(Route(RECORDING_PATH, _recording, methods=["GET"], include_in_schema=False))
    app.router.routes.append(Mount(PREFIX, app=build_cabinet(app), name="cabinet"))


__all__ = ["mount_cabinet", "build_cabinet"]
