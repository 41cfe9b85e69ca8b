"""The engine on the simulated line, against SQLite and PostgreSQL: outcomes, billing, redials, units, schedule."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from perezvon.store.tables import call_attempts, callback_requests, sites

ALWAYS = {"utcTimezone": "UTC+00:00", "hours": [{"dayOfWeek": d, "hour": h} for d in range(1, 8) for h in range(24)]}


async def tune_widget(eng, site_id: int, widget_id: int, **callback) -> None:
    """Set callback settings below the API's minimums (ring timeout, redial interval) so tests run fast."""
    from perezvon.store.tables import widgets

    async with eng.db.write() as conn:
        row = (await conn.execute(select(widgets.c.callback).where(widgets.c.id == widget_id))).scalar()
        await conn.execute(update(widgets).where(widgets.c.id == widget_id).values(callback={**row, **callback}))
    eng.runtime.snapshots.invalidate(site_id)


async def provision(eng, **callback):
    site, widget = await eng.admin.site_with_widget(
        operatorPhones=["79990000010", "79990000011"],
        schedule=ALWAYS,
        callback={"redialAttempts": 2, "redialIntervalSeconds": 10, "announcement": True, **callback},
    )
    return site, widget


async def test_it_calls_back_connects_bills_and_lowers_the_balance(engine_factory) -> None:
    async with engine_factory(talk_s=0.6) as eng:
        site, _ = await provision(eng)
        with eng.bus.subscribe() as events:
            rid = await eng.create("my_form_1", "79001234567", site["siteKey"],
                                   fields=[{"name": "Name", "value": "Ivan"}])
            assert (await eng.wait_final(events, {rid})) == {rid: "completed"}
        got = await eng.request(rid)
        assert got["status"] == "completed" and got["attemptsMade"] == 1
        [attempt] = got["attempts"]
        assert attempt["outcome"] == "connected"
        assert attempt["operatorPhone"] == "79990000010"
        assert attempt["billedSeconds"] == 1  # 0.6 s bridged, rounded up to a whole second
        moments = ["startedAt", "operatorAnsweredAt", "clientAnsweredAt", "endedAt"]
        assert [attempt[m] for m in moments] == sorted(attempt[m] for m in moments)
        assert got["finishedAt"] is not None and got["nextAttemptAt"] is None
        after = await eng.admin.get(f"/sites/{site['id']}")
        assert after["minutesBalance"] == site["minutesBalance"] - 1
        book = await eng.admin.get(f"/sites/{site['id']}/ledger")  # the charge is a row: the sum stays the balance
        assert [(e["kind"], e["minutes"], e["requestId"]) for e in book["items"]][0] == ("call", -1, rid)
        assert sum(e["minutes"] for e in book["items"]) == after["minutesBalance"]


async def test_it_passes_dialing_before_completed_and_publishes_each_change(engine_factory) -> None:
    async with engine_factory(talk_s=0.2) as eng:
        site, _ = await provision(eng)
        with eng.bus.subscribe() as events:
            rid = await eng.create("my_form_1", "79001234567", site["siteKey"])
            seen = []
            while not seen or seen[-1] not in ("completed", "failed"):
                event = await events.next(10)
                if event["requestId"] == rid:
                    seen.append(event["status"])
        assert seen[0] == "dialing" and seen[-1] == "completed"
        assert set(seen) == {"dialing", "completed"}


async def test_a_number_that_never_answers_fails_after_the_redials(engine_factory) -> None:
    async with engine_factory(talk_s=0.1) as eng:
        site, widget = await provision(eng)
        # Redials are 10 s apart at the least (API validation); make them immediate in the database
        # so the test does not wait: the engine reads the widget's settings on every decision.
        await tune_widget(eng, site["id"], widget["id"], redialIntervalSeconds=0, ringTimeoutSeconds=0.05)
        with eng.bus.subscribe() as events:
            rid = await eng.create("my_form_1", "79001234501", site["siteKey"])
            assert (await eng.wait_final(events, {rid})) == {rid: "failed"}
        got = await eng.request(rid)
        assert [a["outcome"] for a in got["attempts"]] == ["client_no_answer"] * 3  # 1 + 2 redials
        assert [a["billedSeconds"] for a in got["attempts"]] == [0, 0, 0]
        for earlier, later in zip(got["attempts"], got["attempts"][1:], strict=False):
            assert earlier["endedAt"] <= later["startedAt"]
        assert (await eng.admin.get(f"/sites/{site['id']}"))["minutesBalance"] == site["minutesBalance"]


