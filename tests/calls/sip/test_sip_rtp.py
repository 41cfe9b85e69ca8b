"""RTP packets, G.711 tables and RFC 4733 events."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from perezvon.calls.dialer.sip import rtp
from perezvon.calls.dialer.sip.rtp import DtmfReceiver, RtpPacket, RtpParseError, RtpSender, TelephoneEvent
from perezvon.calls.dialer.sip.sdp import PCMA, PCMU

DATA = Path(__file__).parent / "data"


def test_captured_baresip_packet_field_by_field_and_round_trip() -> None:
    raw = (DATA / "baresip_rtp_pcmu.bin").read_bytes()
    pkt = RtpPacket.parse(raw)
    assert (pkt.payload_type, pkt.marker, pkt.sequence, pkt.timestamp, pkt.ssrc) == (0, True, 0x65F4, 0x762,
                                                                                      0xCA3211AF)
    assert len(pkt.payload) == 160
    assert pkt.serialize() == raw


def test_csrc_extension_and_padding_round_trip() -> None:
    pkt = RtpPacket(8, 65535, 2**32 - 1, 1234, b"\xd5" * 160, marker=False, csrc=(1, 2),
                    extension=(0xBEDE, b"\x10\xff\x00\x00"), padding=4)
    again = RtpPacket.parse(pkt.serialize())
    assert again == pkt


@pytest.mark.parametrize(
    ("raw", "defect"),
    [
        (b"\x80\x00", "truncated"),
        (b"\x40" + bytes(11), "version 1"),
        (b"\x82" + bytes(11) + bytes(4), "CSRC list truncated"),
        (b"\x90" + bytes(11) + b"\x00\x00\x00\x05", "extension truncated"),
        (b"\xa0" + bytes(11) + b"\x00", "padding"),
    ],
)
def test_defects_are_named(raw: bytes, defect: str) -> None:
    with pytest.raises(RtpParseError, match=defect):
        RtpPacket.parse(raw)


def test_sender_numbers_packets_and_steps_timestamps_by_160() -> None:
    sender = RtpSender()
    first = RtpPacket.parse(sender.packet(PCMU, b"\xff" * 160))
    second = RtpPacket.parse(sender.packet(PCMU, b"\xff" * 160))
    assert first.marker and not second.marker
    assert second.sequence == (first.sequence + 1) & 0xFFFF
    assert second.timestamp == (first.timestamp + 160) & 0xFFFFFFFF
    assert first.ssrc == second.ssrc


@pytest.mark.parametrize(
    ("sample", "ulaw", "alaw"),
    # Reference values of the ITU-T G.711 / Sun g711.c tables.
    [(0, 0xFF, 0xD5), (-1, 0x7E, 0x55), (1000, 0xCE, 0xFA), (-1000, 0x4E, 0x7A), (32767, 0x80, 0xAA),
     (-32768, 0x00, 0x2A)],
)
def test_g711_known_codes(sample: int, ulaw: int, alaw: int) -> None:
    pcm = struct.pack("<h", sample)
    assert rtp.encode(pcm, PCMU) == bytes([ulaw])
    assert rtp.encode(pcm, PCMA) == bytes([alaw])


@pytest.mark.parametrize("codec", [PCMU, PCMA])
def test_g711_every_code_decodes_and_reencodes_to_itself(codec: int) -> None:
    codes = bytes(range(256))
    again = rtp.encode(rtp.decode(codes, codec), codec)
    # µ-law has two zeros (0x7F, 0xFF); every other code is a fixed point.
    diffs = [i for i in range(256) if again[i] != codes[i]]
    assert diffs == ([0x7F] if codec == PCMU else [])


@pytest.mark.parametrize("codec", [PCMU, PCMA])
def test_g711_error_stays_within_the_segment_step(codec: int) -> None:
    samples = list(range(-32768, 32768, 97))
    pcm = struct.pack(f"<{len(samples)}h", *samples)
    back = struct.unpack(f"<{len(samples)}h", rtp.decode(rtp.encode(pcm, codec), codec))
    for s, b in zip(samples, back, strict=True):
        assert abs(s - b) <= max(16, abs(s) // 16 + 16), (s, b)


def test_transcoding_equals_decoding_and_reencoding() -> None:
    codes = bytes(range(256))
    assert rtp.transcode(codes, PCMU, PCMA) == rtp.encode(rtp.decode(codes, PCMU), PCMA)
    assert rtp.transcode(codes, PCMA, PCMU) == rtp.encode(rtp.decode(codes, PCMA), PCMU)
    assert rtp.transcode(codes, PCMU, PCMU) is codes


def test_telephone_event_parse_and_serialise() -> None:
    # An RFC 4733 §2.3 payload: key 5, end bit, volume 10, duration 800.
    payload = bytes([5, 0x80 | 10, 0x03, 0x20])
    ev = TelephoneEvent.parse(payload)
    assert (ev.key, ev.end, ev.volume, ev.duration) == ("5", True, 10, 800)
    assert ev.serialize() == payload
    assert TelephoneEvent(16, False, 0, 0).key is None  # a non-DTMF event (e.g. flash)
    with pytest.raises(RtpParseError):
        TelephoneEvent.parse(b"\x01")


def test_dtmf_receiver_reports_each_key_once_despite_repeated_end_packets() -> None:
    sender = RtpSender()
    packets = rtp.dtmf_packets(sender, 101, "1") + rtp.dtmf_packets(sender, 101, "#")
    end = packets[-1]
    receiver = DtmfReceiver()
    keys = [k for raw in packets + [end, end] if (k := receiver.receive(RtpPacket.parse(raw)))]
    assert keys == ["1", "#"]


def test_rtcp_is_recognised_by_packet_type() -> None:
    assert rtp.is_rtcp(bytes([0x80, 200]) + bytes(6))  # sender report
    assert not rtp.is_rtcp((DATA / "baresip_rtp_pcmu.bin").read_bytes())
