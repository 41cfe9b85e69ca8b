"""Sites, widgets, units and blacklists: every setting of DESIGN §1, through the tenancy-checked Catalog."""

from __future__ import annotations

from typing import Any
from zoneinfo import available_timezones

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..domain.destinations import country_names
from ..domain.digits import parse_id
from ..services.accounts import Principal
from ..services.catalog import Catalog, Conflict
from ..services.intake import points_spent_today
from ..shapes.resources import site_resource, widget_resource
from ..shapes.schemas import SiteIn, SitePatch, UnitIn, WidgetIn
from .base import page, redirect, render
from .forms import (
    parse_phone_lines,
    site_payload,
    validate,
    widget_defaults,
    widget_payload,
    with_callback_defaults,
    with_ui_defaults,
)

TIMEZONES = sorted(z for z in available_timezones() if "/" in z or z == "UTC")
DAYS = range(1, 8)
HOURS = range(24)


def _catalog(request: Request) -> Catalog:
    return request.app.state.catalog


def _who(request: Request) -> Principal:
    return request.state.user.principal


def _base_url(request: Request) -> str:
    configured = request.app.state.settings.public_base_url
    return configured or str(request.base_url).rstrip("/")


async def _site_view(request: Request, row: dict[str, Any]) -> dict[str, Any]:
    spent = await points_spent_today(request.app.state.guard, row)
    return site_resource(row, spent)


# -- sites ------------------------------------------------------------------------------------------------


@page
async def sites_page(request: Request) -> Response:
    rows = await _catalog(request).list_sites(_who(request))
    sites = [await _site_view(request, r) for r in rows]
    return render(request, "sites.html", {"nav": "sites", "sites": sites})


def _site_form(request: Request, site: dict[str, Any], errors: dict, status: int = 200, **extra: Any) -> Response:
    return render(
        request,
        "site_form.html",
        {"nav": "sites", "site": site, "errors": errors, "timezones": TIMEZONES,
         "countries": sorted(country_names().items(), key=lambda item: item[1]), **extra},
        status=status,
    )


@page
async def site_new(request: Request) -> Response:
    blank = {
        "name": "",
        "allowedOrigins": [],
        "timezone": "Europe/Moscow",
        "callbackActive": True,
    }
    return _site_form(request, blank, {})


@page
async def site_create(request: Request) -> Response:
    payload = site_payload(await request.form())
    body, errors = validate(SiteIn, payload)
    if body is None:
        return _site_form(request, payload, errors, 400)
    values = body.model_dump(exclude={"account_id", "trunk"})
    row = await _catalog(request).create_site(_who(request), values)
    return redirect(f"/sites/{row['id']}", done="saved")


@page
async def site_page(request: Request) -> Response:
    cat, who = _catalog(request), _who(request)
    site_id = request.path_params["site_id"]
    row = await cat.get_site(who, site_id)
    site = await _site_view(request, row)
    widgets = [widget_resource(w) for w in await cat.list_widgets(who, site_id)]
    units = await cat.list_units(who, site_id)
    blacklisted = len(await cat.list_blacklist(who, site_id))
    snippet = f'<script src="{_base_url(request)}/ctw.js?site={site["siteKey"]}"></script>'
    return render(
        request,
        "site.html",
        {
            "nav": "sites",
            "site": site,
            "widgets": widgets,
            "units": units,
            "blacklisted": blacklisted,
            "snippet": snippet,
            "timezones": TIMEZONES,
            "errors": {},
        },
    )


@page
async def site_edit(request: Request) -> Response:
    row = await _catalog(request).get_site(_who(request), request.path_params["site_id"])
    return _site_form(request, site_resource(row), {})


@page
async def site_update(request: Request) -> Response:
    site_id = request.path_params["site_id"]
    await _catalog(request).get_site(_who(request), site_id)
    payload = site_payload(await request.form())
    body, errors = validate(SitePatch, payload)
    if body is None:
        payload["id"] = site_id
        return _site_form(request, payload, errors, 400)
    await _catalog(request).update_site(_who(request), site_id, body.model_dump(exclude_unset=True))
    return redirect(f"/sites/{site_id}", done="saved")


@page
async def site_delete(request: Request) -> Response:
    await _catalog(request).delete_site(_who(request), request.path_params["site_id"])
    return redirect("/sites", done="deleted")


