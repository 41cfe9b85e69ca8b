"""The journal's live rows: the count badge follows them, and a request waiting for a redial shows when
it is due next (not its first call's time)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from perezvon.store.tables import callback_requests


async def test_the_rows_carry_the_count_the_badge_shows(cabinet) -> None:  # type: ignore[no-untyped-def]
    await cabinet.account("alice")
    site = await cabinet.site("alice")
    await cabinet.widget("alice", site["id"])
    alice = await cabinet.login("alice")
    page = (await alice.get("/cabinet/journal")).text
    assert '<span class="count">0</span>' in page
    await cabinet.visitor_request(site)
    await cabinet.visitor_request(site, phone="79001234568")
    rows = (await alice.get("/cabinet/journal/rows")).text
    assert "<td data-journal-count>2</td>" in rows


async def test_a_request_waiting_for_a_redial_shows_its_next_due_time(cabinet) -> None:  # type: ignore[no-untyped-def]
    await cabinet.account("alice")
    site = await cabinet.site("alice", timezone="UTC")
    await cabinet.widget("alice", site["id"])
    request_id = await cabinet.visitor_request(site)
    redial = datetime(2031, 5, 6, 7, 8, tzinfo=UTC)
    async with cabinet.state.db.write() as conn:
        await conn.execute(
            update(callback_requests)
            .where(callback_requests.c.id == request_id)
            .values(attempts_made=1, next_attempt_at=redial, due_at=redial - timedelta(minutes=30))
        )
    alice = await cabinet.login("alice")
    rows = (await alice.get("/cabinet/journal/rows")).text
    assert "2031-05-06 07:08" in rows and "2031-05-06 06:38" not in rows
    detail = (await alice.get(f"/cabinet/requests/{request_id}")).text
    assert "Next attempt" in detail and "2031-05-06 07:08:00" in detail
