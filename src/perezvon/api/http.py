"""Small HTTP helpers shared by the public endpoints."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote_to_bytes

from starlette.requests import Request
from starlette.responses import Response

from ..domain.digits import is_ascii_digits, parse_id
from ..domain.errors import FieldErrors, PublicError
from ..domain.text import bad_strings, text_problem
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
TOO_LARGE = f"The request body is larger than {MAX_BODY_BYTES} bytes"


def _body_error(message: str, status: int | None = None) -> PublicError:
    details = {"fields": [{"name": "body", "errors": [{"message": message}]}]}
    return PublicError("validation_error", message, details, http_status=status)


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The raw body, refusing more than ``limit`` bytes (413) without reading them all into memory."""
    declared = request.headers.get("content-length", "")
    if is_ascii_digits(declared) and int(declared) > limit:
        raise _body_error(TOO_LARGE, 413)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():  # chunked bodies have no Content-Length: count what arrives
        size += len(chunk)
        if size > limit:
            raise _body_error(TOO_LARGE, 413)
        chunks.append(chunk)
    body = b"".join(chunks)
    request._body = body  # Starlette's own cache: a second read (body(), stream()) gets the same bytes
    return body


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """A body as a JSON object of storable text, or a validation_error saying what is wrong with it."""
    try:
        payload = json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError) as exc:
        raise _body_error(f"The request body is not valid JSON: {exc}") from exc
    except RecursionError:
        raise _body_error("The request body is not valid JSON: it nests too deeply") from None
    if not isinstance(payload, dict):
        raise _body_error("The request body must be a JSON object")
    _check_text(raw, payload)
    return payload


def _check_text(raw: bytes, payload: Any) -> None:
    # Raw control characters and invalid UTF-8 are refused by the decoder; only \u escapes can smuggle
    # a lone surrogate or NUL in, so bodies without one skip the walk.
    if b"\\u" in raw:
        errors = FieldErrors()
        for where, problem in bad_strings(payload):
            errors.add(where, f"{where} {problem}")
        errors.raise_if_any()


def unstorable_json(raw: bytes) -> PublicError | None:
    """For a JSON body of any shape: the refusal of text in it that we cannot store, else None (a body
    that is not JSON at all is left to the endpoint's own validation)."""
    if b"\\u" not in raw:
        return None
    try:
        _check_text(raw, json.loads(raw))
    except PublicError as error:
        return error
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    return None


async def read_json_object(request: Request) -> dict[str, Any]:
    """The body as a JSON object whatever its Content-Type (the SDK sends text/plain to skip preflights)."""
    return parse_json_object(await read_body(request))


def request_origin(request: Request, settings: Settings, session_id: object = None) -> Origin:
    peer = request.client.host if request.client else None
    ip = client_ip(peer, request.headers.get("x-forwarded-for"), settings.trusted_proxies)
    return Origin(
        ip=ip,
        origin=request.headers.get("origin"),
        session_id=parse_id(session_id),  # "²", 2**70 or true name no session: dropped like an unknown one
        user_agent=request.headers.get("user-agent", ""),
    )


class InputGuard:
    """ASGI middleware for everything FastAPI serves (admin API, OpenAPI, cabinet): bodies over
    ``MAX_BODY_BYTES`` get 413 however they are framed, and JSON bodies or query strings carrying text
    we cannot store (a lone surrogate, NUL) get 400, both before any handler runs.

    The public widget API and the server-side create do the same in their own handlers (``read_body``),
    in their own error shapes: they are served past this stack.
    """

    def __init__(self, app: Any, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_api = scope["path"].startswith("/api/")
        query_problem = _query_problem(scope.get("query_string", b""))
        if query_problem:
            await _refuse(send, is_api, 400, query_problem, "query")
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length", b"").decode("latin-1")
        if is_ascii_digits(declared) and int(declared) > self.limit:
            await _refuse(send, is_api, 413, TOO_LARGE)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: nothing to answer
                return
            size += len(message.get("body", b""))
            if size > self.limit:
                await _refuse(send, is_api, 413, TOO_LARGE)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        error = unstorable_json(body) if is_api else None
        if error is not None:
            await send_response(send, error_response(error))
            return
        replayed = False

        async def replay() -> Any:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _query_problem(query_string: bytes) -> str | None:
    if b"%" not in query_string:
        return None  # only percent-escapes can carry control characters or invalid UTF-8
    text = unquote_to_bytes(query_string.replace(b"+", b" ")).decode("utf-8", "replace")  # as Starlette reads it
    problem = text_problem(text)
    return f"The query string {problem}" if problem else None


async def _refuse(send: Any, is_api: bool, status: int, message: str, name: str = "body") -> None:
    if is_api:
        details = {"fields": [{"name": name, "errors": [{"message": message}]}]}
        response = error_response(PublicError("validation_error", message, details, http_status=status))
    else:
        response = Response(message, status_code=status, media_type="text/plain; charset=utf-8")
    await send_response(send, response)


async def send_response(send: Any, response: Response) -> None:
    await send({"type": "http.response.start", "status": response.status_code, "headers": response.raw_headers})
    await send({"type": "http.response.body", "body": response.body})
