"""Dashboard: per-day numbers from the journal, drawn as inline SVG on the server."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert

from perezvon.services.stats import daily
from perezvon.store.tables import call_attempts, callback_requests
from perezvon.web.charts import bar_chart


def test_a_bar_chart_is_inline_svg_with_one_bar_per_value():
    svg = str(bar_chart([1, 0, None, 4], ["a", "b", "<c>", "d"], title="Req <per> day"))
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert svg.count('<rect class="bar"') == 3  # None draws nothing
    assert "<c>" not in svg and "&lt;c&gt;" in svg and "Req &lt;per&gt; day" in svg
    assert "style=" not in svg and "<script" not in svg  # nothing the CSP would block


async def _request(conn, site_id: int, created: datetime, status: str, answered_after: float | None, billed: int):
    result = await conn.execute(
        insert(callback_requests).values(
            site_id=site_id,
            route_key="f",
            phone="79001234567",
            fields=[],
            custom_fields=[],
            tags=[],
            due_at=created,
            source="js",
            utm={},
            status=status,
            updated_at=created,
            created_at=created,
        )
    )
    request_id = result.inserted_primary_key[0]
    if answered_after is not None or billed:
        await conn.execute(
            insert(call_attempts).values(
                request_id=request_id,
                number=1,
                started_at=created,
                client_answered_at=created + timedelta(seconds=answered_after) if answered_after is not None else None,
                ended_at=created + timedelta(seconds=120),
                outcome="connected" if status == "completed" else "client_no_answer",
                billed_seconds=billed,
            )
        )


async def test_daily_numbers(cabinet):
    await cabinet.account("alice")
    site = await cabinet.site("alice", timezone="UTC")
    today = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    async with cabinet.state.db.write() as conn:
        await _request(conn, site["id"], today, "completed", 10, 60)
        await _request(conn, site["id"], today, "completed", 30, 120)
        await _request(conn, site["id"], today, "failed", None, 0)
        await _request(conn, site["id"], today - timedelta(days=1), "pending", None, 0)
        await _request(conn, site["id"], today - timedelta(days=40), "completed", 5, 60)  # out of the window
    summary = await daily(cabinet.state.db, [site["id"]], "UTC", today.date(), 30)
    assert len(summary.days) == 30
    last, before = summary.days[-1], summary.days[-2]
    assert (last.requests, last.completed, last.finished) == (3, 2, 3)
    assert last.median_wait == 20 and last.minutes == 3
    assert before.requests == 1 and before.answered_share is None
    assert summary.requests == 4 and summary.minutes == 3


async def test_the_dashboard_page_draws_four_charts(cabinet):
    await cabinet.account("alice")
    site = await cabinet.site("alice", timezone="UTC")
    now = datetime.now(UTC)
    async with cabinet.state.db.write() as conn:
        await _request(conn, site["id"], now - timedelta(minutes=5), "completed", 10, 60)
    alice = await cabinet.login("alice")
    html = (await alice.get("/cabinet/dashboard")).text
    assert html.count('<svg class="chart') == 4
    assert len(re.findall(r'<rect class="bar"', html)) >= 4
    assert '<span class="tile-value">100%</span>' in html
    assert (await alice.get(f"/cabinet/dashboard?site={site['id']}")).status_code == 200


async def test_russian_durations_say_s_in_cyrillic(cabinet):
    from perezvon.web.base import duration

    assert duration(7, "ru") == "7 с" and duration(125, "ru") == "2 мин 05 с" and duration(3780, "ru") == "1 ч 03 мин"
    assert duration(7) == "7 s"
    await cabinet.account("alice")
    site = await cabinet.site("alice", timezone="UTC")
    async with cabinet.state.db.write() as conn:
        await _request(conn, site["id"], datetime.now(UTC) - timedelta(minutes=5), "completed", 7, 60)
    alice = await cabinet.login("alice")
    html = (await alice.get("/cabinet/dashboard?lang=ru")).text
    # the wait is a bucketed median here: whatever its number, its unit is Russian
    assert re.search(r">\d+ с<", html) and not re.search(r">\d+ s<", html)
