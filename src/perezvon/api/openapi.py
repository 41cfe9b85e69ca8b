"""The served OpenAPI document's description of what FastAPI cannot see by itself.

The public widget API and the server-side create are plain Starlette routes (the fast lane), so their
operations are written out here and merged into FastAPI's document; every refusal of the admin API is
declared once (``ADMIN_ERRORS``) rather than per route. Together they make the document describe every
JSON endpoint, status codes and error bodies included: schemathesis checks responses against it.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from . import public, twin

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "message", "details"],
    "properties": {
        "type": {"type": "string", "description": "validation_error, request_throttle_count, forbidden, …"},
        "message": {"type": "string"},
        "details": {"type": "object", "description": "validation_error: {fields: [{name, errors: [{message}]}]}"},
    },
}
_ERROR_REF = {"$ref": "#/components/schemas/Error"}
_ERROR_CONTENT = {"application/json": {"schema": _ERROR_REF}}

ADMIN_ERROR_TEXT = {
    400: "validation_error: the body, a query or a path parameter is invalid (every invalid field is listed)",
    401: "unauthorized: no valid 'Authorization: Bearer <token>'",
    403: "forbidden: this token may not do that (e.g. an account token setting minutesBalance)",
    404: "not_found: no such resource, or not this token's",
    409: "conflict: a duplicate (routeKey, blacklisted phone) or a state that does not allow it",
    413: "validation_error: the body is larger than 65 536 bytes",
    422: "validation_error: a webhook URL that resolves to a private address",
}
# For FastAPI routers: ``APIRouter(responses=ADMIN_ERRORS)``. Its own 422 (HTTPValidationError) is
# replaced: validation errors answer 400 in the {type, message, details} shape.
ADMIN_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"description": text, "content": _ERROR_CONTENT} for code, text in ADMIN_ERROR_TEXT.items()
}

_PUBLIC_ERRORS = {
    "400": "validation_error: every invalid argument listed in details.fields",
    "403": "request_phone_blacklisted or origin_not_allowed",
    "404": "request_widget_not_found (request-status: request_not_found)",
    "409": "request_non_working_hours",
    "413": "validation_error: the body is larger than 65 536 bytes",
    "429": "request_throttle_timeout, request_throttle_count or api_points_exhausted (Retry-After says when)",
}

_NAME_VALUE = {
    "type": "object",
    "properties": {"name": {"type": "string", "maxLength": 255}, "value": {"type": "string", "maxLength": 255}},
}
_CREATE_FIELDS: dict[str, Any] = {
    "routeKey": {"type": "string", "minLength": 1, "maxLength": 255},
    "phone": {"type": "string", "pattern": "^[0-9]{11}$", "description": "11 ASCII digits, no plus"},
    "fields": {"type": ["array", "null"], "maxItems": 5, "items": _NAME_VALUE},
    "scheduleTime": {"type": ["string", "null"], "description": "YYYY-MM-DD HH:MM:SS, call-center time"},
    "tags": {"type": ["array", "null"], "maxItems": 10, "items": {"type": "string", "maxLength": 100}},
    "unitId": {"type": ["integer", "null"], "minimum": 1},
}
_SESSION_ID = {"type": ["integer", "null"], "description": "the tracking session (ctw.js sends it itself)"}


def _public_operation(summary: str, body: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
    responses: dict[str, Any] = {"200": {"description": "OK", "content": {"application/json": {"schema": answer}}}}
    for code, text in _PUBLIC_ERRORS.items():
        responses[code] = {"description": text, "content": _ERROR_CONTENT}
    return {
        "tags": ["public widget API"],
        "summary": summary,
        "description": "Read as JSON whatever the Content-Type (ctw.js sends text/plain: no CORS preflight). "
        "Counts toward the per-IP limit except the session.",
        "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
        "responses": responses,
    }


def _object(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


_SITE = {"site": {"type": "string", "description": "the site's siteKey (ctw.js?site=…)"}}
_WIDGET_DATA = _object(
    {
        "widgetId": {"type": "integer"},
        "callCenterWorkingMode": {"type": "string", "enum": ["working_hours", "non_working_hours"]},
        "collectNonWorkingRequests": {"type": "boolean"},
        "collectRequests": {"type": "boolean"},
        "workingSchedule": _object({"utcTimezone": {"type": "string"}, "hours": {"type": "array"}}),
    }
)
_API_ERROR = _object(
    {
        "data": _object(
            {
                "apiErrorData": _object(
                    {"errorCode": {"type": "integer"}, "errorMessage": {"type": "string"}},
                    ["errorCode", "errorMessage"],
                )
            },
            ["apiErrorData"],
        )
    },
    ["data"],
)


def public_paths() -> dict[str, Any]:
    """OpenAPI path items of the public widget API and the server-side create."""
    create_body = _object(
        {**_SITE, **_CREATE_FIELDS, "customFields": {"type": "array", "items": _NAME_VALUE}, "sessionId": _SESSION_ID},
        ["site", "routeKey", "phone"],
    )
    twin_body = _object(
        {
            **_CREATE_FIELDS,
            "sessionId": {"type": ["integer", "string", "null"]},
            "callUrl": {"type": ["string", "null"]},
            **{
                k: {"type": ["string", "null"]}
                for k in ("utmSource", "utmMedium", "utmCampaign", "utmContent", "utmTerm")
            },
        },
        ["routeKey", "phone"],
    )
    twin_errors = {
        "400": "refused: apiErrorData (10013 invalid phone, 10003 no active widget, 10007 validation, …)",
        "413": "refused: apiErrorData 10007, the body is larger than 65 536 bytes",
    }
    twin_responses: dict[str, Any] = {
        "200": {
            "description": "accepted",
            "content": {
                "application/json": {
                    "schema": _object(
                        {"data": _object({"widgetRequestId": {"type": "integer"}}, ["widgetRequestId"])}, ["data"]
                    )
                }
            },
        },
        **{
            code: {"description": text, "content": {"application/json": {"schema": _API_ERROR}}}
            for code, text in twin_errors.items()
        },
        "403": {
            "description": "a bad or missing Access-Token",
            "content": {"application/json": {"schema": _object({"message": {"type": "string"}}, ["message"])}},
        },
    }
    return {
        f"{public.PREFIX}/route-key-data": {
            "post": _public_operation(
                "getRouteKeyData: is there an enabled widget, and is the call center working now?",
                _object(
                    {**_SITE, "routeKey": _CREATE_FIELDS["routeKey"], "sessionId": _SESSION_ID}, ["site", "routeKey"]
                ),
                _object(
                    {"widgetFound": {"type": "boolean"}, "widgetData": {"oneOf": [_WIDGET_DATA, {"type": "null"}]}},
                    ["widgetFound", "widgetData"],
                ),
            )
        },
        f"{public.PREFIX}/requests": {
            "post": _public_operation(
                "createRequest: store a callback request (durable before the answer)",
                create_body,
                _object({"callbackRequestId": {"type": "integer"}}, ["callbackRequestId"]),
            )
        },
        f"{public.PREFIX}/session": {
            "post": _public_operation(
                "Start a tracking session (ctw.js does it on first load; not counted toward the per-IP limit)",
                _object(
                    {
                        **_SITE,
                        **{
                            k: {"type": "string"}
                            for k in (
                                "url",
                                "referrer",
                                "userAgent",
                                "utmSource",
                                "utmMedium",
                                "utmCampaign",
                                "utmContent",
                                "utmTerm",
                            )
                        },
                    },
                    ["site"],
                ),
                _object({"sessionId": {"type": "integer"}}, ["sessionId"]),
            )
        },
        f"{public.PREFIX}/ui": {
            "post": _public_operation(
                "The widgets ctw.js draws on this page (SDK bookkeeping: not counted, no points)",
                _object(_SITE, ["site"]),
                _object({"widgets": {"type": "array", "items": {"type": "object"}}}, ["widgets"]),
            )
        },
        f"{public.PREFIX}/request-status": {
            "post": _public_operation(
                "A visitor's own request, read with its statusToken (request_not_found otherwise)",
                _object(
                    {**_SITE, "callbackRequestId": {"type": "integer"}, "statusToken": {"type": "string"}},
                    ["site", "callbackRequestId", "statusToken"],
                ),
                _object({"callbackRequestId": {"type": "integer"}, "status": {"type": "string"}}),
            )
        },
        twin.PATH: {
            "post": {
                "tags": ["server-side create"],
                "summary": "Calltouch's server-side twin of createRequest, with Calltouch's answer shapes",
                "parameters": [
                    {
                        "name": "Access-Token",
                        "in": "header",
                        "required": True,
                        "schema": {"type": "string"},
                        "description": "an admin API token",
                    },
                    {
                        "name": "SiteId",
                        "in": "header",
                        "required": False,
                        "schema": {"type": "string"},
                        "description": "optional: else the site is found from the token and routeKey",
                    },
                ],
                "requestBody": {"required": True, "content": {"application/json": {"schema": twin_body}}},
                "responses": twin_responses,
            }
        },
    }


def install(app: FastAPI) -> None:
    """Make ``app.openapi()`` include the public paths and the shared Error schema (built once)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            document["paths"] = {**public_paths(), **document.get("paths", {})}
            document.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
