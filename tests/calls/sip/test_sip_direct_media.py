"""Direct media in SipDialer's bridge, against the in-process fake trunk of test_sip_dialer.py.

(Its `dialer` and `trunk` fixtures come through conftest.py.)

The trunk answers our re-INVITEs by number (…r488, …r491 refuse; a phone of one law refuses the other: 488), so each
fallback of the RFC 3725 flow is checked: what each far end was offered, and that the call stays
relayed and up when one refuses.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from calls.sip.test_sip_dialer import HOST, FakeTrunk, next_response
from perezvon.calls.dialer.base import RingResult, Trunk
from perezvon.calls.dialer.sip import SipDialer, SipLeg
from perezvon.calls.dialer.sip import rtp as rtplib
from perezvon.calls.dialer.sip.sdp import PCMA, PCMU, build_sdp, parse_sdp
from perezvon.calls.lines import sip_dialer_from_settings
from perezvon.calls.trunks import trunk_of_site
from perezvon.settings import load_settings
from perezvon.shapes.schemas import Trunk as SiteTrunk


async def answered_pair(dialer: SipDialer, trunk: FakeTrunk, a: str, b: str, *, direct: bool = True):
    line = Trunk(HOST, trunk.port, direct_media=direct)
    legs = dialer.leg(a, line), dialer.leg(b, line)
    for leg in legs:
        assert await leg.ring(5) is RingResult.ANSWERED
        await trunk.requests_until("ACK")  # its 200's: later ACKs are the re-INVITEs'
    return legs


async def bridged(
    dialer: SipDialer,
    trunk: FakeTrunk,
    legs: tuple[SipLeg, SipLeg],
    *,
    answers: int,
    record_to: Path | None = None,
) -> asyncio.Future:
    """Start the bridge and wait until the trunk has its ACKs of as many re-INVITE answers."""
    task = asyncio.ensure_future(dialer.bridge(*legs, record_to))
    for _ in range(answers):
        await trunk.requests_until("ACK")
    await asyncio.sleep(0)  # the bridge's next step runs once the answer's future is set
    return task


def offered(trunk: FakeTrunk, number: str) -> list[tuple[int, list[int]]]:
    return [(sdp.port, sdp.payload_types) for sdp in (parse_sdp(r.body) for r in trunk.reinvites.get(number, []))]


async def hang_up(task: asyncio.Future, leg: SipLeg) -> None:
    await leg.hangup()
    await asyncio.wait_for(task, 5)


async def test_each_far_end_is_offered_the_other_and_the_relay_is_left_out(dialer, trunk) -> None:
    a, b = await answered_pair(dialer, trunk, "79000000031pcma", "79000000032pcma")
    a_phone, b_phone = trunk.phones["79000000031pcma"].port, trunk.phones["79000000032pcma"].port
    task = await bridged(dialer, trunk, (a, b), answers=2)
    # A gets B's phone and codec (PCMA only: what B expects), then B gets A's answer.
    assert offered(trunk, "79000000031pcma") == [(b_phone, [8, 101])]
    assert offered(trunk, "79000000032pcma") == [(a_phone, [8, 101])]
    assert a.relayed_at_direct == 0 and b.relayed_at_direct == 0
    assert not task.done()  # no watchdog: silence on our ports is expected now
    # A session refresh from A's side (offerless, then with an offer) keeps A pointed at B's phone.
    assert a.dialog is not None
    trunk.in_dialog(a.dialog.call_id, "INVITE", cseq=2)
    assert parse_sdp((await next_response(trunk, "INVITE")).body).port == b_phone
    refresh = build_sdp(HOST, a_phone, session_id=1, version=3, codecs=(PCMA,))
    trunk.in_dialog(a.dialog.call_id, "INVITE", refresh, cseq=3)
    assert parse_sdp((await next_response(trunk, "INVITE")).body).port == b_phone
    # Hold is answered from our own port: that end's media comes back to the relay, still bridged.
    hold = build_sdp(HOST, a_phone, session_id=1, version=4, codecs=(PCMA,), direction="sendonly")
    trunk.in_dialog(a.dialog.call_id, "INVITE", hold, cseq=4)
    assert parse_sdp((await next_response(trunk, "INVITE")).body).port == trunk.our_rtp_port["79000000031pcma"]
    await hang_up(task, b)
    assert a.is_ended and b.is_ended


async def test_a_far_end_that_lost_the_call_is_found_by_options_and_both_legs_end(trunk) -> None:
    dialer = SipDialer(None, rtp_timeout=0.2)  # pings every 0.1 s
    await dialer.start()
    try:
        a, b = await answered_pair(dialer, trunk, "79000000071", "79000000072gone")
        task = await bridged(dialer, trunk, (a, b), answers=2)
        assert a.relayed_at_direct is not None
        await asyncio.wait_for(task, 5)  # the bridge ended, without any RTP ever being expected
        assert a.is_ended and b.is_ended and not a.ended_by_remote
        assert {r.call_id for r in trunk.received if r.method == "BYE"} >= {a.call.call_id, b.call.call_id}  # type: ignore[union-attr]
    finally:
        await dialer.close()


async def test_a_refusal_from_the_first_end_changes_nothing(dialer, trunk) -> None:
    a, b = await answered_pair(dialer, trunk, "79000000041r488", "79000000042")
    task = await bridged(dialer, trunk, (a, b), answers=1)
    assert len(offered(trunk, "79000000041r488")) == 1 and offered(trunk, "79000000042") == []
    assert a.relayed_at_direct is None and not task.done()
    await relayed_a_to_b(trunk, a, "79000000041r488", "79000000042")
    await hang_up(task, a)


async def test_phones_of_different_laws_stay_relayed_and_transcoded(dialer, trunk) -> None:
    a, b = await answered_pair(dialer, trunk, "79000000043", "79000000044pcma")
    task = await bridged(dialer, trunk, (a, b), answers=1)
    assert offered(trunk, "79000000043") == [(trunk.phones["79000000044pcma"].port, [8, 101])]  # µ-law: 488
    assert offered(trunk, "79000000044pcma") == [] and a.relayed_at_direct is None
    await relayed_a_to_b(trunk, a, "79000000043", "79000000044pcma")
    assert trunk.phones["79000000044pcma"].packets[0].payload_type == 8
    await hang_up(task, a)


async def test_glare_is_tried_once_more_then_the_first_end_is_put_back_on_our_relay(dialer, trunk) -> None:
    dialer.glare_retry = (0.01, 0.02)  # RFC 3261's 2.1-4 s, shortened
    a, b = await answered_pair(dialer, trunk, "79000000051", "79000000052r491")
    task = await bridged(dialer, trunk, (a, b), answers=4)
    ours = trunk.our_rtp_port["79000000051"]
    b_phone = trunk.phones["79000000052r491"].port
    # Pointed at B's phone; B answered 491 twice; so A goes back to our own port, with both codecs.
    assert offered(trunk, "79000000051") == [(b_phone, [PCMU, 101]), (ours, [PCMU, 8, 101])]
    assert len(offered(trunk, "79000000052r491")) == 2
    assert a.media is not None and a.media.port == trunk.phones["79000000051"].port
    assert a.relayed_at_direct is None and b.relayed_at_direct is None and not task.done()
    await relayed_a_to_b(trunk, a, "79000000051", "79000000052r491")
    await hang_up(task, a)


async def test_glare_once_then_the_retry_goes_direct(dialer, trunk) -> None:
    dialer.glare_retry = (0.01, 0.02)
    a, b = await answered_pair(dialer, trunk, "79000000053r491once", "79000000054")
    task = await bridged(dialer, trunk, (a, b), answers=3)
    assert len(offered(trunk, "79000000053r491once")) == 2 and len(offered(trunk, "79000000054")) == 1
    assert a.relayed_at_direct is not None and b.relayed_at_direct is not None
    await hang_up(task, a)


async def test_no_reinvite_when_recording_or_when_the_trunk_does_not_allow_it(
    dialer,
    trunk,
    tmp_path: Path,
) -> None:
    a, b = await answered_pair(dialer, trunk, "79000000061", "79000000062")
    task = await bridged(dialer, trunk, (a, b), answers=0, record_to=tmp_path / "rec.wav")
    c, d = await answered_pair(dialer, trunk, "79000000063", "79000000064", direct=False)
    task2 = await bridged(dialer, trunk, (c, d), answers=0)
    await relayed_a_to_b(trunk, a, "79000000061", "79000000062")  # the bridges are up, relaying
    await relayed_a_to_b(trunk, c, "79000000063", "79000000064")
    assert trunk.reinvites == {}
    await hang_up(task, a)
    await hang_up(task2, c)


async def relayed_a_to_b(trunk: FakeTrunk, a: SipLeg, a_number: str, b_number: str) -> None:
    """A packet from A's phone to our port comes out at B's phone: the relay still carries the call."""
    sender = rtplib.RtpSender()
    trunk.phones[a_number].send(sender.packet(PCMU, rtplib.silence(PCMU, 160)), trunk.our_rtp_port[a_number])
    await asyncio.wait_for(trunk.phones[b_number].got.wait(), 2)
    assert a.packets_relayed == 0 and trunk.phones[b_number].packets


def test_the_settings_and_a_sites_trunk_say_whether_direct_media_is_allowed(monkeypatch) -> None:
    monkeypatch.setenv("PEREZVON_SIP_TRUNK", "udp:pbx.example:5060")
    monkeypatch.setenv("PEREZVON_SIP_DIRECT_MEDIA", "true")
    assert sip_dialer_from_settings(load_settings()).trunk.direct_media  # type: ignore[union-attr]
    monkeypatch.delenv("PEREZVON_SIP_DIRECT_MEDIA")
    assert not sip_dialer_from_settings(load_settings()).trunk.direct_media  # type: ignore[union-attr]
    site = {"trunk": SiteTrunk(host="pbx.site.example", direct_media=True).model_dump(by_alias=True)}
    assert site["trunk"]["directMedia"] is True
    assert trunk_of_site(site).direct_media  # type: ignore[union-attr]
    assert not trunk_of_site({"trunk": {"host": "pbx.site.example"}}).direct_media  # type: ignore[union-attr]
