"""Real networks' needs against real peers: caller ID and ringback (Kamailio + baresip), early media
(sipp), SIP over TLS (Kamailio's TLS module) with SDES-SRTP (baresip's srtp module).

What each phone heard comes from its own recording (baresip's sndfile): the operator hears the
announcement, then the visitor's phone ringing, then the visitor.
"""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from perezvon.calls.dialer.base import Audio, RingResult
from perezvon.calls.dialer.sip import SipDialer, SipLeg, parse_trunk, tls_context

from .sip_audio import tone_share, windows

pytestmark = pytest.mark.e2e

OPERATOR = "79990000001"
VISITOR = "79990000002"
CALLER = "74950000000"


def shares(samples: list[int], freq: float, seconds: float = 0.25) -> list[float]:
    return [tone_share(w, freq) for w in windows(samples, seconds)]


def first(flags: list[bool]) -> int:
    return flags.index(True) if True in flags else len(flags)


async def udp_dialer(router) -> SipDialer:
    dialer = SipDialer(parse_trunk(f"udp:127.0.0.1:{router.port}", caller=CALLER))
    await dialer.start()
    return dialer


async def operator_answers(dialer: SipDialer, operator) -> tuple[SipLeg, dict]:
    """The operator's leg, placed for the visitor and answered: the leg and baresip's event of it."""
    op_leg = dialer.leg(OPERATOR, calling_number=VISITOR)
    assert await op_leg.ring(10) is RingResult.ANSWERED
    return op_leg, await operator.wait_event("CALL_ESTABLISHED")


async def test_operator_sees_the_visitor_hears_ringback_then_the_visitor(kamailio, phones) -> None:
    operator = await phones(OPERATOR, 440, seconds=30)
    visitor = await phones(VISITOR, 880, seconds=3, answermode="manual")  # picks up when told
    router = await kamailio({OPERATOR: operator.sip_port, VISITOR: visitor.sip_port})
    dialer = await udp_dialer(router)
    try:
        op_leg, incoming = await operator_answers(dialer, operator)
        await op_leg.play(Audio(b"\0\0" * 4000))  # stands in for the announcement: 0.5 s
        vis_leg = dialer.leg(VISITOR)
        ringing = asyncio.ensure_future(vis_leg.ring(15, ringback_to=op_leg, country="RU"))
        shown = await visitor.wait_event("CALL_INCOMING")
        await asyncio.sleep(2.5)  # the visitor lets it ring 2.5 s: the scenario, not a wait for an event
        await visitor.command("accept")
        assert await ringing is RingResult.ANSWERED
        await asyncio.wait_for(dialer.bridge(op_leg, vis_leg), 20)  # the visitor hangs up after 3 s
    finally:
        await dialer.close()
    operator.close()
    visitor.close()

    # Caller ID: the operator's phone shows the visitor; the visitor's shows our number.
    assert incoming.get("peerdisplayname") == f"Callback {VISITOR}", incoming
    assert shown.get("peeruri", "").startswith(f"sip:{CALLER}@"), shown
    assert not shown.get("peerdisplayname"), shown
    # The operator heard 425 Hz ringback (Russia's), then the visitor's 880 Hz, in that order.
    heard = operator.recording("dec")
    ring = [s > 0.8 for s in shares(heard, 425)]
    voice = [s > 0.8 for s in shares(heard, 880)]
    assert sum(ring) >= 2, "the operator heard no ringback"
    assert sum(voice) >= 4, "the operator did not hear the visitor"
    assert len(ring) - ring[::-1].index(True) <= first(voice), "ringback must stop before the visitor speaks"
    # The ringing phone heard nothing of it: the visitor hears only the operator.
    assert not any(s > 0.5 for s in shares(visitor.recording("dec"), 425))


async def test_operator_hears_the_visitors_early_media_instead_of_our_tone(
    kamailio, phones, sipp, tmp_path: Path
) -> None:
    early = tmp_path / "early.ul"  # 3 s of 1000 Hz: what the visitor's network plays while ringing
    subprocess.run(
        ["sox", "-n", "-r", "8000", "-c", "1", "-t", "ul", str(early), "synth", "3", "sine", "1000", "vol", "0.5"],
        check=True,
    )
    operator = await phones(OPERATOR, 440, seconds=30)
    network = await sipp("early_media.xml")  # plays ../early.ul: its working directory is in tmp_path
    router = await kamailio({OPERATOR: operator.sip_port, VISITOR: network.port})
    dialer = await udp_dialer(router)
    try:
        op_leg, _ = await operator_answers(dialer, operator)
        vis_leg = dialer.leg(VISITOR)
        assert await vis_leg.ring(10, ringback_to=op_leg, country="RU") is RingResult.ANSWERED
        await asyncio.gather(vis_leg.hangup(), op_leg.hangup())
        assert await network.wait() == 0, network.messages()[-2000:]
    finally:
        await dialer.close()
    operator.close()
    heard = operator.recording("dec")
    early_windows = [s > 0.8 for s in shares(heard, 1000)]
    assert sum(early_windows) >= 4, "the operator did not hear the early media"
    after = [s > 0.5 for s in shares(heard, 425)][first(early_windows) :]
    assert not any(after), "our ringback must stop once the far end's early media flows"


@pytest.mark.parametrize("mediaenc", ["srtp-mand", "srtp"])
async def test_tls_trunk_with_srtp_both_ways(kamailio, phones, mediaenc: str) -> None:
    srtp = "required" if mediaenc == "srtp-mand" else "optional"
    operator = await phones(OPERATOR, 440, seconds=30, mediaenc=mediaenc)
    visitor = await phones(VISITOR, 880, seconds=3, mediaenc=mediaenc)
    router = await kamailio({OPERATOR: operator.sip_port, VISITOR: visitor.sip_port}, tls=True)
    trunk = parse_trunk(f"tls:127.0.0.1:{router.tls_port}", caller=CALLER, srtp=srtp)
    dialer = SipDialer(trunk, tls=tls_context(ca_file=str(router.ca)))
    await dialer.start()
    try:
        op_leg = dialer.leg(OPERATOR)
        assert await op_leg.ring(10) is RingResult.ANSWERED
        await operator.wait_event("CALL_ESTABLISHED")
        vis_leg = dialer.leg(VISITOR)
        assert await vis_leg.ring(10) is RingResult.ANSWERED
        assert op_leg._srtp is not None and vis_leg._srtp is not None  # both legs negotiated SRTP
        await asyncio.wait_for(dialer.bridge(op_leg, vis_leg), 20)
        # The visitor's BYE reached us through Kamailio, back on our own TLS connection.
        assert vis_leg.ended_by_remote
        await operator.wait_event("CALL_CLOSED")
    finally:
        await dialer.close()
    operator.close()
    visitor.close()
    assert sum(s > 0.8 for s in shares(operator.recording("dec"), 880)) >= 4
    assert sum(s > 0.8 for s in shares(visitor.recording("dec"), 440)) >= 4


async def test_tls_trunk_with_an_untrusted_certificate_is_not_called(kamailio, phones) -> None:
    operator = await phones(OPERATOR, 440, seconds=30)
    router = await kamailio({OPERATOR: operator.sip_port}, tls=True)
    dialer = SipDialer(parse_trunk(f"tls:127.0.0.1:{router.tls_port}"))  # the system's CAs: not our test CA
    await dialer.start()
    try:
        assert await dialer.leg(OPERATOR).ring(3) is RingResult.UNAVAILABLE
    finally:
        await dialer.close()
    assert not any(ev.get("type") == "CALL_INCOMING" for ev in operator.events)
