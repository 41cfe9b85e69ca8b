"""Migration 0012: widgets saved with a fixed offset move to their site's IANA zone, and back."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import select

from catalog_rows import add_site, add_widget
from perezvon.domain.schedule import offset_of_zone
from perezvon.services.accounts import OPERATOR
from perezvon.services.catalog import Catalog
from perezvon.store.db import Database
from perezvon.store.migrate import alembic_config
from perezvon.store.snapshots import SnapshotCache
from perezvon.store.tables import sites, widgets

LONG_ZONE = "America/Argentina/ComodRivadavia"  # 32 characters: more than the old column held


async def _seed(url: str) -> tuple[int, int]:
    db = Database(url)
    try:
        catalog = Catalog(db, SnapshotCache(db))
        site_id = await add_site(catalog, OPERATOR, "Buenos Aires")
        widget_id = await add_widget(
            catalog, OPERATOR, site_id, "old", schedule={"utcTimezone": "UTC+03:00", "hours": []}
        )
        async with db.write() as conn:
            await conn.execute(sites.update().where(sites.c.id == site_id).values(timezone=LONG_ZONE))
        return site_id, widget_id
    finally:
        await db.dispose()


async def _zone(url: str, widget_id: int) -> str:
    db = Database(url)
    try:
        async with db.read() as conn:
            query = select(widgets.c.schedule_timezone).where(widgets.c.id == widget_id)
            return str((await conn.execute(query)).scalar_one())
    finally:
        await db.dispose()


def test_existing_widgets_take_their_sites_zone_and_downgrade_to_its_offset(database_url: str) -> None:
    config = alembic_config(database_url)
    before = ScriptDirectory.from_config(config).get_revision("0012").down_revision
    command.downgrade(config, str(before))
    _, widget_id = asyncio.run(_seed(database_url))
    assert asyncio.run(_zone(database_url, widget_id)) == "UTC+03:00"

    command.upgrade(config, "head")
    assert asyncio.run(_zone(database_url, widget_id)) == LONG_ZONE

    command.downgrade(config, str(before))
    assert asyncio.run(_zone(database_url, widget_id)) == offset_of_zone(LONG_ZONE, datetime.now(UTC))
    command.upgrade(config, "head")
