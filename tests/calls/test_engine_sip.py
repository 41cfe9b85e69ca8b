"""The engine over real SIP: Kamailio as the trunk, two baresip phones; the whole callback, recorded.

Peers and fixtures come from tests/e2e/sip (the SIP user agent's own end-to-end setup).
"""

from __future__ import annotations

import wave
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from e2e.sip.conftest import kamailio, phones  # noqa: F401 - fixtures
from perezvon.calls.dialer.sip import SipDialer, parse_trunk
from perezvon.calls.runtime import Runtime
from perezvon.calls.speech import rendered_speaker
from support import Admin, make_settings

pytestmark = pytest.mark.e2e

OPERATOR = "79990000011"
VISITOR = "79990000022"
ALWAYS = {"utcTimezone": "UTC+00:00", "hours": [{"dayOfWeek": d, "hour": h} for d in range(1, 8) for h in range(24)]}


async def test_a_request_is_called_back_over_sip_bridged_recorded_and_billed(
    kamailio, phones, sqlite_url: str, tmp_path: Path  # noqa: F811
) -> None:
    from perezvon.app import create_app

    operator = await phones(OPERATOR, 440, seconds=30)
    visitor = await phones(VISITOR, 880, seconds=3)  # hangs up when its tone ends
    router = await kamailio({OPERATOR: operator.sip_port, VISITOR: visitor.sip_port})
    settings = replace(make_settings(sqlite_url), dialer="sip", recordings_dir=str(tmp_path / "rec"))
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        state = app.state
        dialer = SipDialer(parse_trunk(f"udp:127.0.0.1:{router.port}"))
        runtime = Runtime(state.db, state.snapshots, settings, dialer=dialer, speaker=rendered_speaker(),
                          life=state.requests)
        await runtime.start()
        try:
            transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
                admin = Admin(client)
                site, _ = await admin.site_with_widget(operatorPhones=[OPERATOR], schedule=ALWAYS,
                                                       callback={"language": "en", "redialAttempts": 0})
                await admin.patch(f"/sites/{site['id']}", {"recordCalls": True})
                with runtime.bus.subscribe() as events:
                    created = await client.post("/api/widget/v1/requests", json={
                        "site": site["siteKey"], "routeKey": "my_form_1", "phone": VISITOR,
                        "fields": [{"name": "Name", "value": "Ivan"}]})
                    rid = created.json()["callbackRequestId"]
                    while True:
                        event = await events.next(60)
                        if event["requestId"] == rid and event["status"] in ("completed", "failed"):
                            break
                got = await admin.get(f"/requests/{rid}")
                after = await admin.get(f"/sites/{site['id']}")
        finally:
            await runtime.stop(grace=10)
    [attempt] = got["attempts"]
    assert got["status"] == "completed" and attempt["outcome"] == "connected", got
    assert attempt["operatorPhone"] == OPERATOR
    assert 2 <= attempt["billedSeconds"] <= 10  # the visitor's 3 s tone, then it hangs up
    assert after["minutesBalance"] == site["minutesBalance"] - 1
    assert attempt["recordingUrl"]
    [recording] = list((tmp_path / "rec").rglob("*.wav"))
    with wave.open(str(recording)) as w:
        assert (w.getframerate(), w.getnchannels()) == (8000, 1) and w.getnframes() > 8000
    await operator.wait_event("CALL_CLOSED")
    await visitor.wait_event("CALL_CLOSED")
