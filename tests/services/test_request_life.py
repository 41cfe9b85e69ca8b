"""The one owner of a request's life: every move checked, each with its webhook rows in its transaction."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from perezvon.domain import callback as cb
from perezvon.services.catalog import Conflict
from perezvon.services.requests import AttemptFacts, RequestLife, Wakeups
from perezvon.store.due_queue import DueQueue
from perezvon.store.tables import call_attempts, callback_requests, webhook_deliveries

ALWAYS = {"utcTimezone": "UTC+00:00", "hours": [{"dayOfWeek": d, "hour": h} for d in range(1, 8) for h in range(24)]}
HOOK = "http://127.0.0.1:9/hook"


class Heard:
    """What the life cycle told the process."""

    def __init__(self, wakeups: Wakeups) -> None:
        self.worker = self.webhooks = 0
        self.events: list[dict[str, Any]] = []
        self.unplug = wakeups.plug(worker=self._worker, webhooks=self._webhooks, events=self.events.append)

    def _worker(self) -> None:
        self.worker += 1

    def _webhooks(self) -> None:
        self.webhooks += 1


@pytest.fixture
async def setup(app_client, admin):
    site, widget = await admin.site_with_widget(
        operatorPhones=["79990000010"], schedule=ALWAYS, callback={"redialAttempts": 0}
    )
    state = app_client.app.state
    state.settings = replace(state.settings, webhook_allow_private=True)  # HOOK is on loopback
    await admin.patch(f"/sites/{site['id']}", {"webhookUrls": [HOOK]})
    heard = Heard(state.requests.notifier)
    yield state, site, widget, heard
    heard.unplug()


async def create(app_client, site: dict, **extra: Any) -> int:
    response = await app_client.post(
        "/api/widget/v1/requests",
        json={"site": site["siteKey"], "routeKey": "my_form_1", "phone": "79001234567", "fields": [], **extra},
    )
    assert response.status_code == 200, response.text
    return response.json()["callbackRequestId"]


async def deliveries(state, request_id: int) -> list[dict[str, Any]]:
    async with state.db.read() as conn:
        rows = await conn.execute(
            select(webhook_deliveries)
            .where(webhook_deliveries.c.request_id == request_id)
            .order_by(webhook_deliveries.c.id)
        )
        return [dict(r) for r in rows.mappings()]


async def reschedule(app_client, admin, request_id: int, body: dict) -> dict[str, Any]:
    response = await app_client.post(
        f"/api/admin/v1/requests/{request_id}/reschedule", json=body, headers=admin.headers
    )
    assert response.status_code == 200, response.text
    return response.json()


async def request_row(state, request_id: int) -> dict[str, Any]:
    async with state.db.read() as conn:
        return dict(
            (await conn.execute(select(callback_requests).where(callback_requests.c.id == request_id))).mappings().one()
        )


async def test_accepting_writes_request_created_in_the_same_transaction(app_client, setup) -> None:
    state, site, _widget, heard = setup
    rid = await create(app_client, site)
    [delivery] = await deliveries(state, rid)  # there at once: no hook after the commit to wait for
    assert delivery["event"] == "request.created" and delivery["url"] == HOOK and delivery["status"] == "pending"
    body = delivery["payload"]
    assert set(body) == {"event", "timestamp", "request"} and body["event"] == "request.created"
    assert body["request"]["id"] == rid and body["request"]["status"] == "pending"
    assert body["request"]["finishedAt"] is None and body["request"]["attempts"] == []
    assert heard.worker >= 1 and heard.webhooks >= 1


async def test_a_request_that_cannot_be_stored_leaves_no_webhook_row(app_client, setup) -> None:
    state, site, widget, _heard = setup
    life: RequestLife = state.requests
    now = datetime.now(UTC)
    values = {
        "site_id": site["id"],
        "widget_id": widget["id"],
        "route_key": "my_form_1",
        "phone": "7900",
        "fields": [],
        "custom_fields": [],
        "tags": [],
        "unit_id": 999_999,
        "schedule_time": None,
        "session_id": None,
        "source": "api",
        "call_url": None,
        "utm": {},
    }
    with pytest.raises(Exception):  # noqa: B017 - the driver's integrity error, whichever database
        await life.accept(values, now, [HOOK], now)
    async with state.db.read() as conn:
        assert (await conn.execute(select(webhook_deliveries.c.id))).all() == []


async def test_cancel_moves_only_a_pending_request_and_announces_it(app_client, setup) -> None:
    state, site, _widget, heard = setup
    rid = await create(app_client, site, scheduleTime="2099-01-01 10:00:00")
    resource = await state.requests.cancel(rid)
    assert resource["status"] == "cancelled" and resource["finishedAt"] and resource["nextAttemptAt"] is None
    assert [d["event"] for d in await deliveries(state, rid)] == ["request.created", "request.finished"]
    assert {"requestId": rid, "siteId": site["id"], "status": "cancelled"} in heard.events
    with pytest.raises(Conflict, match="is cancelled"):
        await state.requests.cancel(rid)


async def test_reschedule_moves_a_pending_request_and_calls_a_finished_one_again(app_client, admin, setup) -> None:
    state, site, _widget, heard = setup
    rid = await create(app_client, site, scheduleTime="2099-01-01 10:00:00")
    at = datetime(2098, 5, 1, 9, 30, tzinfo=UTC)
    moved = await reschedule(app_client, admin, rid, {"at": "2098-05-01T09:30:00Z"})
    assert moved["status"] == "pending" and moved["dueAt"] == "2098-05-01T09:30:00.000Z"
    assert (await request_row(state, rid))["next_attempt_at"] == at
    await state.requests.cancel(rid)
    again = await reschedule(app_client, admin, rid, {"at": None})  # null: now
    assert again["status"] == "pending" and again["finishedAt"] is None and again["attemptsMade"] == 0
    assert {"requestId": rid, "siteId": site["id"], "status": "pending"} in heard.events
    bad = await app_client.post(f"/api/admin/v1/requests/{rid}/reschedule", json={"at": "soon"}, headers=admin.headers)
    assert bad.status_code == 400 and bad.json()["type"] == "validation_error"


async def test_a_request_being_dialled_cannot_be_rescheduled_or_cancelled(app_client, admin, setup) -> None:
    state, site, _widget, _heard = setup
    rid = await create(app_client, site)
    [claim] = await DueQueue(state.db, "w1").claim(1)
    assert claim.request_id == rid
    response = await app_client.post(f"/api/admin/v1/requests/{rid}/reschedule", json={}, headers=admin.headers)
    assert response.status_code == 409 and "dialing" in response.json()["message"]
    with pytest.raises(Conflict):
        await state.requests.cancel(rid)


async def test_closing_an_attempt_completes_charges_and_announces_in_one_go(app_client, setup) -> None:
    state, site, widget, heard = setup
    rid = await create(app_client, site)
    [claim] = await DueQueue(state.db, "w1").claim(1)
    snapshot = await state.snapshots.by_id(site["id"])
    widget_row = snapshot.widget_by_id(widget["id"])
    decision = await state.requests.close_attempt(
        claim.request,
        claim.attempt_id,
        claim.attempt_number,
        cb.CONNECTED,
        AttemptFacts(operator_phone="79990000010"),
        61.0,
        snapshot,
        widget_row,
    )
    assert decision is not None and decision.status == cb.COMPLETED
    row = await request_row(state, rid)
    assert row["status"] == "completed" and row["claimed_by"] is None and row["finished_at"] is not None
    finished = (await deliveries(state, rid))[-1]
    assert finished["event"] == "request.finished"
    assert finished["payload"]["request"]["attempts"][0]["billedSeconds"] == 61
    assert (await state.snapshots.by_id(site["id"])).site["minutes_balance"] == site["minutesBalance"] - 2
    assert heard.events[-1] == {
        "requestId": rid,
        "siteId": site["id"],
        "status": "completed",
        "attempt": 1,
        "outcome": "connected",
    }
    # A second close of the same claim finds the request no longer dialling: the claim is lost.
    assert (
        await state.requests.close_attempt(
            claim.request, claim.attempt_id, 1, cb.ERROR, AttemptFacts(), 0, snapshot, widget_row
        )
        is None
    )


async def test_recovery_interrupts_the_open_attempt_and_a_rescheduled_request_numbers_on(app_client, setup) -> None:
    state, site, _widget, _heard = setup
    rid = await create(app_client, site)
    queue = DueQueue(state.db, "dead-worker", lease_s=0.0)
    await queue.claim(1)
    [expired] = await queue.expired(now=datetime.now(UTC) + timedelta(seconds=1))
    decision = await state.requests.recover(expired, now=datetime.now(UTC) + timedelta(seconds=1))
    assert decision is not None and decision.status == cb.FAILED  # redialAttempts 0: that was the last
    assert await state.requests.recover(expired) is None  # already recovered: nothing moves twice
    await state.requests.reschedule(rid, None)
    [claim] = await DueQueue(state.db, "w2").claim(1)
    assert claim.attempt_number == 2 and claim.request["attempts_made"] == 1
    async with state.db.read() as conn:
        attempts = (
            await conn.execute(
                select(call_attempts.c.number, call_attempts.c.outcome)
                .where(call_attempts.c.request_id == rid)
                .order_by(call_attempts.c.number)
            )
        ).all()
    assert [tuple(a) for a in attempts] == [(1, "interrupted"), (2, None)]


def test_the_transition_rules_allow_reschedule_only_out_of_a_call() -> None:
    assert cb.reschedule_transition(cb.COMPLETED) == cb.PENDING
    assert cb.sources_of(cb.CANCELLED) == {cb.PENDING}
    with pytest.raises(cb.TransitionError):
        cb.reschedule_transition(cb.DIALING)
