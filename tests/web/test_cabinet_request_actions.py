"""Hands on a request in the cabinet: cancel, call now, reschedule, call again, each in its timeline
with who did it; and the same moves through the admin API name the token."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import update

from perezvon.store.tables import callback_requests
from support import ADMIN_TOKEN
from web.cabinet_support import csrf_of


async def alice_request(cabinet, **site_values):  # type: ignore[no-untyped-def]
    await cabinet.account("alice")
    site = await cabinet.site("alice", **site_values)
    await cabinet.widget("alice", site["id"])
    request_id = await cabinet.visitor_request(site)
    return site, request_id, await cabinet.login("alice")


async def test_cancel_while_pending_is_in_the_timeline_with_who(cabinet) -> None:  # type: ignore[no-untyped-def]
    _, request_id, alice = await alice_request(cabinet)
    page = (await alice.get(f"/cabinet/requests/{request_id}")).text
    assert f'action="/cabinet/requests/{request_id}/cancel"' in page and "Call now" in page
    response = await alice.post(f"/cabinet/requests/{request_id}/cancel", data={"csrf": csrf_of(page)})
    assert response.status_code == 303 and response.headers["location"].endswith("done=cancelled")
    after = (await alice.get(f"/cabinet/requests/{request_id}")).text
    assert 'data-status="cancelled"' in after
    assert "Cancelled" in after and "by alice@example.com" in after
    assert f'/cabinet/requests/{request_id}/cancel"' not in after  # no cancel once finished
    assert "Call again now" in after


async def test_reschedule_reads_the_picker_in_the_sites_zone(cabinet) -> None:  # type: ignore[no-untyped-def]
    _, request_id, alice = await alice_request(cabinet, timezone="Europe/Berlin", allowedCountries=["DE", "RU"])
    page = (await alice.get(f"/cabinet/requests/{request_id}")).text
    wall = (datetime.now(ZoneInfo("Europe/Berlin")) + timedelta(days=3)).replace(
        hour=10, minute=30, second=0, microsecond=0, tzinfo=None
    )
    response = await alice.post(
        f"/cabinet/requests/{request_id}/reschedule",
        data={"csrf": csrf_of(page), "at": wall.strftime("%Y-%m-%dT%H:%M")},
    )
    assert response.headers["location"].endswith("done=rescheduled")
    async with cabinet.state.db.read() as conn:
        due = (
            (await conn.execute(callback_requests.select().where(callback_requests.c.id == request_id)))
            .mappings()
            .one()["due_at"]
        )
    assert due == wall.replace(tzinfo=ZoneInfo("Europe/Berlin")).astimezone(UTC)
    after = (await alice.get(f"/cabinet/requests/{request_id}")).text
    assert "Rescheduled" in after and f"for {wall.strftime('%Y-%m-%d %H:%M')}" in after


async def test_a_past_or_broken_time_changes_nothing(cabinet) -> None:  # type: ignore[no-untyped-def]
    _, request_id, alice = await alice_request(cabinet)
    csrf = csrf_of((await alice.get(f"/cabinet/requests/{request_id}")).text)
    for at in ("2020-01-01T10:00", "tomorrow", "２０３０-01-01T10:00"):
        response = await alice.post(f"/cabinet/requests/{request_id}/reschedule", data={"csrf": csrf, "at": at})
        assert response.headers["location"].endswith("done=bad_time")
    assert "Rescheduled" not in (await alice.get(f"/cabinet/requests/{request_id}")).text


async def test_a_finished_request_is_called_again(cabinet) -> None:  # type: ignore[no-untyped-def]
    _, request_id, alice = await alice_request(cabinet)
    async with cabinet.state.db.write() as conn:
        await conn.execute(
            update(callback_requests)
            .where(callback_requests.c.id == request_id)
            .values(status="failed", finished_at=datetime.now(UTC), attempts_made=3)
        )
    page = (await alice.get(f"/cabinet/requests/{request_id}")).text
    response = await alice.post(f"/cabinet/requests/{request_id}/reschedule", data={"csrf": csrf_of(page)})
    assert response.headers["location"].endswith("done=calling_now")
    after = (await alice.get(f"/cabinet/requests/{request_id}")).text
    assert 'data-status="pending"' in after and "Called again" in after and "by alice@example.com" in after


async def test_a_request_being_dialled_is_left_alone(cabinet) -> None:  # type: ignore[no-untyped-def]
    _, request_id, alice = await alice_request(cabinet)
    csrf = csrf_of((await alice.get(f"/cabinet/requests/{request_id}")).text)
    async with cabinet.state.db.write() as conn:
        await conn.execute(
            update(callback_requests).where(callback_requests.c.id == request_id).values(status="dialing")
        )
    page = (await alice.get(f"/cabinet/requests/{request_id}")).text
    assert "being dialled" in page and "/reschedule" not in page
    response = await alice.post(f"/cabinet/requests/{request_id}/cancel", data={"csrf": csrf})
    assert response.headers["location"].endswith("done=request_busy")


async def test_bob_cannot_touch_alices_request_and_csrf_is_checked(cabinet) -> None:  # type: ignore[no-untyped-def]
    _, request_id, alice = await alice_request(cabinet)
    assert (await alice.post(f"/cabinet/requests/{request_id}/cancel", data={"csrf": "wrong"})).status_code == 403
    bob = await cabinet.login("bob")
    csrf = await cabinet.csrf(bob)
    assert (await bob.post(f"/cabinet/requests/{request_id}/cancel", data={"csrf": csrf})).status_code == 404
    assert (await bob.post(f"/cabinet/requests/{request_id}/reschedule", data={"csrf": csrf})).status_code == 404
    assert 'data-status="pending"' in (await alice.get(f"/cabinet/requests/{request_id}")).text


async def test_the_admin_api_names_the_token_in_the_timeline(cabinet) -> None:  # type: ignore[no-untyped-def]
    _, request_id, _alice = await alice_request(cabinet)
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    at = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    moved = await cabinet.client.post(
        f"/api/admin/v1/requests/{request_id}/reschedule", json={"at": at.isoformat()}, headers=headers
    )
    assert moved.status_code == 200
    cancelled = await cabinet.client.post(f"/api/admin/v1/requests/{request_id}/cancel", headers=headers)
    assert cancelled.status_code == 200
    resource = (await cabinet.client.get(f"/api/admin/v1/requests/{request_id}", headers=headers)).json()
    assert [(a["action"], a["by"]) for a in resource["actions"]] == [
        ("reschedule", "operator token"),
        ("cancel", "operator token"),
    ]
    assert resource["actions"][0]["dueAt"] == at.strftime("%Y-%m-%dT%H:%M:%S.000Z")
