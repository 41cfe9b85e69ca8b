"""ASGI app assembly: the public widget API, its server-side twin, the admin API, the cabinet and the worker."""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from . import __version__
from .api import admin, admin_reports, admin_webhooks, calltouch_export, openapi, public, twin
from .api.http import InputGuard, error_response
from .calls.runtime import attach_api_hooks, start_in_process
from .domain.errors import PublicError
from .ops import http as ops_http
from .ops import metrics
from .services.attribution import Attribution
from .services.catalog import Catalog, Conflict, Forbidden, NotFound
from .services.intake import Intake
from .services.journal import Journal
from .services.ledger import Ledger
from .services.refusals import Refusals
from .services.request_export import RequestExport
from .services.requests import RequestLife, Wakeups
from .settings import Settings, get_settings
from .store.db import Database
from .store.snapshots import SnapshotCache
from .throttling import Guard
from .web import mount_cabinet

log = logging.getLogger("perezvon")

DESCRIPTION = """
perezvon's HTTP API. The public widget API (`/ctw.js`, `/api/widget/v1/*`) is what `window.ctw` calls;
the admin API (`/api/admin/v1/*`, `Authorization: Bearer <token>`) provisions sites, widgets, units,
blacklists and reads the call journal. Every error answers `{type, message, details}`.
"""


def _field_name(loc: tuple[Any, ...]) -> str:
    parts = [p for p in loc if p not in ("body", "query", "path", "header")]
    name = ""
    for part in parts:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or "body"


async def _validation_handler(request: Request, exc: RequestValidationError) -> Response:
    fields: dict[str, list[dict[str, str]]] = {}
    for error in exc.errors():
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        fields.setdefault(_field_name(tuple(error.get("loc", ()))), []).append({"message": message})
    details = {"fields": [{"name": n, "errors": e} for n, e in fields.items()]}
    return error_response(PublicError("validation_error", "Invalid request: " + ", ".join(fields), details))


async def _public_error_handler(request: Request, exc: PublicError) -> Response:
    return error_response(exc)


async def _not_found_handler(request: Request, exc: NotFound) -> Response:
    return error_response(PublicError("not_found", f"No such {exc} (or not yours)", {}))


async def _forbidden_handler(request: Request, exc: Forbidden) -> Response:
    return error_response(PublicError("forbidden", str(exc), {}))


async def _conflict_handler(request: Request, exc: Conflict) -> Response:
    return error_response(PublicError("conflict", str(exc), {}))


async def _http_handler(request: Request, exc: StarletteHTTPException) -> Response:
    kind = {401: "unauthorized", 403: "forbidden", 404: "not_found", 409: "conflict"}.get(exc.status_code)
    if kind is None:
        kind = "validation_error" if 400 <= exc.status_code < 500 else "server_error"
    error = PublicError(kind, str(exc.detail), {})
    response = error_response(error)
    response.status_code = exc.status_code
    return response


