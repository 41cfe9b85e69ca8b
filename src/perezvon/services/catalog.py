"""Sites, widgets, units and blacklists: the configuration admins manage, scoped to their account.

Used by the admin REST API and the cabinet alike. Every read and write checks the principal's tenancy;
an object of another account is reported as not found (its existence is not disclosed).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Table, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from ..clock import utcnow
from ..domain.destinations import default_countries
from ..domain.quiet_hours import DEFAULT_QUIET_HOURS
from ..domain.schedule import ALL_HOURS
from ..store import ledger
from ..store.db import Database
from ..store.snapshots import SnapshotCache
from ..store.tables import accounts, blacklist, sites, units, widgets
from .accounts import Principal


class NotFound(LookupError):
    pass


class Conflict(ValueError):
    pass


class Forbidden(PermissionError):
    pass


# A site's money: its minutes and its daily API points. Only an operator token sets them (DESIGN §7).
MONEY_FIELDS = {"minutes_balance": "minutesBalance", "api_points_per_day": "apiPointsPerDay"}
DEFAULT_MINUTES = 1000
DEFAULT_POINTS_PER_DAY = 50_000


def require_operator_for_money(who: Principal, given: Iterable[str]) -> None:
    """Refuse, changing nothing, an account token that sets a balance or a points budget."""
    names = [MONEY_FIELDS[name] for name in MONEY_FIELDS if name in set(given)]
    if names and not who.is_operator:
        raise Forbidden(f"Only an operator token may set {' and '.join(names)}")


class Catalog:
    def __init__(self, db: Database, snapshots: SnapshotCache) -> None:
        self.db = db
        self.snapshots = snapshots

    # -- sites ------------------------------------------------------------------------------------------

    async def list_sites(self, who: Principal) -> list[dict[str, Any]]:
        query = select(sites).order_by(sites.c.id)
        if not who.is_operator:
            query = query.where(sites.c.account_id == who.account_id)
        async with self.db.read() as conn:
            return [dict(r) for r in (await conn.execute(query)).mappings()]

    async def get_site(self, who: Principal, site_id: int) -> dict[str, Any]:
        async with self.db.read() as conn:
            row = (await conn.execute(select(sites).where(sites.c.id == site_id))).mappings().first()
        if row is None or not who.owns(row["account_id"]):
            raise NotFound(f"site {site_id}")
        return dict(row)

    async def create_site(self, who: Principal, values: dict[str, Any]) -> dict[str, Any]:
        """A new site; its starting balance is the first entry of its ledger. An account's site gets the
        default minutes and points whatever ``values`` say (callers refuse a body that sets them)."""
        account_id = values.pop("account_id", None) if who.is_operator else who.account_id
        values.pop("account_id", None)
        if not who.is_operator:
            values.update(minutes_balance=DEFAULT_MINUTES, api_points_per_day=DEFAULT_POINTS_PER_DAY)
        if not values.get("allowed_countries"):  # the country of the site's zone (Europe/Moscow → RU)
            values["allowed_countries"] = default_countries(values.get("timezone") or "UTC")
        values.setdefault("minutes_balance", DEFAULT_MINUTES)
        values.setdefault("api_points_per_day", DEFAULT_POINTS_PER_DAY)
        values.setdefault("api_point_costs", None)
        values["api_point_costs"] = values["api_point_costs"] or {}
        values["trunk"] = values.get("trunk")
        async with self.db.write() as conn:
            if account_id is not None and (
                await conn.execute(select(accounts.c.id).where(accounts.c.id == account_id))
            ).scalar() is None:
                raise NotFound(f"account {account_id}")
            result = await conn.execute(
                insert(sites).values(
                    account_id=account_id,
                    site_key=secrets.token_hex(8),
                    webhook_secret=secrets.token_hex(24),
                    created_at=utcnow(),
                    **values,
                )
            )
            site_id = int(result.inserted_primary_key[0])
            await ledger.record(conn, site_id, values["minutes_balance"], ledger.TOPUP, utcnow(),
                                note="starting balance", move_balance=False)
        self.snapshots.invalidate(site_id)
        return await self.get_site(who, site_id)

    async def update_site(self, who: Principal, site_id: int, values: dict[str, Any]) -> dict[str, Any]:
        await self.get_site(who, site_id)
        require_operator_for_money(who, values)
        if values:
            async with self.db.write() as conn:
                balance = values.pop("minutes_balance", None)
                if balance is not None:
                    # Setting the balance is an operator's adjustment by the difference, read and written
                    # in this one transaction so a call charged meanwhile is not overwritten.
                    current = (await conn.execute(select(sites.c.minutes_balance).where(sites.c.id == site_id)
                                                  .with_for_update())).scalar() or 0
                    if balance != current:
                        await ledger.record(conn, site_id, balance - current, ledger.ADJUSTMENT, utcnow(),
                                            note="balance set by an operator")
                if values:
                    await conn.execute(update(sites).where(sites.c.id == site_id).values(**values))
        self.snapshots.invalidate(site_id)
        return await self.get_site(who, site_id)

    async def delete_site(self, who: Principal, site_id: int) -> None:
        await self.get_site(who, site_id)
        async with self.db.write() as conn:
            await conn.execute(delete(sites).where(sites.c.id == site_id))
        self.snapshots.invalidate(site_id)

    # -- widgets ----------------------------------------------------------------------------------------

    # -- a site's children: widgets, units, blacklist entries --------------------------------------------

    async def _children(self, who: Principal, table: Table, site_id: int) -> list[dict[str, Any]]:
        await self.get_site(who, site_id)
        async with self.db.read() as conn:
            rows = await conn.execute(select(table).where(table.c.site_id == site_id).order_by(table.c.id))
            return [dict(r) for r in rows.mappings()]

    async def _child(self, who: Principal, table: Table, child_id: int, label: str) -> dict[str, Any]:
        """One row of a site's table, if the principal owns its site; else NotFound, saying nothing more."""
        async with self.db.read() as conn:
            row = (await conn.execute(select(table).where(table.c.id == child_id))).mappings().first()
        if row is None:
            raise NotFound(f"{label} {child_id}")
        try:
            await self.get_site(who, row["site_id"])
        except NotFound:
            raise NotFound(f"{label} {child_id}") from None
        return dict(row)

    async def list_widgets(self, who: Principal, site_id: int) -> list[dict[str, Any]]:
        return await self._children(who, widgets, site_id)

    async def get_widget(self, who: Principal, widget_id: int) -> dict[str, Any]:
        return await self._child(who, widgets, widget_id, "widget")

    async def create_widget(self, who: Principal, site_id: int, values: dict[str, Any]) -> dict[str, Any]:
        site = await self.get_site(who, site_id)
        # A widget made with only a routeKey works around the clock, in the site's zone.
        schedule = values.pop("schedule", None) or {}
        row = {"quiet_hours": DEFAULT_QUIET_HOURS, **_widget_columns(values, schedule)}
        row.setdefault("schedule_timezone", site["timezone"])
        row.setdefault("schedule_hours", sorted(ALL_HOURS))
        try:
            async with self.db.write() as conn:
                result = await conn.execute(insert(widgets).values(site_id=site_id, created_at=utcnow(), **row))
                widget_id = int(result.inserted_primary_key[0])
        except IntegrityError as exc:
            raise Conflict(f"routeKey {values['route_key']!r} already exists on this site") from exc
        self.snapshots.invalidate(site_id)
        return await self.get_widget(who, widget_id)

    async def update_widget(self, who: Principal, widget_id: int, values: dict[str, Any]) -> dict[str, Any]:
        widget = await self.get_widget(who, widget_id)
        schedule = values.pop("schedule", None)
        row = _widget_columns(values, schedule)
        if row:
            try:
                async with self.db.write() as conn:
                    await conn.execute(update(widgets).where(widgets.c.id == widget_id).values(**row))
            except IntegrityError as exc:
                raise Conflict(f"routeKey {values.get('route_key')!r} already exists on this site") from exc
        self.snapshots.invalidate(widget["site_id"])
        return await self.get_widget(who, widget_id)

    async def delete_widget(self, who: Principal, widget_id: int) -> None:
        widget = await self.get_widget(who, widget_id)
        async with self.db.write() as conn:
            await conn.execute(delete(widgets).where(widgets.c.id == widget_id))
        self.snapshots.invalidate(widget["site_id"])

    # -- units ------------------------------------------------------------------------------------------

    async def list_units(self, who: Principal, site_id: int) -> list[dict[str, Any]]:
        return await self._children(who, units, site_id)

    async def get_unit(self, who: Principal, unit_id: int) -> dict[str, Any]:
        return await self._child(who, units, unit_id, "unit")

    async def create_unit(self, who: Principal, site_id: int, values: dict[str, Any]) -> dict[str, Any]:
        await self.get_site(who, site_id)
        async with self.db.write() as conn:
            result = await conn.execute(insert(units).values(site_id=site_id, created_at=utcnow(), **values))
            unit_id = int(result.inserted_primary_key[0])
        self.snapshots.invalidate(site_id)
        return await self.get_unit(who, unit_id)

    async def update_unit(self, who: Principal, unit_id: int, values: dict[str, Any]) -> dict[str, Any]:
        unit = await self.get_unit(who, unit_id)
        if values:
            async with self.db.write() as conn:
                await conn.execute(update(units).where(units.c.id == unit_id).values(**values))
        self.snapshots.invalidate(unit["site_id"])
        return await self.get_unit(who, unit_id)

    async def delete_unit(self, who: Principal, unit_id: int) -> None:
        unit = await self.get_unit(who, unit_id)
        async with self.db.write() as conn:
            await conn.execute(delete(units).where(units.c.id == unit_id))
        self.snapshots.invalidate(unit["site_id"])

    # -- blacklist --------------------------------------------------------------------------------------

    async def list_blacklist(self, who: Principal, site_id: int) -> list[dict[str, Any]]:
        await self.get_site(who, site_id)
        async with self.db.read() as conn:
            rows = await conn.execute(select(blacklist).where(blacklist.c.site_id == site_id).order_by(blacklist.c.id))
            return [dict(r) for r in rows.mappings()]

    async def add_blacklist(self, who: Principal, site_id: int, phone: str, comment: str = "") -> dict[str, Any]:
        await self.get_site(who, site_id)
        try:
            async with self.db.write() as conn:
                result = await conn.execute(
                    insert(blacklist).values(site_id=site_id, phone=phone, comment=comment, created_at=utcnow())
                )
                entry_id = int(result.inserted_primary_key[0])
        except IntegrityError as exc:
            raise Conflict(f"{phone} is already blacklisted on this site") from exc
        self.snapshots.invalidate(site_id)
        async with self.db.read() as conn:
            return dict((await conn.execute(select(blacklist).where(blacklist.c.id == entry_id))).mappings().one())

    async def add_blacklist_bulk(self, who: Principal, site_id: int, phones: list[str]) -> int:
        """Add many numbers at once, skipping those already listed; returns how many were added."""
        await self.get_site(who, site_id)
        async with self.db.write() as conn:
            existing = set(
                (await conn.execute(select(blacklist.c.phone).where(blacklist.c.site_id == site_id))).scalars()
            )
            fresh = sorted(set(phones) - existing)
            if fresh:
                now = utcnow()
                await conn.execute(
                    insert(blacklist),
                    [{"site_id": site_id, "phone": p, "comment": "", "created_at": now} for p in fresh],
                )
        self.snapshots.invalidate(site_id)
        return len(fresh)

    async def delete_blacklist(self, who: Principal, entry_id: int) -> None:
        entry = await self._child(who, blacklist, entry_id, "blacklist entry")
        async with self.db.write() as conn:
            await conn.execute(delete(blacklist).where(blacklist.c.id == entry_id))
        self.snapshots.invalidate(entry["site_id"])

    async def site_for_route_key(self, who: Principal, route_key: str) -> int | None:
        """The id of the principal's site that has a widget with ``route_key``, enabled ones first.

        A routeKey is unique per site only, so an operator (or an account with several sites) may match
        more than one; the enabled widget, then the oldest, wins.
        """
        query = (
            select(widgets.c.site_id)
            .join(sites, sites.c.id == widgets.c.site_id)
            .where(widgets.c.route_key == route_key)
        )
        if not who.is_operator:
            query = query.where(sites.c.account_id == who.account_id)
        async with self.db.read() as conn:
            return (await conn.execute(query.order_by(widgets.c.enabled.desc(), widgets.c.id).limit(1))).scalar()

    async def count_sites(self) -> int:
        async with self.db.read() as conn:
            return int((await conn.execute(select(func.count()).select_from(sites))).scalar() or 0)