# -- widgets ----------------------------------------------------------------------------------------------


def _widget_form(
    request: Request, site: dict[str, Any], widget: dict[str, Any], errors: dict, status: int = 200
) -> Response:
    widget = with_ui_defaults(widget)
    cells = {f"{c['dayOfWeek']}-{c['hour']}" for c in widget["schedule"]["hours"]}
    return render(
        request,
        "widget.html",
        {
            "nav": "sites",
            "site": site,
            "w": widget,
            "cells": cells,
            "errors": errors,
            "timezones": TIMEZONES,
            "days": DAYS,
            "hours": HOURS,
        },
        status=status,
    )


@page
async def widget_new(request: Request) -> Response:
    site = await _catalog(request).get_site(_who(request), request.path_params["site_id"])
    return _widget_form(request, site, widget_defaults(site["timezone"]), {})


def _widget_values(body: BaseModel) -> dict[str, Any]:
    values = body.model_dump()
    assert isinstance(body, WidgetIn)
    values["callback"] = body.callback.model_dump(by_alias=True)  # stored camelCase, like the API stores it
    values["ui"] = body.ui.model_dump(by_alias=True)
    values["analytics"] = body.analytics.model_dump(by_alias=True)
    values.pop("quiet_hours", None)  # not on the cabinet's form: a save keeps what the API set
    return values


@page
async def widget_create(request: Request) -> Response:
    cat, who = _catalog(request), _who(request)
    site = await cat.get_site(who, request.path_params["site_id"])
    payload = widget_payload(await request.form())
    body, errors = validate(WidgetIn, payload)
    if body is not None:
        try:
            row = await cat.create_widget(who, site["id"], _widget_values(body))
            return redirect(f"/widgets/{row['id']}", done="saved")
        except Conflict:
            errors = {"routeKey": ["conflict_route_key"]}
    return _widget_form(request, site, payload, errors, 400)


@page
async def widget_page(request: Request) -> Response:
    cat, who = _catalog(request), _who(request)
    row = await cat.get_widget(who, request.path_params["widget_id"])
    site = await cat.get_site(who, row["site_id"])
    widget = with_callback_defaults(widget_resource(row))
    return _widget_form(request, site, widget, {})


@page
async def widget_update(request: Request) -> Response:
    cat, who = _catalog(request), _who(request)
    row = await cat.get_widget(who, request.path_params["widget_id"])
    site = await cat.get_site(who, row["site_id"])
    payload = widget_payload(await request.form())
    payload_view = {**payload, "id": row["id"]}
    body, errors = validate(WidgetIn, payload)
    if body is not None:
        try:
            await cat.update_widget(who, row["id"], _widget_values(body))
            return redirect(f"/widgets/{row['id']}", done="saved")
        except Conflict:
            errors = {"routeKey": ["conflict_route_key"]}
    return _widget_form(request, site, payload_view, errors, 400)


@page
async def widget_delete(request: Request) -> Response:
    cat, who = _catalog(request), _who(request)
    row = await cat.get_widget(who, request.path_params["widget_id"])
    await cat.delete_widget(who, row["id"])
    return redirect(f"/sites/{row['site_id']}", done="deleted")


# -- units ------------------------------------------------------------------------------------------------


async def _units_page(request: Request, site_id: int, errors: dict, form: dict, status: int = 200) -> Response:
    cat, who = _catalog(request), _who(request)
    site = await cat.get_site(who, site_id)
    units = await cat.list_units(who, site_id)
    return render(
        request,
        "units.html",
        {"nav": "sites", "site": site, "units": units, "errors": errors, "form": form},
        status=status,
    )


@page
async def units_page(request: Request) -> Response:
    return await _units_page(request, request.path_params["site_id"], {}, {"name": "", "phone": ""})


@page
async def unit_create(request: Request) -> Response:
    site_id = request.path_params["site_id"]
    await _catalog(request).get_site(_who(request), site_id)
    form = await request.form()
    payload = {"name": str(form.get("name", "")).strip(), "phone": str(form.get("phone", "")).strip()}
    body, errors = validate(UnitIn, payload)
    if body is None:
        return await _units_page(request, site_id, errors, payload, 400)
    await _catalog(request).create_unit(_who(request), site_id, body.model_dump())
    return redirect(f"/sites/{site_id}/units", done="saved")


