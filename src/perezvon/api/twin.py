"""The server-side twin of createRequest, with Calltouch's own path, headers and answer shapes (DESIGN §2).

A back end already integrated with Calltouch changes only its base URL.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..domain.digits import is_ascii_digits, parse_id
from ..domain.errors import PublicError
from ..domain.request_rules import validate_request
from ..ops.metrics import public_request
from ..services.accounts import Principal, authenticate_token
from ..services.catalog import Catalog
from ..services.intake import Intake
from ..shapes.resources import UTM_KEYS
from ..store.idempotency import IdempotencyKeys
from .http import json_response, read_body, read_json_object, request_origin

log = logging.getLogger("perezvon.api.twin")
PATH = "/widget-service/v1/api/widget-request/user-form/create"

# Calltouch's codes as seen in public integrations, then ours for refusals Calltouch's docs do not list.
CODE_INVALID_PHONE = 10013
CODE_WIDGET_NOT_FOUND = 10003
CODE_VALIDATION = 10007
CODE_BLACKLISTED = 10020
CODE_POINTS_EXHAUSTED = 10021
CODE_NON_WORKING_HOURS = 10022
CODE_SERVER_ERROR = 10000

TYPE_CODES = {
    "request_widget_not_found": CODE_WIDGET_NOT_FOUND,
    "validation_error": CODE_VALIDATION,
    "request_throttle_timeout": CODE_VALIDATION,
    "request_throttle_count": CODE_VALIDATION,
    "request_phone_blacklisted": CODE_BLACKLISTED,
    "api_points_exhausted": CODE_POINTS_EXHAUSTED,
    "request_non_working_hours": CODE_NON_WORKING_HOURS,
    "origin_not_allowed": CODE_VALIDATION,
    "server_error": CODE_SERVER_ERROR,
}


def refusal(code: int, message: str, status: int = 400, retry_after: int | None = None) -> Response:
    headers = {"Retry-After": str(retry_after)} if retry_after else None
    return json_response({"data": {"apiErrorData": {"errorCode": code, "errorMessage": message}}}, status, headers)


def _blank(value: Any) -> bool:
    """Empty or odd optional values mean "not given" ("" or 0 or false), as real clients send them."""
    return value is None or value == "" or value is False or value == 0


def _clean_body(payload: dict[str, Any]) -> dict[str, Any]:
    body = dict(payload)
    for key in ("scheduleTime", "unitId", "sessionId", "callUrl", "tags", "fields"):
        if _blank(body.get(key)):
            body[key] = None
    if isinstance(body.get("unitId"), str) and is_ascii_digits(body["unitId"]):
        body["unitId"] = parse_id(body["unitId"]) or body["unitId"]
    if isinstance(body.get("fields"), list):
        # Integrations send {name, value, type}; only name and value matter.
        body["fields"] = [
            {"name": f.get("name"), "value": f.get("value")} if isinstance(f, dict) else f for f in body["fields"]
        ]
    return body


async def create(request: Request) -> Response:
    key = request.headers.get("idempotency-key")
    response = await _create(request) if key is None else await _idempotent_create(request, key)
    public_request("serverCreate", _outcome(response))
    return response


_OUTCOME_OF_CODE = {code: kind for kind, code in reversed(TYPE_CODES.items())}
_OUTCOME_OF_CODE[CODE_INVALID_PHONE] = "validation_error"


def _outcome(response: Response) -> str:
    """The metrics label of an answer: ``ok`` or the error type its Calltouch code stands for."""
    if response.status_code == 200 and b"widgetRequestId" in response.body:
        return "ok"
    if response.status_code == 403:
        return "unauthorized"
    if response.status_code >= 500:
        return "server_error"
    if "retry-after" in response.headers:
        return "request_throttle_count"
    try:
        code = json.loads(response.body)["data"]["apiErrorData"]["errorCode"]
    except (ValueError, KeyError, TypeError):
        return "validation_error"
    return _OUTCOME_OF_CODE.get(code, "validation_error")


_GOOD_KEY = re.compile(r"[\x21-\x7e]{1,255}")  # printable ASCII, as Stripe and the IETF draft allow


async def _idempotent_create(request: Request, key: str) -> Response:
    """A perezvon extension: the same ``Idempotency-Key`` (per access token, 24 h) replays the first
    accepted answer instead of creating the request again (docs/api.md)."""
    if not _GOOD_KEY.fullmatch(key):
        return refusal(CODE_VALIDATION, "Idempotency-Key must be 1 to 255 printable ASCII characters")
    token = request.headers.get("access-token") or ""
    scope = hashlib.sha256(token.encode()).hexdigest()
    try:
        fingerprint = hashlib.sha256(await read_body(request)).hexdigest()  # 64 KB at most, here too
    except PublicError as error:
        return refusal(CODE_VALIDATION, error.message, error.status)
    keys = IdempotencyKeys(request.app.state.db)
    claim = await keys.claim(scope, key, fingerprint)
    if claim.status_code is not None:
        return Response(claim.body, claim.status_code, media_type="application/json",
                        headers={"Idempotent-Replayed": "true"})
    if claim.mismatch:
        return refusal(CODE_VALIDATION, "This Idempotency-Key was used with another request body", 422)
    if claim.busy:
        return refusal(CODE_VALIDATION, "A request with this Idempotency-Key is still in progress", 409)
    try:
        response = await _create(request)
    except BaseException:
        await keys.release(scope, key)
        raise
    if response.status_code == 200:
        await keys.record(scope, key, 200, bytes(response.body).decode())
    else:  # nothing was created: a retry is judged anew
        await keys.release(scope, key)
    return response


async def _create(request: Request) -> Response:
    intake: Intake = request.app.state.intake
    settings = request.app.state.settings
    who = await authenticate_token(request.app.state.db, request.headers.get("access-token"), settings.admin_token)
    if who is None:
        return json_response({"message": "Invalid credentials"}, 403)
    try:
        origin = request_origin(request, settings)
        retry = await intake.guard.hit_ip(origin.ip)
        if retry is not None:
            return refusal(
                CODE_VALIDATION,
                f"Request limit exceeded: at most {settings.ip_rate_limit} requests per second",
                retry_after=retry,
            )
        body = _clean_body(await read_json_object(request))  # 64 KB at most, storable text only
        request_input, errors = validate_request(body)
        phone_errors = [f for f in errors.as_details()["fields"] if f["name"] == "phone"]
        if phone_errors:  # the phone is checked first: 10013 wins over 10003
            return refusal(CODE_INVALID_PHONE, phone_errors[0]["errors"][0]["message"])
        route_key_errors = [f for f in errors.as_details()["fields"] if f["name"] == "routeKey"]
        if route_key_errors:
            return refusal(CODE_VALIDATION, "routeKey: " + route_key_errors[0]["errors"][0]["message"])
        site_id = await _find_site(request, who, request_input.route_key)
        if site_id is None:
            return refusal(CODE_WIDGET_NOT_FOUND, f"No active widget for routeKey {request_input.route_key!r}")
        snapshot = await intake.snapshots.by_id(site_id)
        if snapshot is None or not who.owns(snapshot.site["account_id"]):
            return refusal(CODE_WIDGET_NOT_FOUND, f"No active widget for routeKey {request_input.route_key!r}")
        origin = request_origin(request, settings, body.get("sessionId"))
        origin.origin = None  # a back end, not a browser: origins do not apply
        utm = {k: body[k] for k in UTM_KEYS if isinstance(body.get(k), str) and body[k]}
        call_url = body.get("callUrl") if isinstance(body.get("callUrl"), str) else None
        accepted = await intake.create_request(
            snapshot,
            request_input,
            errors,
            origin,
            method="serverCreate",
            source="api",
            extra={"utm": utm, "callUrl": call_url},
        )
        return json_response({"data": {"widgetRequestId": accepted.request_id}})
    except PublicError as error:
        message = error.message
        if error.type == "validation_error":
            message = (
                "; ".join(f"{f['name']}: {f['errors'][0]['message']}" for f in error.details.get("fields", []))
                or message
            )
        status = 413 if error.status == 413 else 400
        code = TYPE_CODES.get(error.type, CODE_VALIDATION)
        if error.type == "validation_error" and any(f["name"] == "phone" for f in error.details.get("fields", [])):
            code = CODE_INVALID_PHONE  # a number the site may not call (premium-rate, another country)
        return refusal(code, message, status, error.retry_after)
    except Exception:
        log.exception("server-side create failed")
        return refusal(CODE_SERVER_ERROR, "Internal server error", 500)


async def _find_site(request: Request, who: Principal, route_key: str) -> int | None:
    """The SiteId header when given; else the one site of this token that has the routeKey."""
    header = request.headers.get("siteid", "").strip()
    if header:
        return parse_id(header)  # "²" or 2**70 name no site: "no active widget", not a crash
    catalog: Catalog = request.app.state.catalog
    return await catalog.site_for_route_key(who, route_key)


routes = [Route(PATH, create, methods=["POST"])]