async def test_busy_numbers_give_busy_outcomes(engine_factory) -> None:
    async with engine_factory() as eng:
        site, widget = await eng.admin.site_with_widget(
            operatorPhones=["79990000002"], schedule=ALWAYS, callback={"redialAttempts": 0})
        await eng.admin.post(f"/sites/{site['id']}/widgets", {
            "routeKey": "second", "operatorPhones": ["79990000010"], "schedule": ALWAYS,
            "callback": {"redialAttempts": 0}})
        with eng.bus.subscribe() as events:
            op_busy = await eng.create("my_form_1", "79001234567", site["siteKey"])
            client_busy = await eng.create("second", "79001234502", site["siteKey"])
            assert (await eng.wait_final(events, {op_busy, client_busy})) == {
                op_busy: "failed", client_busy: "failed"}
        assert [a["outcome"] for a in (await eng.request(op_busy))["attempts"]] == ["operator_busy"]
        assert [a["outcome"] for a in (await eng.request(client_busy))["attempts"]] == ["client_busy"]


async def test_a_request_for_a_unit_rings_the_units_phone(engine_factory) -> None:
    async with engine_factory() as eng:
        site, _ = await provision(eng)
        unit = await eng.admin.post(f"/sites/{site['id']}/units", {"name": "Sales", "phone": "79990000020"})
        with eng.bus.subscribe() as events:
            rid = await eng.create("my_form_1", "79001234567", site["siteKey"], unitId=unit["id"])
            await eng.wait_final(events, {rid})
        [attempt] = (await eng.request(rid))["attempts"]
        assert attempt["operatorPhone"] == "79990000020" and attempt["outcome"] == "connected"


async def test_the_next_operator_phone_is_tried_when_the_first_does_not_answer(engine_factory) -> None:
    async with engine_factory() as eng:
        site, widget = await eng.admin.site_with_widget(
            operatorPhones=["79990000001", "79990000010"], schedule=ALWAYS, callback={"redialAttempts": 0})
        await tune_widget(eng, site["id"], widget["id"], ringTimeoutSeconds=0.1)
        with eng.bus.subscribe() as events:
            rid = await eng.create("my_form_1", "79001234567", site["siteKey"])
            await eng.wait_final(events, {rid}, timeout=15)
        [attempt] = (await eng.request(rid))["attempts"]
        assert attempt["operatorPhone"] == "79990000010" and attempt["outcome"] == "connected"


async def test_a_scheduled_request_is_not_called_early(engine_factory) -> None:
    async with engine_factory() as eng:
        site, _ = await provision(eng)
        # scheduleTime has whole seconds in the call center's zone (UTC here): 2 s ahead at least.
        wanted = (datetime.now(UTC) + timedelta(seconds=2)).replace(microsecond=0) + timedelta(seconds=1)
        with eng.bus.subscribe() as events:
            rid = await eng.create("my_form_1", "79001234567", site["siteKey"],
                                   scheduleTime=wanted.strftime("%Y-%m-%d %H:%M:%S"))
            first = await events.next(10)
            assert first["requestId"] == rid and first["status"] == "dialing"
            assert datetime.now(UTC) >= wanted  # woken by the timer, not before
            await eng.wait_final(events, {rid})
        got = await eng.request(rid)
        started = datetime.fromisoformat(got["attempts"][0]["startedAt"].replace("Z", "+00:00"))
        assert wanted <= started < wanted + timedelta(seconds=1)


