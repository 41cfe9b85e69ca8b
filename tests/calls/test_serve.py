"""``perezvon serve`` runs the worker in-process: a request made over HTTP is called back by itself."""

from __future__ import annotations

import time

import httpx
import pytest

from support import ADMIN_TOKEN, LiveServer

pytestmark = pytest.mark.e2e

ALWAYS = {"utcTimezone": "UTC+00:00", "hours": [{"dayOfWeek": d, "hour": h} for d in range(1, 8) for h in range(24)]}


def test_a_request_goes_pending_dialing_completed_with_minutes_spent(live_server: LiveServer) -> None:
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with httpx.Client(base_url=live_server.base_url, headers=headers, timeout=10) as client:
        site = client.post("/api/admin/v1/sites", json={"name": "Live", "minutesBalance": 10}).json()
        widget = client.post(f"/api/admin/v1/sites/{site['id']}/widgets", json={
            "routeKey": "my_form_1", "operatorPhones": ["79990000010"], "schedule": ALWAYS,
            "callback": {"announcement": False}})
        assert widget.status_code == 201, widget.text
        created = client.post("/api/widget/v1/requests", json={
            "site": site["siteKey"], "routeKey": "my_form_1", "phone": "79001234567",
            "fields": [{"name": "Name", "value": "Ivan"}]})
        assert created.status_code == 200, created.text
        request_id = created.json()["callbackRequestId"]
        seen, got = watch_statuses(client, request_id)
        assert seen[-1] == "completed", (seen, live_server.log())
        assert "dialing" in seen
        [attempt] = got["attempts"]
        assert attempt["outcome"] == "connected" and attempt["billedSeconds"] >= 1
        assert client.get(f"/api/admin/v1/sites/{site['id']}").json()["minutesBalance"] == 9


def test_the_demo_calls_back_by_itself_and_spends_a_minute(tmp_path) -> None:
    from support import start_server, stop_server

    server = start_server(f"sqlite:///{tmp_path / 'demo.db'}", tmp_path, args=("demo",))
    try:
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        with httpx.Client(base_url=server.base_url, headers=headers, timeout=10) as client:
            [site] = [s for s in client.get("/api/admin/v1/sites").json() if s["siteKey"] == "demo"]
            created = client.post("/api/widget/v1/requests", json={
                "site": "demo", "routeKey": "my_form_1", "phone": "79001234567",
                "fields": [{"name": "Name", "value": "Ivan"}]})
            request_id = created.json()["callbackRequestId"]
            seen, got = watch_statuses(client, request_id)
            assert seen[-1] == "completed" and "dialing" in seen, (seen, server.log())
            # The demo reads the request out in English before dialling the visitor (simulated: its length).
            [attempt] = got["attempts"]
            assert attempt["outcome"] == "connected" and attempt["operatorPhone"] == "79990000010"
            balance = client.get(f"/api/admin/v1/sites/{site['id']}").json()["minutesBalance"]
            assert balance == site["minutesBalance"] - 1
    finally:
        stop_server(server)


def watch_statuses(client: httpx.Client, request_id: int, timeout: float = 30) -> tuple[list[str], dict]:
    """The statuses a request passes through until it ends, and its last journal resource.

    The worker is another process: the journal is all we can watch, so this polls it (bounded)."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while True:
        got = client.get(f"/api/admin/v1/requests/{request_id}").json()
        if not seen or seen[-1] != got["status"]:
            seen.append(got["status"])
        if got["status"] in ("completed", "failed") or time.monotonic() > deadline:
            return seen, got
        time.sleep(0.05)
