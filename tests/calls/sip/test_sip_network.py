"""What a real network asks of the dialer: caller ID, a NAT's public address, symmetric RTP (latching).

Against the in-process fake trunk of test_sip_dialer: it records every INVITE, so the headers we
advertise can be checked exactly, and its phones' RTP sockets can send from ports the SDP did not name.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator

import pytest

from calls.sip.test_sip_dialer import HOST, FakePhone, FakeTrunk, dialer, next_response, trunk  # noqa: F401 - fixtures
from e2e.sip.sip_audio import tone_share
from perezvon.calls.dialer.base import RingResult, Trunk
from perezvon.calls.dialer.sip import SipDialer, parse_trunk, srtp
from perezvon.calls.dialer.sip import rtp as rtplib
from perezvon.calls.dialer.sip.message import NameAddr, SipRequest
from perezvon.calls.dialer.sip.ringback import ringback_period
from perezvon.calls.dialer.sip.sdp import PCMU, Negotiated, build_sdp, parse_sdp
from perezvon.calls.dialer.sip.trunk import from_identity
from perezvon.calls.lines import sip_dialer_from_settings
from perezvon.settings import Settings

VISITOR = "79001234567"
PUBLIC = "203.0.113.7"  # TEST-NET-3: what a 1:1 NAT would give us


def invites(fake: FakeTrunk) -> list[SipRequest]:
    return [r for r in fake.received if r.method == "INVITE"]


async def dial(fake: FakeTrunk, number: str, **trunk_options: object) -> tuple[SipDialer, SipRequest]:
    ua = SipDialer(parse_trunk(f"udp:{HOST}:{fake.port}", caller="74950000000", **trunk_options))
    await ua.start()
    leg = ua.leg(number, calling_number=VISITOR)
    assert await leg.ring(5) is RingResult.ANSWERED
    return ua, invites(fake)[-1]


# --- caller ID -------------------------------------------------------------------------------------


def test_from_identity_choices() -> None:
    ours = Trunk("pbx", caller="74950000000")
    assert from_identity(ours, None) == ("", "74950000000")  # the visitor's leg: our number
    assert from_identity(ours, VISITOR) == ("Callback 79001234567", "74950000000")
    assert from_identity(Trunk("pbx", caller="7495", caller_id="user"), VISITOR) == ("", VISITOR)
    odd = Trunk("pbx", caller_display='Call "back" \\ {number}')
    assert from_identity(odd, VISITOR) == ("Call back  79001234567", "perezvon")  # no quoting escapes


async def test_operator_sees_the_visitor_in_the_display_name(trunk: FakeTrunk) -> None:  # noqa: F811
    ua, invite = await dial(trunk, "79000000101")
    try:
        sent = NameAddr.parse(invite.need("From"))
        assert sent.display == "Callback 79001234567"
        assert sent.uri == f"sip:74950000000@{HOST}"
        assert "P-Asserted-Identity" not in invite.headers
        visitor = ua.leg(VISITOR)  # the visitor's leg shows our caller number, no display name
        assert await visitor.ring(5) is RingResult.ANSWERED
        shown = NameAddr.parse(invites(trunk)[-1].need("From"))
        assert (shown.display, shown.uri) == ("", f"sip:74950000000@{HOST}")
    finally:
        await ua.close()


async def test_operator_sees_the_visitor_as_the_user_part_with_asserted_identity(
    trunk: FakeTrunk,  # noqa: F811
) -> None:
    ua, invite = await dial(trunk, "79000000102", caller_id="user", assert_identity=True)
    try:
        assert NameAddr.parse(invite.need("From")).uri == f"sip:{VISITOR}@{HOST}"
        assert invite.need("P-Asserted-Identity") == f"<sip:{VISITOR}@{HOST}>"
    finally:
        await ua.close()


# --- NAT: advertise the public address, bind the private one ------------------------------------------


async def test_public_address_goes_in_via_contact_and_sdp_but_media_still_arrives(
    trunk: FakeTrunk,  # noqa: F811
) -> None:
    ua = SipDialer(parse_trunk(f"udp:{HOST}:{trunk.port}"), public_address=PUBLIC)
    await ua.start()
    try:
        leg = ua.leg("79000000103")
        assert await leg.ring(5) is RingResult.ANSWERED
        invite = invites(trunk)[-1]
        via = invite.top_via
        assert (via.host, via.port) == (PUBLIC, ua.local_port())
        assert "rport" in via.params  # RFC 3581: answers come back to where we sent from
        assert NameAddr.parse(invite.need("Contact")).uri == f"sip:perezvon@{PUBLIC}:{ua.local_port()}"
        offer = parse_sdp(invite.body)
        assert offer.address == PUBLIC and f"IN IP4 {PUBLIC}" in invite.body.decode().split("\r\n")[1]
        ack = await trunk.requests_until("ACK")
        assert ack.top_via.host == PUBLIC
        # Only what is advertised changed: the RTP socket is bound where it was, and hears the phone.
        assert leg._rtp is not None and leg._rtp.host == HOST
        phone = trunk.phones["79000000103"]
        phone.send(rtplib.RtpSender().packet(PCMU, b"\xff" * 160), offer.port)
        await _until(lambda: leg.packets_in == 1)
    finally:
        await ua.close()


def test_public_address_setting_is_an_ip_without_port(monkeypatch: pytest.MonkeyPatch) -> None:
    from perezvon.settings import SettingsError, load_settings

    monkeypatch.setenv("PEREZVON_SIP_PUBLIC_ADDRESS", PUBLIC)
    assert load_settings().sip_public_address == PUBLIC
    assert sip_dialer_from_settings(Settings(sip_public_address=PUBLIC)).public_address == PUBLIC
    built = sip_dialer_from_settings(
        Settings(sip_trunk="tls:pbx.example", sip_caller_id="user", sip_assert_identity=True, sip_srtp="optional")
    )
    assert built.trunk == Trunk("pbx.example", 5061, "tls", caller_id="user", assert_identity=True, srtp="optional")
    assert built.tls_context is not None and built.tls_context.check_hostname
    for bad in (f"{PUBLIC}:5060", "nat.example.com"):
        monkeypatch.setenv("PEREZVON_SIP_PUBLIC_ADDRESS", bad)
        with pytest.raises(SettingsError, match="PEREZVON_SIP_PUBLIC_ADDRESS"):
            load_settings()


# --- symmetric RTP -----------------------------------------------------------------------------------


def test_latch_moves_the_port_only_for_the_negotiated_host() -> None:
    media = Negotiated("192.0.2.20", 4000, PCMU, 101, "sendrecv")
    assert media.latch(("192.0.2.20", 31000)) == Negotiated("192.0.2.20", 31000, PCMU, 101, "sendrecv")
    assert media.latch(("198.51.100.9", 4000)) is None


@pytest.fixture
async def natted_phone() -> AsyncIterator[FakePhone]:
    """A socket on the phone's host but not on the port its SDP names: what a NAT in front of it does."""
    phone = await FakePhone.open()
    yield phone
    assert phone.transport is not None
    phone.transport.close()