@page
async def unit_update(request: Request) -> Response:
    cat, who = _catalog(request), _who(request)
    unit = await cat.get_unit(who, request.path_params["unit_id"])
    form = await request.form()
    payload = {"name": str(form.get("name", "")).strip(), "phone": str(form.get("phone", "")).strip()}
    body, errors = validate(UnitIn, payload)
    if body is None:
        errors = {f"unit{unit['id']}.{k}": v for k, v in errors.items()}
        return await _units_page(request, unit["site_id"], errors, {"name": "", "phone": ""}, 400)
    await cat.update_unit(who, unit["id"], body.model_dump())
    return redirect(f"/sites/{unit['site_id']}/units", done="saved")


@page
async def unit_delete(request: Request) -> Response:
    cat, who = _catalog(request), _who(request)
    unit = await cat.get_unit(who, request.path_params["unit_id"])
    await cat.delete_unit(who, unit["id"])
    return redirect(f"/sites/{unit['site_id']}/units", done="deleted")


# -- blacklist --------------------------------------------------------------------------------------------


async def _blacklist_page(request: Request, site_id: int, **extra: Any) -> Response:
    cat, who = _catalog(request), _who(request)
    site = await cat.get_site(who, site_id)
    entries = await cat.list_blacklist(who, site_id)
    context = {"nav": "sites", "site": site, "entries": entries, "result": None, "pasted": ""}
    context.update(extra)
    return render(request, "blacklist.html", context)


@page
async def blacklist_page(request: Request) -> Response:
    return await _blacklist_page(request, request.path_params["site_id"])


@page
async def blacklist_add(request: Request) -> Response:
    site_id = request.path_params["site_id"]
    await _catalog(request).get_site(_who(request), site_id)
    form = await request.form()
    parsed = parse_phone_lines(form.get("phones"))
    added = await _catalog(request).add_blacklist_bulk(_who(request), site_id, parsed.phones) if parsed.phones else 0
    result = {"added": added, "duplicates": len(parsed.phones) - added, "invalid": parsed.invalid}
    # Answer with the page itself (not a redirect) so the invalid lines stay in the box to be fixed.
    return await _blacklist_page(request, site_id, result=result, pasted="\n".join(t for _, t, _ in parsed.invalid))


@page
async def blacklist_delete(request: Request) -> Response:
    cat, who = _catalog(request), _who(request)
    entry_id = request.path_params["entry_id"]
    form = await request.form()
    site = str(form.get("site", ""))
    site_id = parse_id(site) or 0  # only where to go back to; the delete checks tenancy itself
    await cat.delete_blacklist(who, entry_id)
    return redirect(f"/sites/{site_id}/blacklist", done="deleted") if site_id else redirect("/sites")


routes = [
    Route("/sites", sites_page, methods=["GET"]),
    Route("/sites/new", site_new, methods=["GET"]),
    Route("/sites/new", site_create, methods=["POST"]),
    Route("/sites/{site_id:int}", site_page, methods=["GET"]),
    Route("/sites/{site_id:int}/edit", site_edit, methods=["GET"]),
    Route("/sites/{site_id:int}/edit", site_update, methods=["POST"]),
    Route("/sites/{site_id:int}/delete", site_delete, methods=["POST"]),
    Route("/sites/{site_id:int}/widgets/new", widget_new, methods=["GET"]),
    Route("/sites/{site_id:int}/widgets/new", widget_create, methods=["POST"]),
    Route("/widgets/{widget_id:int}", widget_page, methods=["GET"]),
    Route("/widgets/{widget_id:int}", widget_update, methods=["POST"]),
    Route("/widgets/{widget_id:int}/delete", widget_delete, methods=["POST"]),
    Route("/sites/{site_id:int}/units", units_page, methods=["GET"]),
    Route("/sites/{site_id:int}/units", unit_create, methods=["POST"]),
    Route("/units/{unit_id:int}", unit_update, methods=["POST"]),
    Route("/units/{unit_id:int}/delete", unit_delete, methods=["POST"]),
    Route("/sites/{site_id:int}/blacklist", blacklist_page, methods=["GET"]),
    Route("/sites/{site_id:int}/blacklist", blacklist_add, methods=["POST"]),
    Route("/blacklist/{entry_id:int}/delete", blacklist_delete, methods=["POST"]),
]
