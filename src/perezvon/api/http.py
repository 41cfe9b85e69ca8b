"""Small HTTP helpers shared by the public endpoints."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..domain.errors import PublicError
from ..services.intake import Origin
from ..settings import Settings
from ..throttling import client_ip


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(body, ensure_ascii=False, separators=(",", ":")),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def error_response(error: PublicError, headers: dict[str, str] | None = None) -> Response:
    headers = dict(headers or {})
    if error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    return json_response(error.body(), error.status, headers)


async def read_json_object(request: Request) -> dict[str, Any]:
    """The body as a JSON object whatever its Content-Type (the SDK sends text/plain to skip preflights)."""
    raw = await request.body()
    try:
        payload = json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError) as exc:
        raise PublicError(
            "validation_error",
            "The request body is not valid JSON",
            {"fields": [{"name": "body", "errors": [{"message": f"Invalid JSON: {exc}"}]}]},
        ) from exc
    if not isinstance(payload, dict):
        raise PublicError(
            "validation_error",
            "The request body must be a JSON object",
            {"fields": [{"name": "body", "errors": [{"message": "Expected a JSON object"}]}]},
        )
    return payload


def request_origin(request: Request, settings: Settings, session_id: object = None) -> Origin:
    peer = request.client.host if request.client else None
    ip = client_ip(peer, request.headers.get("x-forwarded-for"), settings.trusted_proxies)
    sid = session_id if isinstance(session_id, int) and not isinstance(session_id, bool) and session_id > 0 else None
    if isinstance(session_id, str) and session_id.isdigit() and int(session_id) > 0:
        sid = int(session_id)
    return Origin(
        ip=ip,
        origin=request.headers.get("origin"),
        session_id=sid,
        user_agent=request.headers.get("user-agent", ""),
    )
