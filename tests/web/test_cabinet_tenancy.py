"""Alice's sites, widgets, units, blacklist and journal are hers: bob gets 404s and sees nothing of them."""

from __future__ import annotations

import pytest
from sqlalchemy import insert

from perezvon.clock import utcnow
from perezvon.services.accounts import Principal
from perezvon.store.tables import call_attempts


@pytest.fixture
async def alices(cabinet):
    await cabinet.account("alice")
    site = await cabinet.site("alice", name="Alice's shop")
    widget = await cabinet.widget("alice", site["id"], "alice_form")
    unit = await cabinet.unit("alice", site["id"])
    entry = await cabinet.state.catalog.add_blacklist(
        Principal(cabinet.accounts["alice"]),
        site["id"],
        "79005550000",
    )
    request_id = await cabinet.visitor_request(
        site, route_key="alice_form", fields=[{"name": "Name", "value": "Alisa"}]
    )
    return {"site": site, "widget": widget, "unit": unit, "entry": entry, "request": request_id}


async def test_bob_cannot_open_alices_pages(cabinet, alices):
    bob = await cabinet.login("bob")
    site_id = alices["site"]["id"]
    for path in (
        f"/cabinet/sites/{site_id}",
        f"/cabinet/sites/{site_id}/edit",
        f"/cabinet/sites/{site_id}/widgets/new",
        f"/cabinet/widgets/{alices['widget']['id']}",
        f"/cabinet/sites/{site_id}/units",
        f"/cabinet/sites/{site_id}/blacklist",
        f"/cabinet/requests/{alices['request']}",
    ):
        response = await bob.get(path)
        assert response.status_code == 404, path
        assert "Alice" not in response.text and "alice_form" not in response.text


async def test_alice_can_open_them(cabinet, alices):
    alice = await cabinet.login("alice")
    assert (await alice.get(f"/cabinet/widgets/{alices['widget']['id']}")).status_code == 200
    page = await alice.get(f"/cabinet/requests/{alices['request']}")
    assert page.status_code == 200 and "Alisa" in page.text


async def test_bob_cannot_change_alices_widget_even_with_his_own_csrf_token(cabinet, alices):
    bob = await cabinet.login("bob")
    csrf = await cabinet.csrf(bob)
    widget_id = alices["widget"]["id"]
    form = {
        "csrf": csrf,
        "routeKey": "stolen",
        "schedule.timezone": "Europe/Moscow",
        "throttle.userTimeoutSeconds": "0",
        "throttle.maxRequestsPerPhone": "0",
        "throttle.periodSeconds": "3600",
        "callback.ringTimeoutSeconds": "30",
        "callback.redialAttempts": "2",
        "callback.redialIntervalSeconds": "60",
        "callback.language": "ru",
    }
    assert (await bob.post(f"/cabinet/widgets/{widget_id}", data=form)).status_code == 404
    assert (await bob.post(f"/cabinet/widgets/{widget_id}/delete", data={"csrf": csrf})).status_code == 404
    assert (await bob.post(f"/cabinet/sites/{alices['site']['id']}/delete", data={"csrf": csrf})).status_code == 404
    assert (await bob.post(f"/cabinet/units/{alices['unit']['id']}/delete", data={"csrf": csrf})).status_code == 404
    assert (
        await bob.post(f"/cabinet/blacklist/{alices['entry']['id']}/delete", data={"csrf": csrf, "site": "0"})
    ).status_code == 404
    assert (
        await bob.post(f"/cabinet/sites/{alices['site']['id']}/blacklist", data={"csrf": csrf, "phones": "79001112233"})
    ).status_code == 404
    from perezvon.services.accounts import OPERATOR

    widget = await cabinet.state.catalog.get_widget(OPERATOR, widget_id)
    assert widget["route_key"] == "alice_form"
    assert len(await cabinet.state.catalog.list_blacklist(OPERATOR, alices["site"]["id"])) == 1


async def test_bobs_journal_sites_dashboard_and_csv_show_nothing_of_alices(cabinet, alices):
    bob = await cabinet.login("bob")
    for path in (
        "/cabinet/journal",
        "/cabinet/journal/rows",
        "/cabinet/sites",
        "/cabinet/dashboard",
        "/cabinet/journal.csv",
        f"/cabinet/journal?site={alices['site']['id']}",
    ):
        response = await bob.get(path)
        assert response.status_code == 200, path
        assert "Alisa" not in response.text and "Alice" not in response.text, path
    dashboard = await bob.get("/cabinet/dashboard")
    assert '<span class="tile-value">1</span>' not in dashboard.text


async def test_bob_cannot_hear_alices_recordings(cabinet, alices, tmp_path):
    recording = tmp_path / "call.wav"
    recording.write_bytes(b"RIFF0000WAVEfmt ")
    async with cabinet.state.db.write() as conn:
        result = await conn.execute(
            insert(call_attempts).values(
                request_id=alices["request"],
                number=1,
                started_at=utcnow(),
                outcome="connected",
                billed_seconds=60,
                recording_path=str(recording),
            )
        )
        attempt_id = result.inserted_primary_key[0]
    alice = await cabinet.login("alice")
    bob = await cabinet.login("bob")
    for path in (f"/cabinet/attempts/{attempt_id}/recording", f"/api/admin/v1/attempts/{attempt_id}/recording"):
        assert (await bob.get(path)).status_code == 404, path
        heard = await alice.get(path)
        assert heard.status_code == 200 and heard.content.startswith(b"RIFF"), path
    assert (await cabinet.new_client().get(f"/api/admin/v1/attempts/{attempt_id}/recording")).status_code == 401
    page = await alice.get(f"/cabinet/requests/{alices['request']}")
    assert f'<audio controls preload="none" src="/cabinet/attempts/{attempt_id}/recording"' in page.text


async def test_bob_cannot_revoke_alices_tokens(cabinet, alices):
    from perezvon.services.accounts import create_token

    await create_token(cabinet.state.db, cabinet.accounts["alice"], "alice's CRM")
    alice = await cabinet.login("alice")
    bob = await cabinet.login("bob")
    assert "alice&#39;s CRM" in (await alice.get("/cabinet/tokens")).text
    assert "alice" not in (await bob.get("/cabinet/tokens")).text.replace("bob@example.com", "")
    csrf = await cabinet.csrf(bob)
    from sqlalchemy import select

    from perezvon.store.tables import api_tokens

    async with cabinet.state.db.read() as conn:
        token_id = (await conn.execute(select(api_tokens.c.id).where(api_tokens.c.name == "alice's CRM"))).scalar()
    assert (await bob.post(f"/cabinet/tokens/{token_id}/revoke", data={"csrf": csrf})).status_code == 404
    assert "alice&#39;s CRM" in (await alice.get("/cabinet/tokens")).text
