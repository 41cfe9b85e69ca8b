"""Create (or find again) the demo account, site, widget and unit: running the demo twice is safe."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from ..clock import utcnow
from ..domain.schedule import ALL_HOURS
from ..services.accounts import create_account, create_token
from ..settings import Settings
from ..store import ledger
from ..store.db import Database
from ..store.tables import sites, units, widgets

DEMO_SITE_KEY = "demo"
DEMO_EMAIL = "demo@perezvon.local"
DEMO_PASSWORD = "perezvon-demo"


async def seed_demo(settings: Settings, base_url: str) -> dict[str, Any]:
    db = Database(settings.database_url)
    try:
        account_id = await create_account(db, DEMO_EMAIL, DEMO_PASSWORD)
        async with db.write() as conn:
            site_id = (await conn.execute(select(sites.c.id).where(sites.c.site_key == DEMO_SITE_KEY))).scalar()
            if site_id is None:
                result = await conn.execute(
                    sites.insert().values(
                        account_id=account_id,
                        name="Demo site",
                        site_key=DEMO_SITE_KEY,
                        allowed_origins=[],
                        timezone="Europe/Moscow",
                        minutes_balance=1000,
                        callback_active=True,
                        api_points_per_day=50_000,
                        api_point_costs={},
                        non_working_policy="finish",
                        record_calls=False,
                        webhook_urls=[],
                        # The demo page runs the reference's examples again and again with the same numbers
                        # on the simulated line: no daily cap per number there.
                        max_requests_per_number_per_day=0,
                        webhook_secret="demo-webhook-secret",
                        created_at=utcnow(),
                    )
                )
                site_id = int(result.inserted_primary_key[0])
                await ledger.record(conn, site_id, 1000, ledger.TOPUP, utcnow(), note="starting balance",
                                    move_balance=False)
                await conn.execute(
                    widgets.insert().values(
                        site_id=site_id,
                        route_key="my_form_1",
                        name="Callback form",
                        enabled=True,
                        operator_phones=["79990000010"],
                        schedule_timezone="Europe/Moscow",
                        # The demo works around the clock (DESIGN §5).
                        schedule_hours=sorted(ALL_HOURS),
                        collect_non_working=True,
                        throttle_user_timeout_s=0,
                        throttle_max_per_phone=20,
                        throttle_period_s=3600,
                        callback={
                            "announcement": True,
                            "operatorConfirm": False,
                            "ringTimeoutSeconds": 30,
                            "redialAttempts": 2,
                            "redialIntervalSeconds": 10,
                            "language": "en",
                        },
                        created_at=utcnow(),
                    )
                )
                await conn.execute(
                    units.insert().values(
                        site_id=site_id, name="Sales department", phone="79990000020", created_at=utcnow()
                    )
                )
            else:
                # A demo that ran dry keeps working: top the balance up on every start.
                await conn.execute(
                    update(sites)
                    .where(sites.c.id == site_id)
                    .values(callback_active=True, max_requests_per_number_per_day=0)
                )
                balance = (await conn.execute(select(sites.c.minutes_balance).where(sites.c.id == site_id))).scalar()
                if balance < 1000:
                    await ledger.record(conn, site_id, 1000 - balance, ledger.TOPUP, utcnow(), note="demo top-up")
            unit_id = (await conn.execute(select(units.c.id).where(units.c.site_id == site_id))).scalar()
        token = await create_token(db, account_id, "demo")
        return {
            "email": DEMO_EMAIL,
            "password": DEMO_PASSWORD,
            "token": token,
            "site_key": DEMO_SITE_KEY,
            "site_id": site_id,
            "unit_id": unit_id,
        }
    finally:
        await db.dispose()
