"""The aggregates stay equal to a recount when the real life cycle writes: the worker on the simulated
line (answers, no answers with redials, busy lines), cancels and reschedules through the admin API."""

from __future__ import annotations

from calls.conftest import engine_factory  # noqa: F401 - the fixture, shared with the engine's tests
from calls.test_engine import ALWAYS, tune_widget

from .test_journal_stats import aggregates, recount


async def test_aggregates_follow_the_engine_cancels_and_reschedules(engine_factory) -> None:  # noqa: F811
    async with engine_factory(talk_s=0.05) as eng:
        site, widget = await eng.admin.site_with_widget(
            operatorPhones=["79990000010"], schedule=ALWAYS, callback={"redialAttempts": 1}
        )
        await tune_widget(eng, site["id"], widget["id"], redialIntervalSeconds=0, ringTimeoutSeconds=0.05)
        key = site["siteKey"]
        with eng.bus.subscribe() as events:
            # Answers, never answers (redialled once), busy (redialled once), answered once more.
            called = [await eng.create("my_form_1", f"790012345{i:02d}", key) for i in (10, 1, 2, 11)]
            later = await eng.create("my_form_1", "79001234520", key, scheduleTime="2099-01-01 10:00:00")
            done = await eng.wait_final(events, set(called))
            assert sorted(done.values()) == ["completed", "completed", "failed", "failed"]
            cancel = await eng.client.post(f"/api/admin/v1/requests/{later}/cancel", headers=eng.admin.headers)
            assert cancel.status_code == 200, cancel.text
            # A failed request called again: back to pending (the failure no longer counts), then failed again.
            failed = next(rid for rid, status in done.items() if status == "failed")
            again = await eng.client.post(
                f"/api/admin/v1/requests/{failed}/reschedule", json={"at": None}, headers=eng.admin.headers
            )
            assert again.status_code == 200, again.text
            assert (await eng.wait_final(events, {failed})) == {failed: "failed"}
        expected = await recount(eng.db)
        assert await aggregates(eng.db) == expected
        totals = [sum(column) for column in zip(*expected[0].values(), strict=True)]  # slots summed
        assert totals[:3] == [5, 2, 4] and totals[3] > 0  # requests, completed, finished; billed
        assert sum(expected[1].values()) == 2
