"""SipDialer against an in-process fake trunk: what real peers in tests/e2e/sip cannot easily script.

The fake trunk is a few lines of asyncio on 127.0.0.1 using our own parser; it answers by number:
407 with SHA-256 first, hold by re-INVITE, DTMF, PCMA-only phones for transcoding, a late 200 racing
our CANCEL.
"""

from __future__ import annotations

import asyncio
import random
import socket
import struct
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from perezvon.calls.dialer.base import Audio, DialerError, RingResult, Trunk
from perezvon.calls.dialer.sip import SipDialer, parse_trunk, ring_result, srtp
from perezvon.calls.dialer.sip import rtp as rtplib
from perezvon.calls.dialer.sip.digest import verify
from perezvon.calls.dialer.sip.message import (
    Headers,
    NameAddr,
    SipRequest,
    SipResponse,
    SipUri,
    make_response,
    parse_message,
)
from perezvon.calls.dialer.sip.sdp import PCMA, PCMU, build_sdp, parse_sdp
from perezvon.calls.lines import sip_dialer_from_settings
from perezvon.settings import Settings

HOST = "127.0.0.1"


class FakePhone(asyncio.DatagramProtocol):
    """The far end's RTP: keeps what arrives, sends what it is told."""

    def __init__(self) -> None:
        self.packets: list[rtplib.RtpPacket] = []
        self.raw: list[bytes] = []  # as it came (SRTP: still encrypted)
        self.transport: asyncio.DatagramTransport | None = None
        self.port = 0
        self.got = asyncio.Event()

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        self.raw.append(data)
        self.packets.append(rtplib.RtpPacket.parse(data))
        self.got.set()

    def send(self, data: bytes, port: int) -> None:
        assert self.transport is not None
        self.transport.sendto(data, (HOST, port))

    @classmethod
    async def open(cls) -> FakePhone:
        """A phone's RTP socket on a free port of 127.0.0.1."""
        phone = cls()
        loop = asyncio.get_running_loop()
        phone.transport, _ = await loop.create_datagram_endpoint(lambda: phone, local_addr=(HOST, 0))
        phone.port = phone.transport.get_extra_info("sockname")[1]
        return phone


