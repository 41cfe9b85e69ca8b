"""Cabinet test helpers (imported as ``web.cabinet_support``): named accounts (alice owns things, bob
must not see them), logged-in clients, and visitor requests made through the real public API."""

from __future__ import annotations

import re
from typing import Any

import httpx

from perezvon.services.accounts import Principal, create_account, create_token
from perezvon.shapes.schemas import SiteIn, WidgetIn

PASSWORD = "correct-horse-battery"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, "no CSRF field on the page"
    return match.group(1)


class Cabinet:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.app = client.app  # type: ignore[attr-defined]
        self.state = self.app.state
        self.clients: list[httpx.AsyncClient] = []
        self.accounts: dict[str, int] = {}

    def new_client(self) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app, client=("203.0.113.9", 50001))
        client = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        self.clients.append(client)
        return client

    async def account(self, name: str) -> int:
        account_id = await create_account(self.state.db, f"{name}@example.com", PASSWORD)
        self.accounts[name] = account_id
        return account_id

    async def login(self, name: str) -> httpx.AsyncClient:
        if name not in self.accounts:
            await self.account(name)
        client = self.new_client()
        page = await client.get("/cabinet/login")
        response = await client.post(
            "/cabinet/login",
            data={"email": f"{name}@example.com", "password": PASSWORD, "csrf": csrf_of(page.text)},
        )
        assert response.status_code == 303, response.text
        return client

    async def csrf(self, client: httpx.AsyncClient, path: str = "/cabinet/tokens") -> str:
        response = await client.get(path)
        assert response.status_code == 200, response.text
        return csrf_of(response.text)

    async def site(self, owner: str, **values: Any) -> dict[str, Any]:
        """A site of ``owner``'s, made as the admin API makes one (``values`` in the API's camelCase)."""
        who = Principal(account_id=self.accounts[owner])
        body = SiteIn.model_validate({"name": f"{owner}'s shop", "timezone": "Europe/Moscow", **values})
        return await self.state.catalog.create_site(who, body.model_dump(exclude={"account_id", "trunk"}))

    async def widget(self, owner: str, site_id: int, route_key: str = "my_form_1", **values: Any) -> dict[str, Any]:
        who = Principal(account_id=self.accounts[owner])
        body = WidgetIn.model_validate({"routeKey": route_key, **values})
        made = body.model_dump()
        made["callback"] = body.callback.model_dump(by_alias=True)
        return await self.state.catalog.create_widget(who, site_id, made)

    async def unit(self, owner: str, site_id: int, name: str = "Sales", phone: str = "79990000020") -> dict:
        who = Principal(account_id=self.accounts[owner])
        return await self.state.catalog.create_unit(who, site_id, {"name": name, "phone": phone})

    async def visitor_request(
        self,
        site: dict[str, Any],
        *,
        route_key: str = "my_form_1",
        phone: str = "79001234567",
        fields: list | None = None,
        tags: list | None = None,
        session: dict | None = None,
        unit_id: int | None = None,
    ) -> int:
        """A request as a website sends it: a tracking session first, then createRequest."""
        body: dict[str, Any] = {
            "site": site["site_key"],
            "routeKey": route_key,
            "phone": phone,
            "fields": fields or [{"name": "Name", "value": "Ivan"}],
            "tags": tags or [],
        }
        if unit_id is not None:
            body["unitId"] = unit_id
        if session is not None:
            made = await self.client.post("/api/widget/v1/session", json={"site": site["site_key"], **session})
            assert made.status_code == 200, made.text
            body["sessionId"] = made.json()["sessionId"]
        response = await self.client.post("/api/widget/v1/requests", json=body)
        assert response.status_code == 200, response.text
        return int(response.json()["callbackRequestId"])

    async def server_request(self, owner: str, body: dict[str, Any]) -> int:
        """A request through the server-side twin (it carries callUrl and UTM values on the request)."""
        token = await create_token(self.state.db, self.accounts[owner], "test")
        response = await self.client.post(
            "/widget-service/v1/api/widget-request/user-form/create", json=body, headers={"Access-Token": token}
        )
        assert response.status_code == 200, response.text
        return int(response.json()["data"]["widgetRequestId"])
