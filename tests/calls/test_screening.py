"""Screening the visitor's side before the bridge: `calls.screening.screen` and the engine's use of it.

The legs here hand the detector audio made up on the spot (a 1 kHz beep: an answering machine) in
sample time, so nothing waits on the wall clock.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable

from sqlalchemy import select, update

from perezvon.calls.dialer.simulated import SimulatedLeg
from perezvon.calls.media.voicemail import FRAME, HUMAN, MACHINE, RATE
from perezvon.calls.screening import screen

ALWAYS = {"utcTimezone": "UTC+00:00", "hours": [{"dayOfWeek": d, "hour": h} for d in range(1, 8) for h in range(24)]}
MACHINE_NUMBER = "79001234577"  # this test's answering machine


def beep_frames() -> list[tuple[bytes, float]]:
    """0.3 s of line, then a 1 kHz beep: 20 ms frames with their time since the answer."""
    samples = array("h", [0] * int(0.3 * RATE))
    samples.extend(int(8000 * math.sin(2 * math.pi * 1000 * i / RATE)) for i in range(int(0.5 * RATE)))
    data = samples.tobytes()
    return [(data[i : i + FRAME * 2], i / 2 / RATE) for i in range(0, len(data), FRAME * 2)]


def answering_machine_listen(self: SimulatedLeg, hear: Callable[[bytes, float], None] | None) -> bool:
    """SimulatedLeg.listen for these tests: MACHINE_NUMBER plays a beep, other numbers carry no audio."""
    if not self.number.endswith(MACHINE_NUMBER[-2:]):
        return False
    self.heard_by = hear
    if hear is not None:
        for pcm, at in beep_frames():
            hear(pcm, at)
    return True


async def test_a_beep_on_the_line_is_a_machine(monkeypatch) -> None:
    monkeypatch.setattr(SimulatedLeg, "listen", answering_machine_listen, raising=False)
    leg = SimulatedLeg(MACHINE_NUMBER, 0, 0, 0)
    verdict = await screen(leg)
    assert (verdict.kind, verdict.reason) == (MACHINE, "a 1000 Hz beep")
    assert leg.heard_by is None  # screening stopped listening once it had decided


async def test_a_line_without_audio_is_a_person_at_once() -> None:
    verdict = await screen(SimulatedLeg("79001234567", 0, 0, 0))
    assert verdict.kind == HUMAN and verdict.at == 0.0


async def _widget(eng, **values):
    site, widget = await eng.admin.site_with_widget(
        operatorPhones=["79990000010"], schedule=ALWAYS,
        callback={"redialAttempts": 1, "redialIntervalSeconds": 10}, **values)
    from perezvon.store.tables import widgets

    async with eng.db.write() as conn:  # redial at once (below the API's 10 s minimum) so the test does not wait
        row = (await conn.execute(select(widgets.c.callback).where(widgets.c.id == widget["id"]))).scalar()
        await conn.execute(update(widgets).where(widgets.c.id == widget["id"]).values(
            callback={**row, "redialIntervalSeconds": 0}))
    eng.runtime.snapshots.invalidate(site["id"])
    return site


async def test_an_answering_machine_is_not_bridged_and_is_redialled(engine_factory, monkeypatch) -> None:
    monkeypatch.setattr(SimulatedLeg, "listen", answering_machine_listen, raising=False)
    bridged: list[str] = []
    async with engine_factory() as eng:
        site = await _widget(eng)
        real_bridge = eng.dialer.bridge

        async def watched_bridge(a, b, record_to=None):
            bridged.append(b.number)
            await real_bridge(a, b, record_to)

        eng.dialer.bridge = watched_bridge
        with eng.bus.subscribe() as events:
            machine = await eng.create("my_form_1", MACHINE_NUMBER, site["siteKey"])
            person = await eng.create("my_form_1", "79001234567", site["siteKey"])
            assert await eng.wait_final(events, {machine, person}) == {machine: "failed", person: "completed"}
        attempts = (await eng.request(machine))["attempts"]
        assert [a["outcome"] for a in attempts] == ["client_voicemail"] * 2  # redialled like no answer
        assert [a["billedSeconds"] for a in attempts] == [0, 0]
        assert bridged == ["79001234567"]  # the operator never heard the machine


async def test_with_detection_off_the_machine_is_bridged(engine_factory, monkeypatch) -> None:
    monkeypatch.setattr(SimulatedLeg, "listen", answering_machine_listen, raising=False)
    async with engine_factory() as eng:
        site = await _widget(eng, voicemailDetection=False)
        with eng.bus.subscribe() as events:
            rid = await eng.create("my_form_1", MACHINE_NUMBER, site["siteKey"])
            assert await eng.wait_final(events, {rid}) == {rid: "completed"}
        assert [a["outcome"] for a in (await eng.request(rid))["attempts"]] == ["connected"]
