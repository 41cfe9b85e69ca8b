"""Right before dialling (DESIGN §7): a request that may no longer be called is withdrawn with no attempt;
billed time runs from the bridge to the first hang-up."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from perezvon.calls.dialer.simulated import SimulatedDialer
from perezvon.store.tables import callback_requests

from .test_engine import provision


async def _accepted_earlier(eng, first: int, phone: str) -> int:  # type: ignore[no-untyped-def]
    """A copy of request ``first``, pending, put in directly: as if accepted before the site's rules changed."""
    now = datetime.now(UTC)
    async with eng.db.write() as conn:
        row = (await conn.execute(select(callback_requests).where(callback_requests.c.id == first))).mappings().one()
        values = {k: v for k, v in row.items() if k != "id"}
        values.update(
            phone=phone,
            status="pending",
            attempts_made=0,
            next_attempt_at=now,
            due_at=now,
            finished_at=None,
            claimed_by=None,
            claimed_until=None,
        )
        return int((await conn.execute(callback_requests.insert().values(**values))).inserted_primary_key[0])


@pytest.mark.parametrize("change", ["blacklisted", "country no longer allowed"])
async def test_a_number_no_longer_allowed_is_not_called(engine_factory, change: str) -> None:  # type: ignore[no-untyped-def]
    async with engine_factory(talk_s=0.1) as eng:
        site, _ = await provision(eng)
        with eng.bus.subscribe() as events:
            first = await eng.create("my_form_1", "79001234567", site["siteKey"])
            assert await eng.wait_final(events, {first}) == {first: "completed"}
            if change == "blacklisted":
                await eng.admin.post(f"/sites/{site['id']}/blacklist", {"phone": "79001112233"})
            else:
                await eng.admin.patch(f"/sites/{site['id']}", {"allowedCountries": ["KZ"]})
            late = await _accepted_earlier(eng, first, "79001112233")
            eng.runtime.worker.wake()
            final = await eng.wait_final(events, {late})
        assert final == {late: "cancelled"}
        got = await eng.request(late)
        assert got["attempts"] == [] and got["attemptsMade"] == 0 and got["finishedAt"] is not None
        deliveries = await eng.admin.get(f"/sites/{site['id']}/webhook-deliveries")  # none configured: none queued
        assert deliveries["total"] == 0


async def test_billing_stops_at_the_first_hang_up(engine_factory, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    bridge = SimulatedDialer.bridge

    async def slow_to_finish(self, a, b, record_to=None):  # type: ignore[no-untyped-def]
        await bridge(self, a, b, record_to)
        await asyncio.sleep(1.2)  # the BYE to the other side and a WAV write taking their time

    monkeypatch.setattr(SimulatedDialer, "bridge", slow_to_finish)
    async with engine_factory(talk_s=0.3) as eng:
        site, _ = await provision(eng)
        with eng.bus.subscribe() as events:
            rid = await eng.create("my_form_1", "79001234567", site["siteKey"])
            assert await eng.wait_final(events, {rid}) == {rid: "completed"}
        [attempt] = (await eng.request(rid))["attempts"]
        assert attempt["outcome"] == "connected" and attempt["billedSeconds"] == 1  # 0.3 s talked, not 1.5 s
