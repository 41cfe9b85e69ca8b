"""The RTP relay between bridged legs: an RFC 3550 translator, one per receiving leg.

Packets from the other leg go out of this one as part of this leg's own stream: our SSRC, sequence
and timestamp continued from what `play()` sent, the payload transcoded PCMU<->PCMA when the legs
chose differently. This runs for every packet of every bridged call: it is written for speed (no
packet objects, one struct call each way, the common 12-byte header first).
"""

from __future__ import annotations

import struct

from . import rtp as rtplib

RTP_HEADER = struct.Struct("!BBHII")


class RtpRelay:
    """The rewriting state of one leg's outgoing relayed stream."""

    __slots__ = ("sender", "src_ssrc", "seq_off", "ts_off")

    def __init__(self, sender: rtplib.RtpSender) -> None:
        self.sender = sender  # the leg's own stream, shared with play()
        self.src_ssrc: int | None = None
        self.seq_off = 0
        self.ts_off = 0

    def rebase(self) -> None:
        """We played in between: relayed packets after this continue our numbering afresh."""
        self.src_ssrc = None

    def translate(
        self, data: bytes, src_pt: int, dst_pt: int | None, codec: int
    ) -> tuple[bytes, int, int, bytes, int] | None:
        """(packet to send, source SSRC, source timestamp, payload, its type), or None if malformed.

        `dst_pt` None means audio: sent in `codec`, transcoded if `src_pt` differs.
        """
        first = data[0]
        if first == 0x80:  # no padding, extension or CSRCs: what phones send
            payload = data[12:]
        else:
            header_len = 12 + 4 * (first & 0x0F)
            if first & 0x10:
                if len(data) < header_len + 4:
                    return None
                header_len += 4 + 4 * ((data[header_len + 2] << 8) | data[header_len + 3])
            end = len(data) - (data[-1] if first & 0x20 else 0)
            if end < header_len:
                return None
            payload = data[header_len:end]
        _, marker, seq, ts, ssrc = RTP_HEADER.unpack_from(data)
        marker &= 0x80
        sender = self.sender
        if self.src_ssrc != ssrc:
            # A new source (or we played in between): continue our own numbering from here.
            self.src_ssrc = ssrc
            self.seq_off = (sender.sequence - seq) & 0xFFFF
            self.ts_off = (sender.timestamp - ts) & 0xFFFFFFFF
            marker = 0x80
        out_seq = (seq + self.seq_off) & 0xFFFF
        out_ts = (ts + self.ts_off) & 0xFFFFFFFF
        if dst_pt is None:
            dst_pt = codec
            if src_pt != dst_pt:
                payload = rtplib.transcode(payload, src_pt, dst_pt)
        # Keep the sender's next numbers ahead of what we relayed, for a later play() to continue.
        if ((out_seq - sender.sequence) & 0xFFFF) < 0x8000:
            sender.sequence = (out_seq + 1) & 0xFFFF
            sender.timestamp = (out_ts + rtplib.SAMPLES_PER_PACKET) & 0xFFFFFFFF
        packet = RTP_HEADER.pack(0x80, marker | dst_pt, out_seq, out_ts, sender.ssrc) + payload
        return packet, ssrc, ts, payload, dst_pt
