"""What a snapshot derives once: a widget's parsed schedule (the one schedule cache of intake and worker)."""

from __future__ import annotations

from perezvon.store.snapshots import SnapshotCache

ALWAYS = {"utcTimezone": "UTC+00:00", "hours": [{"dayOfWeek": d, "hour": h} for d in range(1, 8) for h in range(24)]}


async def test_the_schedule_is_parsed_once_per_snapshot_and_dies_with_it(app_client, admin) -> None:
    site, widget = await admin.site_with_widget(operatorPhones=["79990000010"], schedule=ALWAYS)
    cache = SnapshotCache(app_client.app.state.db, ttl=3600)
    snapshot = await cache.by_key(site["siteKey"])
    row = snapshot.widget_by_id(widget["id"])
    assert row is not None and row["route_key"] == "my_form_1" and snapshot.widget_by_id(-1) is None
    schedule = snapshot.schedule(row)
    assert snapshot.schedule(row) is schedule and schedule.zone == "UTC+00:00"
    cache.invalidate(site["id"])
    fresh = await cache.by_key(site["siteKey"])
    assert fresh.schedule(fresh.widget_by_id(widget["id"])) is not schedule  # the memo died with its snapshot