class FakeTrunk(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.received: list[SipRequest] = []
        self.phones: dict[str, FakePhone] = {}
        self.codec: dict[str, int] = {}
        self.our_rtp_port: dict[str, int] = {}
        self.srtp_keys: dict[str, bytes] = {}
        self.dialogs: dict[str, tuple[SipRequest, str]] = {}  # call-id → (invite, our tag)
        self.transport: asyncio.DatagramTransport | None = None
        self.port = 0
        self.requests = asyncio.Queue[SipRequest]()
        self.responses = asyncio.Queue[SipResponse]()
        self.ua: tuple[str, int] | None = None
        self.reinvites: dict[str, list[SipRequest]] = {}  # by number: our re-INVITEs

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        msg = parse_message(data)
        self.ua = (addr[0], addr[1])
        if isinstance(msg, SipResponse):
            self.responses.put_nowait(msg)
            return
        self.received.append(msg)
        self.requests.put_nowait(msg)
        if msg.method == "INVITE" and not msg.to_addr.tag:
            asyncio.ensure_future(self.on_invite(msg))
        elif msg.method == "BYE" and msg.to_addr.uri.split("@")[0].endswith("byeauth") and not (
                "Authorization" in msg.headers and verify(msg.need("Authorization"), method="BYE", password="pw")):
            self.reply(msg, 401, extra=[("WWW-Authenticate", 'Digest realm="fake", nonce="b1e"')])
        elif msg.method in ("BYE", "CANCEL"):
            self.reply(msg, 200)
        elif msg.method == "INVITE":  # our re-INVITE (direct media)
            self.on_reinvite(msg)
        elif msg.method == "OPTIONS":  # our ping: a phone that lost the call (…gone) no longer knows it
            self.reply(msg, 481 if "gone" in msg.to_addr.uri else 200)

    def reply(self, req: SipRequest, status: int, *, tag: str = "trunk", body: bytes = b"",
              extra: list[tuple[str, str]] | None = None) -> None:
        extra = list(extra or [])
        if body:
            extra += [("Contact", f"<sip:phone@{HOST}:{self.port}>"), ("Content-Type", "application/sdp")]
        assert self.transport is not None and self.ua is not None
        self.transport.sendto(make_response(req, status, to_tag=tag, body=body, extra=extra).encode(), self.ua)

    async def on_invite(self, req: SipRequest) -> None:
        number = SipUri.parse(req.uri).user
        if number.endswith("407") and "Proxy-Authorization" not in req.headers:
            self.reply(req, 407, extra=[("Proxy-Authenticate",
                                         'Digest realm="fake", nonce="n0nce", qop="auth", algorithm=SHA-256')])
            return
        if number.endswith("407") and not verify(req.need("Proxy-Authorization"), method="INVITE",
                                                 password="pw"):
            self.reply(req, 403)
            return
        self.reply(req, 180)
        if number.endswith("ring"):
            return  # rings until cancelled
        if number.endswith("early"):
            # 183 with SDP: early media from this phone's socket; rings until the test answers it.
            phone = self.phones[number] = await FakePhone.open()
            self.our_rtp_port[number] = parse_sdp(req.body).port
            sdp = build_sdp(HOST, phone.port, session_id=1, version=1, codecs=(PCMU,))
            self.reply(req, 183, body=sdp)
            return
        if number.endswith("late"):
            # Ring past the dialer's timeout, then answer just as its CANCEL is on the way.
            await self.requests_until("CANCEL")
            await self.answer(req, number)
            return
        await self.answer(req, number)

    async def answer(self, req: SipRequest, number: str) -> None:
        phone = await FakePhone.open()
        self.phones[number] = phone
        codec = PCMA if "pcma" in number else PCMU
        self.codec[number] = codec
        offer = parse_sdp(req.body)
        self.our_rtp_port[number] = offer.port
        self.dialogs[req.call_id] = (req, "trunk")
        crypto = None
        if "srtp" in number:  # answers our SDES offer with a key of its own
            self.srtp_keys[number] = key = srtp.new_key()
            crypto = srtp.crypto_attribute(key)
        sdp = build_sdp(HOST, phone.port, session_id=1, version=1, codecs=(codec,), crypto=crypto)
        self.reply(req, 200, body=sdp)

    def on_reinvite(self, req: SipRequest) -> None:
        """Refused as the number says (…r488, …r491) or by a phone of one law, else 200 with the phone's SDP."""
        number = SipUri.parse(req.to_addr.uri).user
        self.reinvites.setdefault(number, []).append(req)
        if "r491once" in number and len(self.reinvites[number]) == 1:
            self.reply(req, 491)  # glare once: the retry is answered
            return
        for refusal in (488, 491):
            if f"r{refusal}" in number and "once" not in number:
                self.reply(req, refusal)
                return
        if self.codec[number] not in parse_sdp(req.body).payload_types:
            self.reply(req, 488)  # a phone of one G.711 law offered only the other
        else:
            sdp = build_sdp(HOST, self.phones[number].port, session_id=1, version=2, codecs=(self.codec[number],))
            self.reply(req, 200, body=sdp)

    async def requests_until(self, method: str) -> SipRequest:
        while True:
            req = await asyncio.wait_for(self.requests.get(), 10)
            if req.method == method:
                return req

    def in_dialog(self, call_id: str, method: str, body: bytes = b"", cseq: int = 1) -> SipRequest:
        """A request from the phone's side of the dialog (BYE, re-INVITE, OPTIONS)."""
        invite, tag = self.dialogs[call_id]
        contact = NameAddr.parse(invite.need("Contact")).uri
        headers = Headers([
            ("Via", f"SIP/2.0/UDP {HOST}:{self.port};branch=z9hG4bK{method}{cseq}"),
            ("From", f"{invite.need('To')};tag={tag}"),
            ("To", invite.need("From")),
            ("Call-ID", call_id),
            ("CSeq", f"{cseq} {method}"),
            ("Contact", f"<sip:phone@{HOST}:{self.port}>"),
        ])
        if body:
            headers.add("Content-Type", "application/sdp")
        req = SipRequest(method, contact, headers, body)
        assert self.transport is not None and self.ua is not None
        self.transport.sendto(req.encode(), self.ua)
        return req


@pytest.fixture
async def trunk() -> AsyncIterator[FakeTrunk]:
    loop = asyncio.get_running_loop()
    fake = FakeTrunk()
    fake.transport, _ = await loop.create_datagram_endpoint(lambda: fake, local_addr=(HOST, 0))
    fake.port = fake.transport.get_extra_info("sockname")[1]
    yield fake
    fake.transport.close()
    for phone in fake.phones.values():
        assert phone.transport is not None
        phone.transport.close()


@pytest.fixture
async def dialer(trunk: FakeTrunk) -> AsyncIterator[SipDialer]:
    d = SipDialer(parse_trunk(f"udp:{HOST}:{trunk.port}", username="site1", password="pw", caller="74950000000"))
    await d.start()
    yield d
    await d.close()


async def next_response(trunk: FakeTrunk, method: str) -> SipResponse:
    while True:
        resp = await asyncio.wait_for(trunk.responses.get(), 5)
        if resp.cseq[1] == method:
            return resp


async def test_proxy_auth_with_sha256_then_answer(dialer: SipDialer, trunk: FakeTrunk) -> None:
    leg = dialer.leg("79000000407")
    assert await leg.ring(5) is RingResult.ANSWERED
    invites = [r for r in trunk.received if r.method == "INVITE"]
    assert [r.cseq[0] for r in invites] == [1, 2]
    assert invites[0].call_id == invites[1].call_id
    assert invites[0].top_via.branch != invites[1].top_via.branch
    assert "algorithm=SHA-256" in invites[1].need("Proxy-Authorization")
    assert invites[0].from_addr.uri == f"sip:74950000000@{HOST}"  # the caller number in From
    assert invites[0].uri == f"sip:79000000407@{HOST}:{trunk.port}"
    ack_407 = await trunk.requests_until("ACK")  # the transaction's own ACK of the challenge
    assert ack_407.cseq == (1, "ACK") and ack_407.top_via.branch == invites[0].top_via.branch
    ack = await trunk.requests_until("ACK")  # the dialog's ACK of the 200
    assert ack.cseq == (2, "ACK") and ack.to_addr.tag == "trunk"
    assert ack.top_via.branch != invites[1].top_via.branch


async def test_play_paces_20ms_packets_with_continuous_numbering(dialer: SipDialer, trunk: FakeTrunk) -> None:
    leg = dialer.leg("79000000011")
    assert await leg.ring(5) is RingResult.ANSWERED
    loop = asyncio.get_running_loop()
    tone = b"".join(struct.pack("<h", 8000 if (i // 10) % 2 else -8000) for i in range(8000 // 2))  # 0.5 s
    start = loop.time()
    await leg.play(Audio(tone))
    elapsed = loop.time() - start
    assert 0.45 <= elapsed < 0.8  # real time, not as fast as possible
    phone = trunk.phones["79000000011"]
    await asyncio.wait_for(phone.got.wait(), 2)
    await asyncio.sleep(0.05)  # the last datagrams are in flight on loopback
    pkts = phone.packets
    assert len(pkts) == 25 and all(len(p.payload) == 160 for p in pkts)
    assert all(p.payload_type == PCMU for p in pkts)
    assert [(b.sequence - a.sequence) & 0xFFFF for a, b in zip(pkts, pkts[1:], strict=False)] == [1] * 24
    assert [(b.timestamp - a.timestamp) & 0xFFFFFFFF for a, b in zip(pkts, pkts[1:], strict=False)] == [160] * 24
    assert pkts[0].marker and not any(p.marker for p in pkts[1:])
    assert rtplib.decode(b"".join(p.payload for p in pkts), PCMU)[:320] == rtplib.decode(
        rtplib.encode(tone[:320], PCMU), PCMU)


async def test_dtmf_key_is_read(dialer: SipDialer, trunk: FakeTrunk) -> None:
    leg = dialer.leg("79000000012")
    assert await leg.ring(5) is RingResult.ANSWERED
    phone = trunk.phones["79000000012"]
    sender = rtplib.RtpSender()
    for pkt in rtplib.dtmf_packets(sender, 101, "1"):
        phone.send(pkt, trunk.our_rtp_port["79000000012"])
    assert await leg.read_digit(2) == "1"
    assert await leg.read_digit(0.1) is None  # the repeated end packets are one key press


async def test_reinvite_hold_and_offerless_refresh_get_200_with_sdp(dialer: SipDialer, trunk: FakeTrunk) -> None:
    leg = dialer.leg("79000000013")
    assert await leg.ring(5) is RingResult.ANSWERED
    assert leg.dialog is not None
    phone = trunk.phones["79000000013"]
    hold = build_sdp(HOST, phone.port, session_id=1, version=2, codecs=(PCMU,), direction="sendonly")
    trunk.in_dialog(leg.dialog.call_id, "INVITE", hold, cseq=2)
    resp = await next_response(trunk, "INVITE")
    assert resp.status == 200 and parse_sdp(resp.body).direction == "recvonly"
    assert resp.headers.get("Contact")
    assert leg.media is not None and not leg.media.wants_ours
    await leg.play(Audio(b"\0\0" * 800))  # on hold: paced but not sent
    assert phone.packets == []
    trunk.in_dialog(leg.dialog.call_id, "INVITE", cseq=3)  # session refresh without SDP
    resp = await next_response(trunk, "INVITE")
    assert resp.status == 200 and parse_sdp(resp.body).port == trunk.our_rtp_port["79000000013"]
    trunk.in_dialog(leg.dialog.call_id, "OPTIONS", cseq=4)
    assert (await next_response(trunk, "OPTIONS")).status == 200
    trunk.in_dialog(leg.dialog.call_id, "BYE", cseq=5)
    assert (await next_response(trunk, "BYE")).status == 200
    assert await leg.wait_ended(2) and leg.ended_by_remote


async def test_bridge_relays_both_ways_transcodes_and_records(dialer: SipDialer, trunk: FakeTrunk,
                                                              tmp_path: Path) -> None:
    a = dialer.leg("79000000021")  # PCMU
    b = dialer.leg("79000000022pcma")
    assert await a.ring(5) is RingResult.ANSWERED
    assert await b.ring(5) is RingResult.ANSWERED
    assert a.media and b.media and (a.media.codec, b.media.codec) == (PCMU, PCMA)
    record = tmp_path / "call.wav"
    bridge = asyncio.ensure_future(dialer.bridge(a, b, record))
    await asyncio.sleep(0)  # let the bridge link the legs
    pa, pb = trunk.phones["79000000021"], trunk.phones["79000000022pcma"]
    sa, sb = rtplib.RtpSender(), rtplib.RtpSender()
    loud = struct.pack("<160h", *([6000] * 160))  # same sign both ways: the mix is louder than either
    for _ in range(10):
        pa.send(sa.packet(PCMU, rtplib.encode(loud, PCMU)), trunk.our_rtp_port["79000000021"])
        pb.send(sb.packet(PCMA, rtplib.encode(loud, PCMA)), trunk.our_rtp_port["79000000022pcma"])
        await asyncio.sleep(0.02)
    await asyncio.wait_for(pb.got.wait(), 2)
    await asyncio.wait_for(pa.got.wait(), 2)
    await asyncio.sleep(0.05)
    # What reached each side is in its own codec, under our SSRC, not the other phone's.
    assert {p.payload_type for p in pb.packets} == {PCMA} and {p.payload_type for p in pa.packets} == {PCMU}
    assert {p.ssrc for p in pb.packets} != {sa.ssrc}
    assert len(pb.packets) == 10 and len(pa.packets) == 10
    assert pb.packets[0].payload == rtplib.transcode(rtplib.encode(loud, PCMU), PCMU, PCMA)
    seqs = [p.sequence for p in pb.packets]
    assert [(y - x) & 0xFFFF for x, y in zip(seqs, seqs[1:], strict=False)] == [1] * 9
    # The visitor hangs up: the bridge ends the operator leg too and writes the mix.
    assert b.dialog is not None
    trunk.in_dialog(b.dialog.call_id, "BYE", cseq=2)
    await asyncio.wait_for(bridge, 5)
    assert a.is_ended and not a.ended_by_remote and b.ended_by_remote
    bye = await trunk.requests_until("BYE")
    assert a.dialog is not None and bye.call_id == a.dialog.call_id
    with wave.open(str(record)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
        frames = w.readframes(w.getnframes())
    samples = struct.unpack(f"<{len(frames) // 2}h", frames)
    assert len(samples) >= 1600 and max(samples) > 9000  # both directions mixed: louder than either


async def test_ring_timeout_cancels_and_a_racing_200_is_acked_and_byed(dialer: SipDialer, trunk: FakeTrunk) -> None:
    leg = dialer.leg("7900000late")
    assert await leg.ring(0.5) is RingResult.NO_ANSWER
    ack = await trunk.requests_until("ACK")
    bye = await trunk.requests_until("BYE")
    assert ack.call_id == bye.call_id == leg.dialog.call_id  # type: ignore[union-attr]
    assert leg.is_ended


async def test_hangup_twice_and_a_leg_rings_once(dialer: SipDialer, trunk: FakeTrunk) -> None:
    leg = dialer.leg("79000000031")
    assert await leg.ring(5) is RingResult.ANSWERED
    await leg.hangup()
    await leg.hangup()
    assert len([r for r in trunk.received if r.method == "BYE"]) == 1
    with pytest.raises(DialerError):
        await leg.ring(1)


async def test_out_of_dialog_options_and_invite(dialer: SipDialer, trunk: FakeTrunk) -> None:
    assert trunk.transport is not None
    port = dialer.local_port()
    for method, status in (("OPTIONS", 200), ("INVITE", 480), ("MESSAGE", 405)):
        req = SipRequest(method, f"sip:perezvon@{HOST}:{port}", Headers([
            ("Via", f"SIP/2.0/UDP {HOST}:{trunk.port};branch=z9hG4bKo{method}"),
            ("From", "<sip:monitor@example>;tag=m"), ("To", f"<sip:perezvon@{HOST}>"),
            ("Call-ID", f"probe-{method}"), ("CSeq", f"1 {method}")]))
        trunk.ua = (HOST, port)
        trunk.transport.sendto(req.encode(), (HOST, port))
        assert (await next_response(trunk, method)).status == status


async def test_garbage_is_dropped_not_raised(dialer: SipDialer, trunk: FakeTrunk) -> None:
    assert trunk.transport is not None
    for junk in (b"\xff\xfe\x00", b"SIP/2.0 200 OK\r\n\r\n", b"INVITE x SIP/2.0\r\n"):
        trunk.transport.sendto(junk, (HOST, dialer.local_port()))
    leg = dialer.leg("79000000041")  # the UA still works afterwards
    assert await leg.ring(5) is RingResult.ANSWERED
    assert dialer.dropped == 3


@pytest.mark.parametrize(
    ("status", "result"),
    [(486, RingResult.BUSY), (600, RingResult.BUSY), (408, RingResult.NO_ANSWER), (480, RingResult.NO_ANSWER),
     (487, RingResult.NO_ANSWER), (403, RingResult.REJECTED), (603, RingResult.REJECTED),
     (488, RingResult.UNAVAILABLE), (404, RingResult.INVALID_NUMBER), (503, RingResult.UNAVAILABLE),
     (500, RingResult.UNAVAILABLE), (302, RingResult.UNAVAILABLE), (604, RingResult.INVALID_NUMBER),
     (484, RingResult.INVALID_NUMBER), (401, RingResult.ERROR), (407, RingResult.ERROR), (606, RingResult.UNAVAILABLE)],
)
def test_final_responses_map_to_ring_results(status: int, result: RingResult) -> None:
    assert ring_result(status) is result


def test_parse_trunk() -> None:
    assert parse_trunk("udp:sip.example.com:5080") == Trunk("sip.example.com", 5080, "udp")
    assert parse_trunk("tcp:10.0.0.5:5060", username="u", password="p", caller="7495") == Trunk(
        "10.0.0.5", 5060, "tcp", "u", "p", "7495")
    assert parse_trunk("pbx.local") == Trunk("pbx.local", 5060, "udp")
    assert parse_trunk("udp:[2001:db8::1]:5062").host == "2001:db8::1"
    for bad in ("sip:pbx.local", "udp:host:port", "udp:", "udp:a b:5060", "udp:host:70000"):
        with pytest.raises(ValueError):
            parse_trunk(bad)


def test_sip_dialer_from_settings() -> None:
    settings = Settings(dialer="sip", sip_trunk="tcp:pbx.example:5070", sip_user="site", sip_password="pw",
                        sip_caller="74950000000", sip_bind="0.0.0.0:5062", recordings_dir="/var/rec")
    d = sip_dialer_from_settings(settings)
    assert d.trunk == Trunk("pbx.example", 5070, "tcp", "site", "pw", "74950000000")
    assert (d.bind_host, d.bind_port, d.recordings_dir) == ("0.0.0.0", 5062, Path("/var/rec"))
    with pytest.raises(DialerError, match="no SIP trunk"):
        sip_dialer_from_settings(Settings()).leg("79001234567")


async def test_bridge_ends_when_a_leg_goes_silent_without_bye(trunk: FakeTrunk) -> None:
    dialer = SipDialer(parse_trunk(f"udp:{HOST}:{trunk.port}"), rtp_timeout=0.3)
    await dialer.start()
    try:
        a, b = dialer.leg("79000000051"), dialer.leg("79000000052")
        assert await a.ring(5) is RingResult.ANSWERED and await b.ring(5) is RingResult.ANSWERED
        # Neither fake phone sends media: a dead peer must not hold the bridge (and a worker) for ever.
        await asyncio.wait_for(dialer.bridge(a, b), 3)
        assert a.is_ended and b.is_ended
        byes = {r.call_id for r in trunk.received if r.method == "BYE"}
        assert byes == {a.dialog.call_id, b.dialog.call_id}  # type: ignore[union-attr]
    finally:
        await dialer.close()


async def test_cancelled_ring_cancels_the_call(dialer: SipDialer, trunk: FakeTrunk) -> None:
    leg = dialer.leg("7900000ring")
    task = asyncio.ensure_future(leg.ring(30))
    await trunk.requests_until("INVITE")
    await asyncio.sleep(0.1)  # the 180 reaches the dialer
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    cancel = await trunk.requests_until("CANCEL")
    assert cancel.cseq == (1, "CANCEL")


async def test_a_challenged_bye_is_answered_with_credentials(dialer: SipDialer, trunk: FakeTrunk) -> None:
    leg = dialer.leg("7900000byeauth")
    assert await leg.ring(5) is RingResult.ANSWERED
    await leg.hangup()
    byes = [r for r in trunk.received if r.method == "BYE"]
    assert len(byes) == 2 and "Authorization" not in byes[0].headers
    assert verify(byes[1].need("Authorization"), method="BYE", password="pw")
    assert byes[1].cseq[0] == byes[0].cseq[0] + 1


async def test_rtp_ports_come_from_the_configured_range(trunk: FakeTrunk) -> None:
    base = 41000 + random.randrange(0, 4000, 2)
    dialer = SipDialer(parse_trunk(f"udp:{HOST}:{trunk.port}"), rtp_ports=(base, base + 7))
    await dialer.start()
    try:
        legs = [dialer.leg(f"7900000006{i}") for i in range(3)]
        for leg in legs:
            assert await leg.ring(5) is RingResult.ANSWERED
        ports = {trunk.our_rtp_port[leg.number] for leg in legs}
        assert len(ports) == 3 and all(base <= p <= base + 7 and p % 2 == 0 for p in ports)
    finally:
        await dialer.close()


async def test_unresolvable_trunk_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    async def no_dns(*args: object, **kwargs: object) -> list:
        raise socket.gaierror("Name or service not known")  # no resolver traffic from tests

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", no_dns)
    dialer = SipDialer(Trunk("pbx.example.invalid"))
    await dialer.start()
    try:
        leg = dialer.leg("79001234567")
        assert await leg.ring(2) is RingResult.UNAVAILABLE
        assert leg.is_ended
    finally:
        await dialer.close()


async def test_hangup_while_resolving_places_no_call(trunk: FakeTrunk, monkeypatch: pytest.MonkeyPatch) -> None:
    asked, answer = asyncio.Event(), asyncio.Event()

    async def slow_dns(host: str, port: int, **kwargs: object) -> list:
        asked.set()
        await answer.wait()
        return [(socket.AF_INET, socket.SOCK_DGRAM, 0, "", (HOST, port))]

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", slow_dns)
    dialer = SipDialer(Trunk("pbx.example.invalid", trunk.port))
    await dialer.start()
    try:
        leg = dialer.leg("79001234567")
        ring = asyncio.ensure_future(leg.ring(5))
        await asked.wait()
        await leg.hangup()
        answer.set()
        assert await ring is RingResult.NO_ANSWER
        assert leg.call is None and leg.is_ended  # no INVITE went out, so none rings on unanswered
    finally:
        await dialer.close()