def _widget_columns(values: dict[str, Any], schedule: dict[str, Any] | None) -> dict[str, Any]:
    """Flatten the API's nested widget shape onto table columns (only the keys given)."""
    row: dict[str, Any] = {}
    for key in ("route_key", "name", "enabled", "operator_phones", "callback", "ui", "analytics",
                "voicemail_detection"):
        if key in values and values[key] is not None:
            row[key] = values[key]
    if "quiet_hours" in values:  # given as None: the widget has none
        row["quiet_hours"] = values["quiet_hours"]
    if values.get("collect_non_working_requests") is not None:
        row["collect_non_working"] = values["collect_non_working_requests"]
    throttle = values.get("throttle")
    if throttle is not None:
        row["throttle_user_timeout_s"] = throttle["user_timeout_seconds"]
        row["throttle_max_per_phone"] = throttle["max_requests_per_phone"]
        row["throttle_period_s"] = throttle["period_seconds"]
    if schedule:
        # timezone (IANA) wins; a utcTimezone sent alone keeps that fixed offset; neither: unchanged
        zone = schedule.get("timezone") or schedule.get("utc_timezone")
        if zone:
            row["schedule_timezone"] = zone
        if schedule.get("hours") is not None:
            row["schedule_hours"] = sorted({(c["day_of_week"], c["hour"]) for c in schedule["hours"]})
    return row