@pytest.mark.parametrize("policy", ["finish", "defer"])
async def test_a_site_at_zero_follows_its_policy(engine_factory, policy: str) -> None:
    async with engine_factory(talk_s=0.2) as eng:
        site, _ = await provision(eng)
        await eng.admin.patch(f"/sites/{site['id']}", {"minutesBalance": 1, "nonWorkingPolicy": policy})
        with eng.bus.subscribe() as events:
            first = await eng.create("my_form_1", "79001234567", site["siteKey"])
            assert (await eng.wait_final(events, {first})) == {first: "completed"}
            assert (await eng.admin.get(f"/sites/{site['id']}"))["minutesBalance"] == 0
            # Accepted before the balance ran out, but dialled after: put one in directly, as if
            # it had been accepted a moment before the last minute was spent.
            now = datetime.now(UTC)
            async with eng.db.write() as conn:
                row = (await conn.execute(select(callback_requests).where(callback_requests.c.id == first))
                       ).mappings().one()
                values = {k: v for k, v in row.items() if k != "id"}
                values.update(status="pending", attempts_made=0, next_attempt_at=now, due_at=now,
                              finished_at=None, claimed_by=None, claimed_until=None)
                late = (await conn.execute(callback_requests.insert().values(**values))).inserted_primary_key[0]
            eng.runtime.worker.wake()
            if policy == "finish":
                # A call never starts when the balance cannot pay its first minute (DESIGN §7): the request
                # ends cancelled, with no attempt, and nothing is billed for free.
                assert (await eng.wait_final(events, {late})) == {late: "cancelled"}
                assert (await eng.request(late))["attempts"] == []
            else:
                assert await eng.runtime.worker.dispatch_once() == 0
                assert (await eng.request(late))["status"] == "pending"
                await eng.admin.patch(f"/sites/{site['id']}", {"minutesBalance": 5})
                eng.runtime.worker.wake()
                assert (await eng.wait_final(events, {late})) == {late: "completed"}
        async with eng.db.read() as conn:
            balance = (await conn.execute(select(sites.c.minutes_balance).where(sites.c.id == site["id"]))).scalar()
            attempts = (await conn.execute(select(call_attempts.c.request_id))).scalars().all()
        assert balance == (0 if policy == "finish" else 4)
        book = await eng.admin.get(f"/sites/{site['id']}/ledger")
        assert sum(e["minutes"] for e in book["items"]) == balance
        assert sorted(attempts) == sorted([first] if policy == "finish" else [first, late])


async def test_operator_confirmation_and_announcement_are_played_to_the_operator(engine_factory) -> None:
    async with engine_factory() as eng:
        site, _ = await provision(eng, operatorConfirm=True, language="en")
        with eng.bus.subscribe() as events:
            rid = await eng.create("my_form_1", "79001234567", site["siteKey"],
                                   fields=[{"name": "Name", "value": "Ivan"}])
            assert (await eng.wait_final(events, {rid})) == {rid: "completed"}
        operator = next(leg for leg in eng.dialer.legs if leg.number == "79990000010")
        [played] = operator.played
        # Silence as long as "Callback request from the site Test site. Name: Ivan. Press 1 to accept the call."
        assert 4.0 < played.seconds < 8.0


async def test_a_call_whose_claim_was_taken_over_is_hung_up_and_not_recorded_twice(engine_factory) -> None:
    async with engine_factory(talk_s=30) as eng:
        site, _ = await provision(eng, announcement=False)
        with eng.bus.subscribe() as events:
            rid = await eng.create("my_form_1", "79001234567", site["siteKey"])
            while (await events.next(10)) != {"requestId": rid, "siteId": site["id"], "status": "dialing",
                                              "attempt": 1} or not eng.dialer.legs[-1].answered_at:
                pass
        worker = eng.runtime.worker
        assert worker.in_hand == 1
        # Another worker recovered it (as if our lease had run out while we were cut off from the database).
        async with eng.db.write() as conn:
            await conn.execute(update(callback_requests).where(callback_requests.c.id == rid)
                               .values(claimed_by="someone-else"))
        assert await worker.heartbeat_once() == 1
        task = next(iter(worker._tasks.values()))[0] if worker._tasks else None
        if task is not None:
            await asyncio.wait_for(asyncio.shield(task), 5)
        assert worker.in_hand == 0
        assert all(leg.is_ended for leg in eng.dialer.legs)  # hung up, not left talking
        got = await eng.request(rid)
        assert got["status"] == "dialing" and got["attempts"][0]["endedAt"] is None  # the new owner's to close


async def test_a_dialer_failure_is_recorded_as_error_and_the_request_still_ends(engine_factory, monkeypatch) -> None:
    from perezvon.calls.dialer.base import DialerError

    async with engine_factory() as eng:
        site, widget = await provision(eng, redialAttempts=1)
        await tune_widget(eng, site["id"], widget["id"], redialIntervalSeconds=0)

        def broken(number, trunk=None, **options):
            raise DialerError("no SIP trunk configured")

        monkeypatch.setattr(eng.dialer, "leg", broken)
        with eng.bus.subscribe() as events:
            rid = await eng.create("my_form_1", "79001234567", site["siteKey"])
            assert (await eng.wait_final(events, {rid})) == {rid: "failed"}
        got = await eng.request(rid)
        assert [a["outcome"] for a in got["attempts"]] == ["error", "error"]
        assert all(a["endedAt"] for a in got["attempts"])
