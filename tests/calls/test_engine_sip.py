"""The engine over real SIP: Kamailio as the trunk, two baresip phones; the whole callback, recorded.

Peers and fixtures come from tests/e2e/sip (the SIP user agent's own end-to-end setup).
"""

from __future__ import annotations

import subprocess
import wave
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from e2e.sip.conftest import kamailio, need, phones  # noqa: F401 - fixtures
from perezvon.calls.dialer.sip import SipDialer, parse_trunk
from perezvon.calls.runtime import Runtime
from perezvon.calls.speech import rendered_speaker
from support import Admin, make_settings

pytestmark = pytest.mark.e2e

OPERATOR = "79990000011"
VISITOR = "79990000022"
ALWAYS = {"utcTimezone": "UTC+00:00", "hours": [{"dayOfWeek": d, "hour": h} for d in range(1, 8) for h in range(24)]}


async def call_back(kamailio, phones, sqlite_url: str, tmp_path: Path, visitor_source: Path | None = None,  # noqa: F811
                    *, direct_media: bool = False, bridged: list | None = None,
                    **widget: object) -> tuple[dict, dict, dict, object, object]:
    """One request called back over Kamailio between two baresip phones: request, site before and after, phones.

    Recorded, unless `direct_media`: then the site's own trunk (the same Kamailio) allows direct media and
    nothing records. The legs the dialer bridged are appended to `bridged`.
    """
    from perezvon.app import create_app

    operator = await phones(OPERATOR, 440, seconds=30)
    visitor = await phones(VISITOR, 880, seconds=3)  # hangs up when its tone ends
    if visitor_source is not None:  # what the visitor's phone plays instead (read when the call starts)
        (visitor.dir / "tone.wav").write_bytes(visitor_source.read_bytes())
    router = await kamailio({OPERATOR: operator.sip_port, VISITOR: visitor.sip_port})
    settings = replace(make_settings(sqlite_url), dialer="sip", recordings_dir=str(tmp_path / "rec"))
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        state = app.state
        dialer = SipDialer(parse_trunk(f"udp:127.0.0.1:{router.port}"))
        if bridged is not None:
            bridge = dialer.bridge

            async def spy(a, b, record_to=None):  # type: ignore[no-untyped-def]
                bridged.append((a, b))
                await bridge(a, b, record_to)

            dialer.bridge = spy  # type: ignore[method-assign]
        runtime = Runtime(state.db, state.snapshots, settings, dialer=dialer, speaker=rendered_speaker(),
                          life=state.requests)
        await runtime.start()
        try:
            transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
                admin = Admin(client)
                site, _ = await admin.site_with_widget(operatorPhones=[OPERATOR], schedule=ALWAYS,
                                                       callback={"language": "en", "redialAttempts": 0}, **widget)
                if direct_media:
                    trunk = {"host": "127.0.0.1", "port": router.port, "directMedia": True}
                    await admin.patch(f"/sites/{site['id']}", {"trunk": trunk})
                else:
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
    return got, site, after, operator, visitor


async def test_a_request_is_called_back_over_sip_bridged_recorded_and_billed(
    kamailio, phones, sqlite_url: str, tmp_path: Path  # noqa: F811
) -> None:
    # The visitor's phone plays a steady tone, which is what a voicemail beep sounds like: screening off.
    got, site, after, operator, visitor = await call_back(kamailio, phones, sqlite_url, tmp_path,
                                                          voicemailDetection=False)
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
    # Caller ID (#11): the operator's phone was shown the visitor being called back.
    established = next(ev for ev in operator.events if ev.get("type") == "CALL_ESTABLISHED")
    assert established.get("peerdisplayname") == f"Callback {VISITOR}", established


def spoken(tmp_path: Path, text: str, then_silence_s: float = 0.0) -> Path:
    """What the visitor's phone says: espeak-ng at 8 kHz, followed by silence (the phone hangs up at its end)."""
    need("espeak-ng")
    speech, out = tmp_path / "speech.wav", tmp_path / "visitor.wav"
    subprocess.run(["espeak-ng", "-v", "ru", "-w", str(speech), text], check=True)
    subprocess.run(["sox", str(speech), "-r", "8000", "-c", "1", "-b", "16", str(out), "gain", "-n", "-3",
                    "pad", "0.3", str(then_silence_s)], check=True)
    return out


async def test_a_person_who_says_allo_is_screened_and_bridged(
    kamailio, phones, sqlite_url: str, tmp_path: Path  # noqa: F811
) -> None:
    got, *_ = await call_back(kamailio, phones, sqlite_url, tmp_path, spoken(tmp_path, "Алло?", 5))
    [attempt] = got["attempts"]
    assert got["status"] == "completed" and attempt["outcome"] == "connected", got
    assert attempt["billedSeconds"] >= 1  # bridged for what was left of the visitor's 5 s of waiting


async def test_an_answering_machine_on_the_visitors_phone_is_hung_up_on_not_bridged(
    kamailio, phones, sqlite_url: str, tmp_path: Path  # noqa: F811
) -> None:
    greeting = spoken(tmp_path, "Здравствуйте, вы позвонили Ивану Петрову. Сейчас я не могу ответить, "
                                "оставьте сообщение после сигнала.")
    got, site, after, operator, visitor = await call_back(kamailio, phones, sqlite_url, tmp_path, greeting)
    [attempt] = got["attempts"]
    assert got["status"] == "failed" and attempt["outcome"] == "client_voicemail", got  # no redials configured
    assert attempt["clientAnsweredAt"] is not None
    assert attempt["billedSeconds"] == 0 and attempt["recordingUrl"] is None  # never bridged
    assert after["minutesBalance"] == site["minutesBalance"]
    await visitor.wait_event("CALL_CLOSED")  # we hung up on the machine (its greeting is longer than that)
    await operator.wait_event("CALL_CLOSED")


async def test_a_direct_media_trunk_bridges_the_phones_end_to_end_and_bills_the_same(
    kamailio, phones, sqlite_url: str, tmp_path: Path  # noqa: F811
) -> None:
    bridged: list = []
    got, site, after, operator, visitor = await call_back(kamailio, phones, sqlite_url, tmp_path, direct_media=True,
                                                          bridged=bridged, voicemailDetection=False)
    [attempt] = got["attempts"]
    assert got["status"] == "completed" and attempt["outcome"] == "connected", got
    assert 2 <= attempt["billedSeconds"] <= 10 and attempt["recordingUrl"] is None
    assert after["minutesBalance"] == site["minutesBalance"] - 1
    [(op_leg, vis_leg)] = bridged
    for leg in (op_leg, vis_leg):
        assert leg.relayed_at_direct is not None and leg.packets_relayed - leg.relayed_at_direct <= 10
    await operator.wait_event("CALL_CLOSED")
    await visitor.wait_event("CALL_CLOSED")