async def test_media_latches_to_the_port_it_comes_from_and_ignores_other_hosts(
    trunk: FakeTrunk,  # noqa: F811
    natted_phone: FakePhone,
) -> None:
    ua = SipDialer(parse_trunk(f"udp:{HOST}:{trunk.port}"))
    await ua.start()
    try:
        a, b = ua.leg("79000000104"), ua.leg("79000000105")
        assert await a.ring(5) is RingResult.ANSWERED and await b.ring(5) is RingResult.ANSWERED
        bridge = asyncio.ensure_future(ua.bridge(a, b))
        await asyncio.sleep(0)  # let the bridge link the legs
        pa, pb = trunk.phones["79000000104"], trunk.phones["79000000105"]
        loud = rtplib.encode(struct.pack("<160h", *([6000] * 160)), PCMU)
        # A packet from a host the SDP did not name is neither relayed nor latched onto.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stranger:
            stranger.bind(("127.0.0.2", 0))
            stranger.sendto(rtplib.RtpSender().packet(PCMU, loud), (HOST, trunk.our_rtp_port["79000000104"]))
            await _until(lambda: a.packets_foreign == 1)
        assert a.media is not None and a.media.port == pa.port
        # The operator's phone sends from another port than its SDP said: we answer to that port.
        sender = rtplib.RtpSender()
        natted_phone.send(sender.packet(PCMU, loud), trunk.our_rtp_port["79000000104"])
        await _until(lambda: a.media is not None and a.media.port == natted_phone.port)
        pb.send(rtplib.RtpSender().packet(PCMU, loud), trunk.our_rtp_port["79000000105"])
        await asyncio.wait_for(natted_phone.got.wait(), 2)  # b's media reached a's real port
        assert pa.packets == [] and len(pb.packets) == 1
        bridge.cancel()
    finally:
        await ua.close()


async def _until(condition: object, timeout: float = 2.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.005)  # a datagram on loopback: no event to await in the leg


# --- what the operator hears while the visitor rings ----------------------------------------------------


def heard(phone: FakePhone) -> list[int]:
    pcm = rtplib.decode(b"".join(p.payload for p in phone.packets), PCMU)
    return list(struct.unpack(f"<{len(pcm) // 2}h", pcm))


