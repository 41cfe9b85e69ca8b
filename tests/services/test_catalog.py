"""The twin's routeKey lookup: the caller's sites only, an enabled widget before a disabled one."""

from __future__ import annotations

from typing import Any

from perezvon.services.accounts import OPERATOR, Principal, create_account
from perezvon.services.catalog import Catalog
from perezvon.shapes.schemas import SiteIn, WidgetIn
from perezvon.store.db import Database
from perezvon.store.snapshots import SnapshotCache


async def _site(catalog: Catalog, who: Principal, name: str) -> int:
    values = SiteIn.model_validate({"name": name, "timezone": "Europe/Moscow"}).model_dump()
    return int((await catalog.create_site(who, values))["id"])


async def _widget(catalog: Catalog, who: Principal, site_id: int, route_key: str, **extra: Any) -> None:
    body = WidgetIn.model_validate({"routeKey": route_key, **extra})
    values = {**body.model_dump(), "callback": body.callback.model_dump(by_alias=True)}
    await catalog.create_widget(who, site_id, values)


async def test_it_finds_the_site_of_a_route_key_within_the_callers_account(db: Database) -> None:
    catalog = Catalog(db, SnapshotCache(db))
    alice = Principal(account_id=await create_account(db, "alice@example.com", None))
    bob = Principal(account_id=await create_account(db, "bob@example.com", None))
    old_site = await _site(catalog, alice, "old shop")
    new_site = await _site(catalog, alice, "new shop")
    bobs_site = await _site(catalog, bob, "bob's shop")
    await _widget(catalog, alice, old_site, "order", enabled=False)
    await _widget(catalog, alice, new_site, "order")
    await _widget(catalog, bob, bobs_site, "bobs_form")

    assert await catalog.site_for_route_key(alice, "order") == new_site  # enabled wins over older
    assert await catalog.site_for_route_key(OPERATOR, "order") == new_site
    assert await catalog.site_for_route_key(bob, "order") is None  # alice's widgets are not bob's
    assert await catalog.site_for_route_key(alice, "bobs_form") is None
    assert await catalog.site_for_route_key(OPERATOR, "bobs_form") == bobs_site
    assert await catalog.site_for_route_key(alice, "no_such_form") is None


async def test_among_equally_enabled_widgets_the_oldest_wins(db: Database) -> None:
    catalog = Catalog(db, SnapshotCache(db))
    alice = Principal(account_id=await create_account(db, "alice@example.com", None))
    first, second = await _site(catalog, alice, "first"), await _site(catalog, alice, "second")
    await _widget(catalog, alice, second, "order")  # the older widget, on the newer site
    await _widget(catalog, alice, first, "order")

    assert await catalog.site_for_route_key(alice, "order") == second
