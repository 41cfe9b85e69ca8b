"""RTP (RFC 3550) packets, G.711 µ-law/A-law (ITU-T G.711) and RFC 4733 DTMF events.

Pure functions and small state holders, no I/O. G.711 is table-driven: the tables are computed here
at import time from the standard's segment rules (`audioop` is gone from Python 3.13).
"""

from __future__ import annotations

import secrets
import struct
import sys
from array import array
from dataclasses import dataclass

from .sdp import PCMU

SAMPLES_PER_PACKET = 160  # 20 ms at 8 kHz
PACKET_SECONDS = 0.02
_HEADER = struct.Struct("!BBHII")


class RtpParseError(ValueError):
    """Not an RTP packet; the text names the defect."""


@dataclass
class RtpPacket:
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrc: tuple[int, ...] = ()
    extension: tuple[int, bytes] | None = None  # (profile, data)
    padding: int = 0  # number of padding bytes, kept so serialise gives the input back

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket:
        if len(data) < 12:
            raise RtpParseError(f"RTP packet truncated ({len(data)} bytes)")
        first, second, seq, ts, ssrc = _HEADER.unpack_from(data)
        if first >> 6 != 2:
            raise RtpParseError(f"RTP version {first >> 6}, want 2")
        cc = first & 0x0F
        pos = 12 + 4 * cc
        if len(data) < pos:
            raise RtpParseError("RTP CSRC list truncated")
        csrc = struct.unpack_from(f"!{cc}I", data, 12)
        extension = None
        if first & 0x10:
            if len(data) < pos + 4:
                raise RtpParseError("RTP extension header truncated")
            profile, words = struct.unpack_from("!HH", data, pos)
            end = pos + 4 + 4 * words
            if len(data) < end:
                raise RtpParseError("RTP extension truncated")
            extension = (profile, bytes(data[pos + 4 : end]))
            pos = end
        padding = 0
        end = len(data)
        if first & 0x20:
            padding = data[-1]
            if padding == 0 or pos + padding > len(data):
                raise RtpParseError("RTP padding length invalid")
            end -= padding
        return cls(second & 0x7F, seq, ts, ssrc, bytes(data[pos:end]), bool(second & 0x80), tuple(csrc),
                   extension, padding)

    def serialize(self) -> bytes:
        first = 0x80 | (0x20 if self.padding else 0) | (0x10 if self.extension else 0) | len(self.csrc)
        out = bytearray(_HEADER.pack(first, (0x80 if self.marker else 0) | self.payload_type,
                                     self.sequence & 0xFFFF, self.timestamp & 0xFFFFFFFF, self.ssrc))
        for c in self.csrc:
            out += struct.pack("!I", c)
        if self.extension:
            profile, data = self.extension
            out += struct.pack("!HH", profile, len(data) // 4) + data
        out += self.payload
        if self.padding:
            out += bytes(self.padding - 1) + bytes([self.padding])
        return bytes(out)


def is_rtcp(data: bytes) -> bool:
    """RTCP multiplexed on the RTP port (RFC 5761): packet types 192–223 sit in the PT byte."""
    return len(data) >= 2 and 192 <= data[1] <= 223


class RtpSender:
    """Our outgoing stream: random SSRC, sequence and timestamp start (RFC 3550 §5.1), +1 / +160."""

    def __init__(self) -> None:
        self.ssrc = secrets.randbits(32)
        self.sequence = secrets.randbits(16)
        self.timestamp = secrets.randbits(32)
        self.new_talkspurt = True

    def packet(self, payload_type: int, payload: bytes, samples: int = SAMPLES_PER_PACKET) -> bytes:
        pkt = RtpPacket(payload_type, self.sequence, self.timestamp, self.ssrc, payload,
                        marker=self.new_talkspurt)
        self.new_talkspurt = False
        self.sequence = (self.sequence + 1) & 0xFFFF
        self.timestamp = (self.timestamp + samples) & 0xFFFFFFFF
        return pkt.serialize()


# --- G.711 -------------------------------------------------------------------------------------------

# A port of the reference G.711 code (Sun Microsystems' public-domain g711.c), the tables every
# implementation agrees with.
_BIAS = 0x84
_SEG_UEND = (0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF)
_SEG_AEND = (0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF)


def _segment(value: int, ends: tuple[int, ...]) -> int:
    for i, end in enumerate(ends):
        if value <= end:
            return i
    return len(ends)


def _linear_to_ulaw(sample: int) -> int:
    value = sample >> 2  # µ-law works on 14 bits
    if value < 0:
        value, mask = -value, 0x7F
    else:
        mask = 0xFF
    value = min(value, 8159) + (_BIAS >> 2)
    seg = _segment(value, _SEG_UEND)
    if seg >= 8:
        return 0x7F ^ mask
    return ((seg << 4) | ((value >> (seg + 1)) & 0x0F)) ^ mask


def _ulaw_to_linear(byte: int) -> int:
    byte = ~byte & 0xFF
    t = (((byte & 0x0F) << 3) + _BIAS) << ((byte & 0x70) >> 4)
    return _BIAS - t if byte & 0x80 else t - _BIAS


def _linear_to_alaw(sample: int) -> int:
    value = sample >> 3  # A-law works on 13 bits
    if value >= 0:
        mask = 0xD5  # sign bit set, even bits inverted
    else:
        mask = 0x55
        value = -value - 1
    seg = _segment(value, _SEG_AEND)
    if seg >= 8:
        return 0x7F ^ mask
    code = seg << 4
    code |= (value >> 1) & 0x0F if seg < 2 else (value >> seg) & 0x0F
    return code ^ mask


def _alaw_to_linear(byte: int) -> int:
    byte ^= 0x55
    t = (byte & 0x0F) << 4
    seg = (byte & 0x70) >> 4
    if seg == 0:
        t += 8
    elif seg == 1:
        t += 0x108
    else:
        t = (t + 0x108) << (seg - 1)
    return t if byte & 0x80 else -t


def _samples(pcm: bytes) -> memoryview:
    if sys.byteorder == "little":
        return memoryview(pcm[: len(pcm) & ~1]).cast("H")
    arr = array("H", pcm[: len(pcm) & ~1])
    arr.byteswap()
    return memoryview(arr)


def _decode_table(fn: object) -> list[bytes]:
    return [struct.pack("<h", fn(b)) for b in range(256)]  # type: ignore[operator]


# Encoding tables are indexed by the sample as an unsigned 16-bit number: one lookup per sample.
ULAW_ENCODE = bytes(_linear_to_ulaw(s - 65536 if s >= 32768 else s) for s in range(65536))
ALAW_ENCODE = bytes(_linear_to_alaw(s - 65536 if s >= 32768 else s) for s in range(65536))
ULAW_DECODE = _decode_table(_ulaw_to_linear)
ALAW_DECODE = _decode_table(_alaw_to_linear)
# Direct µ-law ↔ A-law for the relay: one bytes.translate per packet.
ULAW_TO_ALAW = bytes(ALAW_ENCODE[struct.unpack("<H", ULAW_DECODE[b])[0]] for b in range(256))
ALAW_TO_ULAW = bytes(ULAW_ENCODE[struct.unpack("<H", ALAW_DECODE[b])[0]] for b in range(256))


def encode(pcm: bytes, codec: int) -> bytes:
    """16-bit little-endian PCM → G.711 bytes."""
    table = ULAW_ENCODE if codec == PCMU else ALAW_ENCODE
    return bytes(table[s] for s in _samples(pcm))


def decode(payload: bytes, codec: int) -> bytes:
    """G.711 bytes → 16-bit little-endian PCM."""
    table = ULAW_DECODE if codec == PCMU else ALAW_DECODE
    return b"".join(table[b] for b in payload)


def transcode(payload: bytes, src: int, dst: int) -> bytes:
    if src == dst:
        return payload
    return payload.translate(ULAW_TO_ALAW if src == PCMU else ALAW_TO_ULAW)


def silence(codec: int, samples: int = SAMPLES_PER_PACKET) -> bytes:
    return bytes([ULAW_ENCODE[0] if codec == PCMU else ALAW_ENCODE[0]]) * samples


# --- RFC 4733 telephone events ---------------------------------------------------------------------

DTMF_KEYS = "0123456789*#ABCD"


@dataclass(frozen=True)
class TelephoneEvent:
    event: int
    end: bool
    volume: int
    duration: int

    @classmethod
    def parse(cls, payload: bytes) -> TelephoneEvent:
        if len(payload) < 4:
            raise RtpParseError("telephone-event payload truncated")
        event, flags, duration = struct.unpack_from("!BBH", payload)
        return cls(event, bool(flags & 0x80), flags & 0x3F, duration)

    def serialize(self) -> bytes:
        return struct.pack("!BBH", self.event, (0x80 if self.end else 0) | (self.volume & 0x3F), self.duration)

    @property
    def key(self) -> str | None:
        return DTMF_KEYS[self.event] if self.event < len(DTMF_KEYS) else None


class DtmfReceiver:
    """Turns RFC 4733 packets into key presses, once per event.

    One event spans many packets with the same RTP timestamp (and the end packet is sent three
    times, §2.5.1.4), so a key is reported on the first packet of a new timestamp.
    """

    def __init__(self) -> None:
        self._last_timestamp: int | None = None

    def receive(self, packet: RtpPacket) -> str | None:
        try:
            event = TelephoneEvent.parse(packet.payload)
        except RtpParseError:
            return None
        if packet.timestamp == self._last_timestamp:
            return None
        self._last_timestamp = packet.timestamp
        return event.key


def dtmf_packets(sender: RtpSender, payload_type: int, key: str, *, packets: int = 5) -> list[bytes]:
    """An RFC 4733 key press as packets (tests and the benchmark use it to stand in for a phone)."""
    event = DTMF_KEYS.index(key)
    out = []
    ts = sender.timestamp
    for i in range(packets):
        end = i >= packets - 1
        pkt = RtpPacket(payload_type, sender.sequence, ts, sender.ssrc,
                        TelephoneEvent(event, end, 10, SAMPLES_PER_PACKET * (i + 1)).serialize(),
                        marker=i == 0)
        sender.sequence = (sender.sequence + 1) & 0xFFFF
        out.append(pkt.serialize())
    sender.timestamp = (ts + SAMPLES_PER_PACKET * packets) & 0xFFFFFFFF
    return out