def test_ringback_cadences() -> None:
    ru = ringback_period("RU")
    assert ru.seconds == pytest.approx(4.0)  # 0.8 s of 425 Hz, 3.2 s silence
    samples = list(struct.unpack(f"<{len(ru.pcm) // 2}h", ru.pcm))
    assert tone_share(samples[:6400], 425) > 0.9 and not any(samples[6500:])
    assert ringback_period("US").seconds == pytest.approx(6.0)
    assert ringback_period("??") == ringback_period("DE")  # ETSI's, for a country we have no table for


async def test_operator_hears_ringback_while_the_visitor_rings(dialer: SipDialer, trunk: FakeTrunk) -> None:  # noqa: F811
    operator = dialer.leg("79000000106")
    assert await operator.ring(5) is RingResult.ANSWERED
    visitor = dialer.leg("7900000ring")
    assert await visitor.ring(0.6, ringback_to=operator, country="RU") is RingResult.NO_ANSWER
    phone = trunk.phones["79000000106"]
    await _until(lambda: len(phone.packets) >= 25)
    got = len(phone.packets)
    tone = heard(phone)
    assert tone_share(tone[:3200], 425) > 0.8, "the operator should hear a 425 Hz ringback"
    await asyncio.sleep(0.1)
    assert len(phone.packets) <= got + 1, "the tone stops when the ringing does"


async def test_early_media_replaces_the_tone(dialer: SipDialer, trunk: FakeTrunk) -> None:  # noqa: F811
    operator = dialer.leg("79000000107")
    assert await operator.ring(5) is RingResult.ANSWERED
    visitor = dialer.leg("790000early")
    ringing = asyncio.ensure_future(visitor.ring(2, ringback_to=operator, country="US"))
    await _until(lambda: "790000early" in trunk.phones and visitor.media is not None)
    op_phone, early = trunk.phones["79000000107"], trunk.phones["790000early"]
    await _until(lambda: len(op_phone.packets) >= 3)  # our tone while nothing came from the far end
    sender = rtplib.RtpSender()
    beep = rtplib.encode(struct.pack("<160h", *([7000, -7000] * 80)), PCMU)  # 4 kHz: not a ringback tone
    for _ in range(10):
        early.send(sender.packet(PCMU, beep), trunk.our_rtp_port["790000early"])
        await asyncio.sleep(0.02)
    await _until(lambda: op_phone.packets[-1].payload == beep)
    tail = [p.payload for p in op_phone.packets[-8:]]
    assert tail == [beep] * 8, "the operator hears the visitor's early media, and only that, once it flows"
    assert early.packets == [], "the ringing phone hears nothing of the operator"
    ringing.cancel()


# --- SDES-SRTP -------------------------------------------------------------------------------------------


def test_crypto_attribute_round_trip_and_refusals() -> None:
    key = srtp.new_key()
    assert srtp.parse_crypto([srtp.crypto_attribute(key, tag=3)]) == (3, key)
    assert srtp.parse_crypto(["1 AES_CM_128_HMAC_SHA1_32 inline:" + "A" * 40]) is None  # a suite we do not offer
    assert srtp.parse_crypto(["1 AES_CM_128_HMAC_SHA1_80 inline:short"]) is None
    a, b = srtp.SrtpContext(key, srtp.new_key()), None
    b = srtp.SrtpContext(a.remote_key, key)
    packet = rtplib.RtpSender().packet(PCMU, b"\xff" * 160)
    assert b.unprotect(a.protect(packet)) == packet
    with pytest.raises(srtp.SrtpError):
        b.unprotect(packet)  # plain RTP does not authenticate


@pytest.mark.parametrize("mode", ["optional", "required"])
async def test_srtp_offered_answered_and_relayed_encrypted(trunk: FakeTrunk, mode: str) -> None:  # noqa: F811
    ua = SipDialer(parse_trunk(f"udp:{HOST}:{trunk.port}", srtp=mode))
    await ua.start()
    try:
        a, b = ua.leg("790000srtp1"), ua.leg("790000srtp2")
        assert await a.ring(5) is RingResult.ANSWERED and await b.ring(5) is RingResult.ANSWERED
        offer = parse_sdp(invites(trunk)[-1].body)
        assert offer.proto == ("RTP/SAVP" if mode == "required" else "RTP/AVP")
        ours = srtp.parse_crypto(offer.crypto)
        assert ours is not None
        bridge = asyncio.ensure_future(ua.bridge(a, b))
        await asyncio.sleep(0)
        pa, pb = trunk.phones["790000srtp1"], trunk.phones["790000srtp2"]
        # What phone A sends under its key reaches phone B under ours, decryptable only with our key.
        phone_a = srtp.SrtpContext(trunk.srtp_keys["790000srtp1"], ours[1])
        phone_b = srtp.SrtpContext(trunk.srtp_keys["790000srtp2"], ours[1])
        voice = rtplib.encode(struct.pack("<160h", *([5000] * 160)), PCMU)
        pa.send(phone_a.protect(rtplib.RtpSender().packet(PCMU, voice)), trunk.our_rtp_port["790000srtp1"])
        await asyncio.wait_for(pb.got.wait(), 2)
        raw = pb.raw[-1]
        assert voice not in raw  # encrypted on the wire
        assert rtplib.RtpPacket.parse(phone_b.unprotect(raw)).payload == voice
        bridge.cancel()
    finally:
        await ua.close()


