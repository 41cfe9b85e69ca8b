"""Calltouch's request export (DESIGN §7): ``GET /calls-service/RestAPI/requests``, so reports and scripts
written for Calltouch read perezvon's journal with only their base URL changed.

``clientApiId`` is an admin API token (an account's reaches its own sites, an operator's all of them);
days are ``MM/DD/YYYY`` local to each site. The answer is a bare JSON array, streamed one batch at a
time, so an export of any size starts at once and holds one batch in memory.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import date
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import phonenumbers
from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from ..domain.errors import FieldErrors, PublicError
from ..services.accounts import authenticate_token
from ..services.request_export import ExportRow, RequestExport
from ..shapes.resources import UTM_KEYS

PATH = "/calls-service/RestAPI/requests"
DATE = re.compile(r"(\d{2})/(\d{2})/(\d{4})")
# Field names a form gives the visitor's name under, read into Calltouch's ``fio``.
NAME_FIELDS = frozenset(
    {"name", "fio", "full name", "fullname", "first name", "firstname", "last name", "lastname", "surname"}
    | {"имя", "фио", "фамилия", "отчество", "имя и фамилия"}
)
PHONE_TYPES = {
    phonenumbers.PhoneNumberType.MOBILE: "MOBILE",
    phonenumbers.PhoneNumberType.FIXED_LINE: "FIXED_LINE",
    phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE: "FIXED_LINE_OR_MOBILE",
}

router = APIRouter(tags=["Calltouch compatibility"])


def _day(value: str | None, name: str, errors: FieldErrors) -> date | None:
    match = DATE.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        errors.add(name, f"{name} must be a date MM/DD/YYYY")
        return None
    month, day, year = (int(g) for g in match.groups())
    try:
        return date(year, month, day)
    except ValueError:
        errors.add(name, f"{name} is not a real date")
        return None


def _site_id(value: str | None, errors: FieldErrors) -> int | None:
    if value is None or value == "":
        return None
    if not (value.isascii() and value.isdigit()) or int(value) == 0:
        errors.add("siteId", "siteId must be a positive integer")
        return None
    return int(value)


def phone_type(phone: str) -> str:
    try:
        kind = phonenumbers.number_type(phonenumbers.parse("+" + phone))
    except phonenumbers.NumberParseException:
        return "UNKNOWN"
    return PHONE_TYPES.get(kind, "UNKNOWN")


def fio(fields: list[dict[str, Any]]) -> str:
    """The visitor's name from the fields a form sent it in, in their order ("" when none)."""
    names = [str(f.get("value", "")) for f in fields if str(f.get("name", "")).strip().lower() in NAME_FIELDS]
    return " ".join(n for n in names if n)


def export_item(row: ExportRow, with_tags: bool) -> dict[str, Any]:
    """One journal request in the shape of an item of Calltouch's request export."""
    request, session = row.request, row.session or {}
    utm = {**session.get("utm", {}), **{k: v for k, v in (request["utm"] or {}).items() if v}}
    tags = list(request["tags"] or [])
    created = request["created_at"].astimezone(ZoneInfo(row.zone))
    return {
        "requestId": request["id"],
        "requestNumber": str(request["id"]),
        "subject": request["route_key"],
        "dateStr": created.strftime("%d/%m/%Y %H:%M:%S"),
        "status": request["status"],
        "client": {
            "clientId": None,
            "fio": fio(request["fields"] or []),
            "phones": [{"phoneNumber": request["phone"], "phoneType": phone_type(request["phone"])}],
            "contacts": [],
        },
        "session": {"sessionId": request["session_id"], **{k: str(utm.get(k) or "") for k in UTM_KEYS}},
        "RequestTags": [{"category": "perezvon", "type": "tags", "names": tags}] if with_tags and tags else [],
        "requestUrl": request["call_url"] or session.get("landing_url") or "",
    }


def _encode(item: dict[str, Any]) -> str:
    text = json.dumps(item, ensure_ascii=False, separators=(",", ":"))
    try:
        text.encode()
    except UnicodeEncodeError:  # a lone surrogate a visitor sent: escaped, so the export stays valid
        text = json.dumps(item, separators=(",", ":"))
    return text


async def _stream(batches: AsyncIterator[list[ExportRow]], with_tags: bool) -> AsyncIterator[bytes]:
    yield b"["
    first = True
    async for batch in batches:
        chunk = ",".join(_encode(export_item(row, with_tags)) for row in batch)
        yield (chunk if first else "," + chunk).encode()
        first = False
    yield b"]"


@router.get(PATH, summary="Calltouch's request export: the journal by local days, as a bare JSON array")
@router.get(PATH + "/", include_in_schema=False)
async def export_requests(
    request: Request,
    client_api_id: Annotated[str | None, Query(alias="clientApiId", description="an admin API token")] = None,
    date_from: Annotated[str | None, Query(alias="dateFrom", description="MM/DD/YYYY, the site's zone")] = None,
    date_to: Annotated[str | None, Query(alias="dateTo", description="MM/DD/YYYY, inclusive")] = None,
    site_id: Annotated[str | None, Query(alias="siteId")] = None,
    with_request_tags: Annotated[str | None, Query(alias="withRequestTags")] = None,
) -> StreamingResponse:
    state = request.app.state
    who = await authenticate_token(state.db, client_api_id, state.settings.admin_token)
    if who is None:
        raise PublicError("unauthorized", "clientApiId must be a valid admin API token")
    errors = FieldErrors()
    first, last = _day(date_from, "dateFrom", errors), _day(date_to, "dateTo", errors)
    site = _site_id(site_id, errors)
    if first is not None and last is not None and first > last:
        errors.add("dateTo", "dateTo must not be before dateFrom")
    errors.raise_if_any()
    export: RequestExport = state.request_export
    batches = export.rows(who, first, last, site)  # type: ignore[arg-type]
    # Read the first batch before answering, so an unknown siteId is a 404, not a broken stream.
    head = await anext(batches, None)

    async def all_batches() -> AsyncIterator[list[ExportRow]]:
        if head is not None:
            yield head
            async for batch in batches:
                yield batch

    with_tags = (with_request_tags or "").lower() == "true"
    return StreamingResponse(_stream(all_batches(), with_tags), media_type="application/json")
