"""The twin's routeKey lookup: the caller's sites only, an enabled widget before a disabled one."""

from __future__ import annotations

from catalog_rows import add_site, add_widget
from perezvon.services.accounts import OPERATOR, Principal, create_account
from perezvon.services.catalog import Catalog
from perezvon.store.db import Database
from perezvon.store.snapshots import SnapshotCache


async def test_it_finds_the_site_of_a_route_key_within_the_callers_account(db: Database) -> None:
    catalog = Catalog(db, SnapshotCache(db))
    alice = Principal(account_id=await create_account(db, "alice@example.com", None))
    bob = Principal(account_id=await create_account(db, "bob@example.com", None))
    old_site = await add_site(catalog, alice, "old shop")
    new_site = await add_site(catalog, alice, "new shop")
    bobs_site = await add_site(catalog, bob, "bob's shop")
    await add_widget(catalog, alice, old_site, "order", enabled=False)
    await add_widget(catalog, alice, new_site, "order")
    await add_widget(catalog, bob, bobs_site, "bobs_form")

    assert await catalog.site_for_route_key(alice, "order") == new_site  # enabled wins over older
    assert await catalog.site_for_route_key(OPERATOR, "order") == new_site
    assert await catalog.site_for_route_key(bob, "order") is None  # alice's widgets are not bob's
    assert await catalog.site_for_route_key(alice, "bobs_form") is None
    assert await catalog.site_for_route_key(OPERATOR, "bobs_form") == bobs_site
    assert await catalog.site_for_route_key(alice, "no_such_form") is None


async def test_among_equally_enabled_widgets_the_oldest_wins(db: Database) -> None:
    catalog = Catalog(db, SnapshotCache(db))
    alice = Principal(account_id=await create_account(db, "alice@example.com", None))
    first, second = await add_site(catalog, alice, "first"), await add_site(catalog, alice, "second")
    await add_widget(catalog, alice, second, "order")  # the older widget, on the newer site
    await add_widget(catalog, alice, first, "order")

    assert await catalog.site_for_route_key(alice, "order") == second
