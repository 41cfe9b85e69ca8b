"""Fixtures for the callback engine: the app in-process plus a worker on the simulated line (fast)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from typing import Any

import httpx
import pytest

from perezvon.calls.dialer.simulated import SimulatedDialer
from perezvon.calls.events import EventBus, Subscription
from perezvon.calls.runtime import Runtime
from perezvon.calls.speech import silent_speaker
from perezvon.calls.webhooks import Backoff, Outbound, WebhookSender
from support import Admin, make_settings

FINAL = {"completed", "failed", "cancelled"}


@dataclass
class Engine:
    """What an engine test needs: an admin client, the runtime (worker + webhooks) and its event bus."""

    client: httpx.AsyncClient
    admin: Admin
    runtime: Runtime
    bus: EventBus
    dialer: SimulatedDialer
    site_key: str = ""

    @property
    def db(self) -> Any:
        return self.runtime.db

    async def create(self, route_key: str, phone: str, site_key: str, **extra: Any) -> int:
        body = {"site": site_key, "routeKey": route_key, "phone": phone, "fields": [], **extra}
        response = await self.client.post("/api/widget/v1/requests", json=body)
        assert response.status_code == 200, response.text
        return int(response.json()["callbackRequestId"])

    async def request(self, request_id: int) -> dict[str, Any]:
        return await self.admin.get(f"/requests/{request_id}")

    async def wait_final(self, events: Subscription, ids: set[int], timeout: float = 20.0) -> dict[int, str]:
        """Await the final status events of ``ids`` (no sleeping: the engine announces each change)."""
        done: dict[int, str] = {}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while ids - done.keys():
            event = await events.next(max(0.01, deadline - loop.time()))
            if event["requestId"] in ids and event["status"] in FINAL:
                done[event["requestId"]] = event["status"]
        return done


@pytest.fixture
def engine_factory(database_url: str) -> Callable[..., Any]:
    """Build an Engine with custom line timing / redial speed; used as ``async with make(...) as eng``."""
    from contextlib import asynccontextmanager

    from perezvon.app import create_app

    @asynccontextmanager
    async def make(*, ring_s: float = 0.02, talk_s: float = 0.3, concurrency: int = 20,
                   lease_s: float = 5.0, backoff: Backoff | None = None) -> AsyncIterator[Engine]:
        settings = replace(make_settings(database_url), worker_concurrency=concurrency, worker_lease_s=lease_s,
                           webhook_allow_private=True)  # the test receivers listen on loopback
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            state = app.state
            dialer = SimulatedDialer(ring_s=ring_s, talk_s=talk_s, speed=0)
            runtime = Runtime(state.db, state.snapshots, settings, dialer=dialer, speaker=silent_speaker,
                              webhooks=WebhookSender(state.db, Outbound(allow_private=True),  # the sink is on loopback
                                                     backoff=backoff or Backoff(base_s=0.2), poll_s=0.5),
                              life=state.requests)
            await runtime.start()  # plugs the worker, the sender and its bus into the app's notifier
            state.events = runtime.bus
            state.worker = runtime
            transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
            try:
                async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
                    yield Engine(client, Admin(client), runtime, runtime.bus, dialer)
            finally:
                await runtime.stop(grace=5)

    return make