async def test_srtp_required_refuses_a_plain_answer(trunk: FakeTrunk) -> None:  # noqa: F811
    ua = SipDialer(parse_trunk(f"udp:{HOST}:{trunk.port}", srtp="required"))
    await ua.start()
    try:
        leg = ua.leg("79000000108")  # this phone answers without a key
        assert await leg.ring(5) is RingResult.ERROR
        assert (await trunk.requests_until("BYE")).call_id == invites(trunk)[-1].call_id
    finally:
        await ua.close()


async def test_srtp_reinvite_with_a_new_key_is_answered_in_its_profile(trunk: FakeTrunk) -> None:  # noqa: F811
    ua = SipDialer(parse_trunk(f"udp:{HOST}:{trunk.port}", srtp="required"))
    await ua.start()
    try:
        leg = ua.leg("790000srtp3")
        assert await leg.ring(5) is RingResult.ANSWERED and leg.dialog is not None
        ours = srtp.parse_crypto(parse_sdp(invites(trunk)[-1].body).crypto)
        assert ours is not None
        phone = trunk.phones["790000srtp3"]
        new_key = srtp.new_key()
        offer = build_sdp(
            HOST,
            phone.port,
            session_id=1,
            version=2,
            codecs=(PCMU,),
            crypto=srtp.crypto_attribute(new_key, tag=7),
            proto="RTP/SAVP",
        )
        trunk.in_dialog(leg.dialog.call_id, "INVITE", offer, cseq=2)
        answer = parse_sdp((await next_response(trunk, "INVITE")).body)
        assert answer.proto == "RTP/SAVP" and srtp.parse_crypto(answer.crypto) == (7, ours[1])
        # Media under the far end's new key is accepted; under the old one it no longer is.
        voice = rtplib.encode(struct.pack("<160h", *([3000] * 160)), PCMU)
        sender = rtplib.RtpSender()
        old = srtp.SrtpContext(trunk.srtp_keys["790000srtp3"], ours[1])
        phone.send(old.protect(sender.packet(PCMU, voice)), trunk.our_rtp_port["790000srtp3"])
        await _until(lambda: leg.packets_dropped == 1)
        fresh = srtp.SrtpContext(new_key, ours[1])
        phone.send(fresh.protect(sender.packet(PCMU, voice)), trunk.our_rtp_port["790000srtp3"])
        await _until(lambda: leg.packets_in == 1)
    finally:
        await ua.close()


async def test_a_far_end_offering_srtp_in_a_reinvite_gets_it(dialer: SipDialer, trunk: FakeTrunk) -> None:  # noqa: F811
    leg = dialer.leg("79000000109")  # srtp off on this trunk: plain RTP at first
    assert await leg.ring(5) is RingResult.ANSWERED and leg.dialog is not None and leg._srtp is None
    phone = trunk.phones["79000000109"]
    their_key = srtp.new_key()
    offer = build_sdp(
        HOST,
        phone.port,
        session_id=1,
        version=2,
        codecs=(PCMU,),
        proto="RTP/SAVP",
        crypto=srtp.crypto_attribute(their_key),
    )
    trunk.in_dialog(leg.dialog.call_id, "INVITE", offer, cseq=2)
    answer = parse_sdp((await next_response(trunk, "INVITE")).body)
    ours = srtp.parse_crypto(answer.crypto)
    assert answer.proto == "RTP/SAVP" and ours is not None and leg._srtp is not None
    unusable = offer.replace(b"AES_CM_128_HMAC_SHA1_80", b"AES_CM_128_HMAC_SHA1_32")
    leg._srtp, leg._srtp_key = None, None
    trunk.in_dialog(leg.dialog.call_id, "INVITE", unusable, cseq=3)
    assert (await next_response(trunk, "INVITE")).status == 488


def test_tls_context_verifies_by_default_and_trusts_a_given_ca_only_when_told() -> None:
    import ssl

    from perezvon.calls.dialer.sip import tls_context

    default = tls_context()
    assert default.verify_mode is ssl.CERT_REQUIRED and default.check_hostname
    lab = tls_context(verify=False)
    assert lab.verify_mode is ssl.CERT_NONE and not lab.check_hostname
    assert sip_dialer_from_settings(Settings(sip_tls_verify=False)).tls_context.verify_mode is ssl.CERT_NONE  # type: ignore[union-attr]