async def _server_error_handler(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(PublicError("server_error", "Internal server error", {}))


class PerezvonApp(FastAPI):
    """FastAPI for the admin API, the cabinet and the OpenAPI document; the public widget API (the hot path
    every site's visitors hit) goes straight to a plain Starlette router, past FastAPI's middleware stack.

    The public handlers need none of it: they catch every error themselves and answer in the public
    {type, message, details} shape with CORS headers. They read the same ``state``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fast_lane = Starlette(routes=[*public.routes, *twin.routes, *ops_http.routes])
        self.fast_lane.state = self.state
        self.fast_paths = frozenset(route.path for route in self.fast_lane.routes)  # type: ignore[attr-defined]

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        # Every HTTP answer carries its X-Request-Id, and every log line written meanwhile names it.
        await ops_http.with_request_id(self._route, scope, receive, send)

    async def _route(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["path"] in self.fast_paths or scope["path"].startswith(public.PREFIX):
            await self.fast_lane(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def _docs_routes(app: FastAPI) -> list[Any]:
    """The API docs page (Swagger UI) with its script and stylesheet from the fastapi-offline package."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi_offline.core import _STATIC_PATH
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    async def docs(request: Request) -> Response:
        return get_swagger_ui_html(
            openapi_url=str(app.openapi_url),
            title=f"{app.title} API",
            swagger_js_url="/api/docs/static/swagger-ui-bundle.js",
            swagger_css_url="/api/docs/static/swagger-ui.css",
            swagger_favicon_url="/api/docs/static/favicon.png",
        )

    return [
        Route("/api/docs", docs, methods=["GET"], include_in_schema=False),
        Mount("/api/docs/static", StaticFiles(directory=_STATIC_PATH), name="api-docs-static"),
    ]


class Services:
    """Everything a process shares: built once per app, closed on shutdown."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db = Database(settings.database_url)
        self.snapshots = SnapshotCache(self.db)
        self.guard = Guard(
            ip_rate_limit=settings.ip_rate_limit,
            redis_url=settings.redis_url,
            namespace=settings.redis_namespace,
            db=self.db,
        )
        # The one owner of a request's life; whatever runs in this process (worker, sender, live pages)
        # plugs its wake-ups into the notifier.
        self.requests = RequestLife(self.db, self.snapshots, Wakeups())
        self.refusals = Refusals(self.db)
        self.intake = Intake(self.snapshots, self.guard, self.requests, refusals=self.refusals)
        self.catalog = Catalog(self.db, self.snapshots)
        self.journal = Journal(self.db)
        self.ledger = Ledger(self.db, self.snapshots)
        self.request_export = RequestExport(self.db)
        self.attribution = Attribution(self.db)

    def attach(self, app: FastAPI) -> None:
        names = ("settings", "db", "snapshots", "guard", "requests", "intake", "catalog", "journal", "ledger")
        for name in names:
            setattr(app.state, name, getattr(self, name))
        app.state.request_export, app.state.attribution = self.request_export, self.attribution
        app.state.refusals = self.refusals

    async def close(self) -> None:
        await self.guard.close()  # writes back the day's API points spent (the embedded default keeps them)
        await self.db.dispose()


def create_app(settings: Settings | None = None, *, with_worker: bool | None = None) -> FastAPI:
    settings = settings or get_settings()
    services = Services(settings)
    run_worker = settings.run_worker if with_worker is None else with_worker

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if run_worker:
            worker = await start_in_process(app.state)
        else:
            worker = attach_api_hooks(app.state)  # request.created webhooks, sent by the workers
        # Everything built so far (app, routes, settings, imported modules) lives as long as the process:
        # keep it out of the collector's sight, so full collections stay short on the request path.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            if worker is not None:
                await worker.stop()
            await services.close()
            metrics.process_exited(os.getpid())

    app = PerezvonApp(
        title="perezvon",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served by _docs_routes from a package's files: the page loads nothing from a CDN
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    services.attach(app)
    app.add_exception_handler(RequestValidationError, _validation_handler)  # type: ignore[arg-type]
    app.add_exception_handler(PublicError, _public_error_handler)  # type: ignore[arg-type]
    app.add_exception_handler(NotFound, _not_found_handler)  # type: ignore[arg-type]
    app.add_exception_handler(Conflict, _conflict_handler)  # type: ignore[arg-type]
    app.add_exception_handler(Forbidden, _forbidden_handler)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_handler)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _server_error_handler)
    app.add_middleware(InputGuard)  # body cap and unstorable text, before any FastAPI route or the cabinet
    # Listed in FastAPI's router too, so the OpenAPI document and anything that walks routes sees them;
    # requests for them are served by PerezvonApp.fast_lane.
    app.router.routes.extend(public.routes)
    app.router.routes.extend(twin.routes)
    app.include_router(admin.router)
    app.include_router(admin_webhooks.router)
    app.include_router(admin_reports.router)
    app.include_router(calltouch_export.router)
    app.router.routes.extend(_docs_routes(app))
    openapi.install(app)
    if settings.demo:
        from .demo.routes import routes as demo_routes

        app.router.routes.extend(demo_routes)
    mount_cabinet(app)
    return app
