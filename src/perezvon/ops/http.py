"""``/healthz``, ``/readyz``, ``/metrics`` (DESIGN §7) and the ``X-Request-Id`` of every HTTP request.

Plain Starlette routes that read ``app.state`` (db, guard, settings): served by ``perezvon serve`` and,
on ``PEREZVON_METRICS_PORT``, by ``perezvon worker``. None needs a token (``/metrics`` does when
``PEREZVON_METRICS_TOKEN`` is set) and none counts toward any limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..services.health import check_database, check_redis, count_due
from . import metrics
from .logs import http_request_id

log = logging.getLogger(__name__)


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    state = request.app.state
    checks = {"database": await check_database(state.db)}
    if state.settings.redis_url:
        checks["redis"] = await check_redis(state.guard)
    ready = all(value == "ok" for value in checks.values())
    if not ready:
        log.warning("not ready: %s", checks)
    return JSONResponse({"status": "ok" if ready else "unavailable", "checks": checks}, 200 if ready else 503)


def _authorised(request: Request, token: str) -> bool:
    given = request.headers.get("authorization", "")
    return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())


async def metrics_endpoint(request: Request) -> Response:
    state = request.app.state
    token = state.settings.metrics_token
    if token and not _authorised(request, token):
        return JSONResponse(
            {"type": "unauthorized", "message": "Bearer token required", "details": {}},
            401,
            headers={"WWW-Authenticate": "Bearer"},
        )
    try:
        metrics.requests_due.set(await count_due(state.db))
    except Exception as exc:  # the rest still scrapes while the database is away
        log.warning("could not count due requests for metrics: %s", exc)
    body, content_type = metrics.exposition()
    return Response(body, media_type=content_type)


routes = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/metrics", metrics_endpoint, methods=["GET"]),
]


def metrics_app(settings: Any, db: Any, guard: Any) -> Starlette:
    """The three endpoints alone, for ``perezvon worker``'s metrics port."""
    app = Starlette(routes=routes)
    app.state.settings, app.state.db, app.state.guard = settings, db, guard
    return app


@contextlib.asynccontextmanager
async def serving(app: Starlette, host: str, port: int) -> AsyncIterator[None]:
    """Serve ``app`` (``metrics_app``) while the block runs, leaving the process's signals alone.

    Entered once the port listens (so a worker that says it started can be scraped); a port that cannot
    be bound fails here, loudly, before the worker takes any call."""
    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:  # the worker handles SIGTERM/SIGINT itself
            yield

    server = Server(
        uvicorn.Config(
            app, host=host, port=port, log_config=None, access_log=False, lifespan="off", server_header=False
        )
    )
    task = asyncio.create_task(server.serve(), name="metrics-server")
    while not server.started:  # uvicorn sets a flag, not an event
        if task.done():
            task.result()  # uvicorn logged why; a bind failure exits the task with SystemExit
            raise RuntimeError(f"the metrics server did not start on {host}:{port}")
        await asyncio.sleep(0.01)
    try:
        yield
    finally:
        server.should_exit = True
        await task


# A given id is kept when it is short and plain (it ends up in logs and headers), else one is made.
_GOOD_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def request_id_of(scope: dict[str, Any]) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            given = value.decode("latin-1").strip()
            if _GOOD_ID.fullmatch(given):
                return given
            break
    return uuid.uuid4().hex


async def with_request_id(app: Any, scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Call ``app`` with the request's id in the logging context and echoed in ``X-Request-Id``."""
    rid = request_id_of(scope)
    header = (b"x-request-id", rid.encode())

    async def send_with_id(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", ()), header]
        await send(message)

    token = http_request_id.set(rid)
    try:
        await app(scope, receive, send_with_id)
    finally:
        http_request_id.reset(token)
