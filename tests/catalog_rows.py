"""Sites and widgets made through the Catalog, the way the admin API makes them (for store and service tests)."""

from __future__ import annotations

from typing import Any

from perezvon.services.accounts import Principal
from perezvon.services.catalog import Catalog
from perezvon.shapes.schemas import SiteIn, WidgetIn


async def add_site(catalog: Catalog, who: Principal, name: str = "Test site") -> int:
    values = SiteIn.model_validate({"name": name, "timezone": "Europe/Moscow"}).model_dump()
    return int((await catalog.create_site(who, values))["id"])


async def add_widget(catalog: Catalog, who: Principal, site_id: int, route_key: str, **extra: Any) -> int:
    body = WidgetIn.model_validate({"routeKey": route_key, **extra})
    values = {**body.model_dump(), "callback": body.callback.model_dump(by_alias=True)}
    return int((await catalog.create_widget(who, site_id, values))["id"])
