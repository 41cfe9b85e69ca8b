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


class RawJSON(str):
    """Text that is already JSON, encoded by ``dumps``: ``json_response`` sends it as it is."""


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


_SHARED: dict[int, tuple[Any, str]] = {}


def dumps_shared(value: Any) -> str:
    """``dumps`` of a value that is shared and never changed (a per-snapshot memo), encoded once per object.

    Keyed by identity; the entry keeps the object alive, so its id cannot be reused while cached. Bounded:
    snapshots are replaced every few seconds, and their old memos must not pile up here.
    """
    hit = _SHARED.get(id(value))
    if hit is not None and hit[0] is value:
        return hit[1]
    if len(_SHARED) >= 1024:
        _SHARED.clear()
    text = dumps(value)
    _SHARED[id(value)] = (value, text)
    return text


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        body if isinstance(body, RawJSON) else dumps(body),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def error_response(error: PublicError, headers: dict[str, str] | None = None) -> Response:
    headers = dict(headers or {})
    if error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    return json_response(error.body(), error.status, headers)


# The largest valid createRequest (5 fields and 10 tags at their limits, custom fields) is well under this.
MAX_BODY_BYTES = 64 * 1024


def _body_error(message: str) -> PublicError:
    return PublicError("validation_error", message, {"fields": [{"name": "body", "errors": [{"message": message}]}]})


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The raw body, refusing more than ``limit`` bytes without reading them all into memory."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _body_error(f"The request body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _body_error(f"The request body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json_object(request: Request) -> dict[str, Any]:
    """The body as a JSON object whatever its Content-Type (the SDK sends text/plain to skip preflights)."""
    raw = await read_body(request)
    try:
        payload = json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError) as exc:
        raise _body_error(f"The request body is not valid JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise _body_error("The request body must be a JSON object")
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
