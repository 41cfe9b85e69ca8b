"""Garbage in never raises anything but the one parse error of each layer."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from perezvon.calls.dialer.sip.message import SipParseError, StreamFramer, parse_message
from perezvon.calls.dialer.sip.rtp import RtpPacket, RtpParseError, TelephoneEvent
from perezvon.calls.dialer.sip.sdp import negotiate, parse_sdp

DATA = Path(__file__).parent / "data"
SAMPLES = [p.read_bytes() for p in sorted(DATA.glob("*.sip"))]


def parse_or_fail_cleanly(data: bytes) -> None:
    try:
        msg = parse_message(data)
    except SipParseError:
        return
    # What parses must serialise and parse again, and its accessors fail only with SipParseError.
    try:
        parse_message(msg.encode())
        _ = msg.cseq, msg.call_id, msg.top_via, msg.from_addr, msg.to_addr
    except SipParseError:
        pass


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=600))
def test_random_bytes(data: bytes) -> None:
    parse_or_fail_cleanly(data)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(SAMPLES), st.data())
def test_mutated_real_messages(sample: bytes, data: st.DataObject) -> None:
    raw = bytearray(sample)
    for _ in range(data.draw(st.integers(1, 8))):
        pos = data.draw(st.integers(0, len(raw) - 1))
        raw[pos] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    parse_or_fail_cleanly(bytes(raw[:cut]))
    parse_or_fail_cleanly(bytes(raw))


def test_every_truncation_of_every_sample() -> None:
    for sample in SAMPLES:
        for cut in range(len(sample)):
            parse_or_fail_cleanly(sample[:cut])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=200), max_size=10))
def test_stream_framer(chunks: list[bytes]) -> None:
    framer = StreamFramer()
    for chunk in chunks:
        try:
            for frame in framer.feed(chunk):
                parse_or_fail_cleanly(frame)
        except SipParseError:
            pass


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_rtp_and_telephone_events(data: bytes) -> None:
    try:
        pkt = RtpPacket.parse(data)
    except RtpParseError:
        return
    assert RtpPacket.parse(pkt.serialize()) == pkt
    try:
        TelephoneEvent.parse(pkt.payload)
    except RtpParseError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300) | st.binary(max_size=300))
def test_sdp(data: str | bytes) -> None:
    try:
        negotiate(parse_sdp(data))
    except SipParseError:
        pass
