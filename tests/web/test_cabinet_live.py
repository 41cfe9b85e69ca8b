"""Live journal: the rows fragment the page re-reads, and the server-sent events it listens to."""

from __future__ import annotations

import json

from sqlalchemy import update

from perezvon.store.tables import callback_requests


class FiniteBus:
    """A stand-in for the engine's bus: replays some events, then ends the subscription."""

    def __init__(self, events: list[dict]) -> None:
        self.events = events
        self.closed = 0

    def subscribe(self) -> FiniteBus.Subscription:
        return FiniteBus.Subscription(self)

    class Subscription:
        def __init__(self, bus: FiniteBus) -> None:
            self.bus = bus
            self.pending = list(bus.events)

        def __aiter__(self):
            return self

        async def __anext__(self) -> dict:
            if not self.pending:
                raise StopAsyncIteration
            return self.pending.pop(0)

        def close(self) -> None:
            self.bus.closed += 1


async def test_the_rows_fragment_shows_new_requests_and_status_changes(cabinet):
    await cabinet.account("alice")
    site = await cabinet.site("alice")
    await cabinet.widget("alice", site["id"])
    alice = await cabinet.login("alice")
    page = await alice.get("/cabinet/journal")
    assert 'data-rows-url="/cabinet/journal/rows?page=1"' in page.text
    request_id = await cabinet.visitor_request(site)
    rows = await alice.get("/cabinet/journal/rows?page=1")
    assert rows.status_code == 200 and "<html" not in rows.text
    assert f'data-request-id="{request_id}"' in rows.text and 'data-status="pending"' in rows.text
    async with cabinet.state.db.write() as conn:
        await conn.execute(update(callback_requests).values(status="completed"))
    rows = await alice.get("/cabinet/journal/rows?page=1")
    assert 'data-status="completed"' in rows.text


async def test_the_page_polls_when_there_is_no_event_bus(cabinet):
    cabinet.state.events = None
    alice = await cabinet.login("alice")
    page = await alice.get("/cabinet/journal")
    assert 'data-events-url=""' in page.text and 'data-mode="poll"' in page.text
    assert (await alice.get("/cabinet/journal/events")).status_code == 204


async def test_the_event_stream_carries_only_the_accounts_own_requests(cabinet):
    await cabinet.account("alice")
    await cabinet.account("bob")
    alices = await cabinet.site("alice")
    bobs = await cabinet.site("bob")
    await cabinet.widget("alice", alices["id"])
    mine = await cabinet.visitor_request(alices)
    bus = FiniteBus(
        [
            {"requestId": mine, "siteId": alices["id"], "status": "dialing", "attempt": 1},
            {"requestId": 999, "siteId": bobs["id"], "status": "dialing", "attempt": 1},
            {"requestId": mine, "status": "completed"},  # no siteId: checked against the journal instead
            {"requestId": 12345, "status": "completed"},
        ]
    )
    cabinet.state.events = bus
    cabinet.state.worker = object()  # the engine runs in this process, so its bus hears every call
    alice = await cabinet.login("alice")
    page = await alice.get("/cabinet/journal")
    assert 'data-events-url="/cabinet/journal/events"' in page.text
    response = await alice.get("/cabinet/journal/events")
    assert response.headers["content-type"].startswith("text/event-stream")
    messages = [json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: ")]
    assert messages == [{"requestId": mine, "status": "dialing"}, {"requestId": mine, "status": "completed"}]
    assert bus.closed == 1  # the subscription is released when the stream ends


async def test_an_api_only_process_polls_although_it_has_a_bus(cabinet):
    from perezvon.calls.events import EventBus

    cabinet.state.events = EventBus()  # what attach_api_hooks gives an API-only process
    cabinet.state.worker = None
    alice = await cabinet.login("alice")
    page = await alice.get("/cabinet/journal")
    assert 'data-mode="poll"' in page.text


async def test_an_event_stream_ends_by_itself_so_shutdowns_are_not_held_up(cabinet, monkeypatch):
    from perezvon.calls.events import EventBus
    from perezvon.web import pages_journal

    monkeypatch.setattr(pages_journal, "STREAM_MAX_S", 0.3)
    monkeypatch.setattr(pages_journal, "KEEPALIVE_S", 0.1)
    bus = EventBus()
    cabinet.state.events = bus
    alice = await cabinet.login("alice")
    response = await alice.get("/cabinet/journal/events")  # returns only because the stream ends
    assert response.text.startswith("retry: 3000")
    assert ": keep-alive" in response.text
    assert bus.subscribers == 0
