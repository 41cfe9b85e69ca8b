"""Rows → the camelCase JSON resources of the admin API (also used by webhooks and the CSV export)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..clock import utcnow
from ..domain.schedule import is_fixed_offset, offset_of_zone
from .schemas import WidgetAnalytics, WidgetUi

UI_DEFAULTS = WidgetUi().model_dump(by_alias=True)
ANALYTICS_DEFAULTS = WidgetAnalytics().model_dump(by_alias=True)


def iso(moment: datetime | None) -> str | None:
    """ISO 8601 UTC with milliseconds: 2026-11-25T10:00:00.123Z."""
    if moment is None:
        return None
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def site_resource(row: Any, points_spent_today: int | None = None) -> dict[str, Any]:
    resource = {
        "id": row["id"],
        "accountId": row["account_id"],
        "name": row["name"],
        "siteKey": row["site_key"],
        "allowedOrigins": list(row["allowed_origins"] or []),
        "timezone": row["timezone"],
        "minutesBalance": row["minutes_balance"],
        "callbackActive": bool(row["callback_active"]),
        "apiPointsPerDay": row["api_points_per_day"],
        "apiPointCosts": dict(row["api_point_costs"] or {}),
        "nonWorkingPolicy": row["non_working_policy"],
        "recordCalls": bool(row["record_calls"]),
        "webhookUrls": list(row["webhook_urls"] or []),
        "allowedCountries": list(row["allowed_countries"] or []),
        "maxRequestsPerNumberPerDay": row["max_requests_per_number_per_day"],
        "trunk": _public_trunk(row["trunk"]),
        "createdAt": iso(row["created_at"]),
    }
    if points_spent_today is not None:
        resource["apiPointsSpentToday"] = points_spent_today
    return resource


def _public_trunk(trunk: dict[str, Any] | None) -> dict[str, Any] | None:
    if not trunk:
        return None
    shown = {k: v for k, v in trunk.items() if k != "password"}
    shown["hasPassword"] = bool(trunk.get("password"))  # never echo a secret back
    return shown


def schedule_resource(zone: str, hours: Any, now: datetime | None = None) -> dict[str, Any]:
    """``timezone`` is the IANA zone (null for a widget kept on a fixed offset); ``utcTimezone`` its offset
    now, read-only: what getRouteKeyData shows Calltouch code."""
    return {
        "timezone": None if is_fixed_offset(zone) else zone,
        "utcTimezone": offset_of_zone(zone, now or utcnow()),
        "hours": [{"dayOfWeek": d, "hour": h} for d, h in sorted(tuple(c) for c in hours)],
    }


def widget_resource(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "siteId": row["site_id"],
        "routeKey": row["route_key"],
        "name": row["name"],
        "enabled": bool(row["enabled"]),
        "operatorPhones": list(row["operator_phones"] or []),
        "schedule": schedule_resource(row["schedule_timezone"], row["schedule_hours"]),
        "collectNonWorkingRequests": bool(row["collect_non_working"]),
        "throttle": {
            "userTimeoutSeconds": row["throttle_user_timeout_s"],
            "maxRequestsPerPhone": row["throttle_max_per_phone"],
            "periodSeconds": row["throttle_period_s"],
        },
        "callback": dict(row["callback"]),
        "ui": widget_ui(row),
        "analytics": {**ANALYTICS_DEFAULTS, **(row["analytics"] or {})},
        "voicemailDetection": bool(row["voicemail_detection"]),
        "quietHours": dict(row["quiet_hours"]) if row["quiet_hours"] else None,
        "createdAt": iso(row["created_at"]),
    }


def widget_ui(row: Any) -> dict[str, Any]:
    """The widget's ``ui`` with every key a stored value predates read as its default."""
    return {**UI_DEFAULTS, **(row["ui"] or {})}


def unit_resource(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "siteId": row["site_id"],
        "name": row["name"],
        "phone": row["phone"],
        "createdAt": iso(row["created_at"]),
    }


def blacklist_resource(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "siteId": row["site_id"],
        "phone": row["phone"],
        "comment": row["comment"],
        "createdAt": iso(row["created_at"]),
    }


def attempt_resource(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "number": row["number"],
        "operatorPhone": row["operator_phone"],
        "startedAt": iso(row["started_at"]),
        "operatorAnsweredAt": iso(row["operator_answered_at"]),
        "clientAnsweredAt": iso(row["client_answered_at"]),
        "endedAt": iso(row["ended_at"]),
        "outcome": row["outcome"],
        "billedSeconds": row["billed_seconds"],
        "recordingUrl": f"/api/admin/v1/attempts/{row['id']}/recording" if row["recording_path"] else None,
    }


UTM_KEYS = ("utmSource", "utmMedium", "utmCampaign", "utmContent", "utmTerm")


def request_resource(row: Any, attempts: list[Any] | None = None) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "id": row["id"],
        "siteId": row["site_id"],
        "widgetId": row["widget_id"],
        "routeKey": row["route_key"],
        "phone": row["phone"],
        "fields": list(row["fields"]),
        "customFields": list(row["custom_fields"] or []),
        "tags": list(row["tags"]),
        "unitId": row["unit_id"],
        "scheduleTime": row["schedule_time"],
        "dueAt": iso(row["due_at"]),
        "sessionId": row["session_id"],
        "source": row["source"],
        "status": row["status"],
        "attemptsMade": row["attempts_made"],
        "nextAttemptAt": iso(row["next_attempt_at"]),
        "finishedAt": iso(row["finished_at"]),
        "createdAt": iso(row["created_at"]),
        "attempts": [attempt_resource(a) for a in (attempts or [])],
    }
    if row["call_url"]:
        resource["callUrl"] = row["call_url"]
    for key in UTM_KEYS:
        value = (row["utm"] or {}).get(key)
        if value:
            resource[key] = value
    return resource


def session_resource(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "landingUrl": row["landing_url"],
        "referrer": row["referrer"],
        "userAgent": row["user_agent"],
        "utm": dict(row["utm"] or {}),
        "createdAt": iso(row["created_at"]),
    }


def ledger_entry_resource(row: Any) -> dict[str, Any]:
    """One change of a site's minutes: ``minutes`` signed (a call's negative), ``kind`` topup | call | adjustment."""
    return {
        "id": row["id"],
        "at": iso(row["at"]),
        "minutes": row["minutes"],
        "kind": row["kind"],
        "requestId": row["request_id"],
        "note": row["note"],
    }
