"""Calls to the public widget API as window.ctw makes them."""

from __future__ import annotations

from typing import Any

import httpx

ROUTE = "/api/widget/v1/route-key-data"
CREATE = "/api/widget/v1/requests"
SESSION = "/api/widget/v1/session"


async def route_key_data(client: httpx.AsyncClient, site_key: str, route_key: Any = "my_form_1", **extra: Any):
    return await client.post(ROUTE, json={"site": site_key, "routeKey": route_key, **extra})


async def create(client: httpx.AsyncClient, site_key: str, **body: Any) -> httpx.Response:
    payload = {"site": site_key, "routeKey": "my_form_1", "phone": "79001234567", "fields": [], **body}
    return await client.post(CREATE, content=__import__("json").dumps(payload), headers=body.pop("headers", {}))
