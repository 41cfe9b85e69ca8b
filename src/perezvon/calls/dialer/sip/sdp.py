"""SDP offer/answer (RFC 4566, RFC 3264) for one audio stream: PCMU, PCMA, telephone-event/8000."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .message import SipParseError

PCMU = 0
PCMA = 8
DTMF_PT = 101
CODEC_NAMES = {PCMU: "PCMU", PCMA: "PCMA"}
_STATIC = {"0": "PCMU/8000", "8": "PCMA/8000"}
_DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
_MIRROR = {"sendrecv": "sendrecv", "sendonly": "recvonly", "recvonly": "sendonly", "inactive": "inactive"}


@dataclass
class MediaDescription:
    address: str
    port: int
    payload_types: list[int]
    rtpmap: dict[int, str] = field(default_factory=dict)  # pt → "PCMU/8000"
    direction: str = "sendrecv"
    proto: str = "RTP/AVP"  # RTP/SAVP: SRTP required
    crypto: list[str] = field(default_factory=list)  # a=crypto values (RFC 4568)

    def encoding(self, pt: int) -> str:
        return self.rtpmap.get(pt) or _STATIC.get(str(pt), "")


def parse_sdp(body: bytes | str) -> MediaDescription:
    """The first audio stream of an SDP body; SipParseError if there is none we can read."""
    try:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
    except UnicodeDecodeError:
        raise SipParseError("SDP is not UTF-8") from None
    session_addr = ""
    media: MediaDescription | None = None
    media_addr = ""
    session_direction = "sendrecv"
    for raw in text.splitlines():
        line = raw.strip()
        if len(line) < 2 or line[1] != "=":
            continue
        kind, value = line[0], line[2:]
        if kind == "m":
            if media is not None:
                break  # only the first audio stream matters to us
            parts = value.split()
            if len(parts) < 4 or parts[0] != "audio":
                continue
            port_s = parts[1].split("/")[0]
            if not port_s.isdigit():
                raise SipParseError(f"bad media port {parts[1]!r}")
            pts = [int(p) for p in parts[3:] if p.isdigit()]
            media = MediaDescription("", int(port_s), pts, direction=session_direction, proto=parts[2])
        elif kind == "c":
            parts = value.split()
            if len(parts) < 3:
                raise SipParseError(f"bad connection line {value!r}")
            addr = parts[2].split("/")[0]
            if media is None:
                session_addr = addr
            else:
                media_addr = addr
        elif kind == "a":
            name, _, arg = value.partition(":")
            if name in _DIRECTIONS:
                if media is None:
                    session_direction = name
                else:
                    media.direction = name
            elif name == "crypto" and media is not None:
                media.crypto.append(arg.strip())
            elif name == "rtpmap" and media is not None:
                pt_s, _, enc = arg.partition(" ")
                if pt_s.isdigit():
                    media.rtpmap[int(pt_s)] = enc.strip()
    if media is None:
        raise SipParseError("SDP has no audio stream")
    media.address = media_addr or session_addr
    if not media.address:
        raise SipParseError("SDP has no connection address")
    if media.address == "0.0.0.0":  # RFC 2543 hold
        media.direction = "inactive" if media.direction == "sendrecv" else media.direction
    return media


@dataclass
class Negotiated:
    """What a leg sends and expects: the codec and where to."""

    address: str
    port: int
    codec: int  # PCMU or PCMA
    dtmf_pt: int | None
    direction: str
    crypto: list[str] = field(default_factory=list)  # the far end's a=crypto offers or answer

    @property
    def target(self) -> tuple[str, int]:
        return self.address, self.port

    def latch(self, source: tuple[str, int]) -> Negotiated | None:
        """Symmetric RTP (RFC 4961) through the far end's NAT: media from the negotiated host but
        another port means that port is where our media gets through, so we send there from now on.
        From any other host: None (that host was never negotiated, so nothing goes to it)."""
        if source[0] != self.address:
            return None
        return replace(self, port=source[1])

    @property
    def sends_to_us(self) -> bool:
        return self.direction in ("sendrecv", "sendonly")

    @property
    def wants_ours(self) -> bool:
        return self.direction in ("sendrecv", "recvonly") and self.port != 0


def negotiate(remote: MediaDescription, *, prefer: tuple[int, ...] = (PCMU, PCMA)) -> Negotiated:
    """Pick the codec from the remote side's list (theirs first among ours), and its DTMF type."""
    codec = None
    for pt in remote.payload_types:
        enc = remote.encoding(pt).upper()
        if enc.startswith("PCMU/8000") and PCMU in prefer:
            codec = PCMU
        elif enc.startswith("PCMA/8000") and PCMA in prefer:
            codec = PCMA
        if codec is not None:
            break
    if codec is None:
        raise SipParseError("no common codec (PCMU/PCMA)")
    dtmf = next((pt for pt in remote.payload_types
                 if remote.encoding(pt).lower().startswith("telephone-event/8000")), None)
    return Negotiated(remote.address, remote.port, codec, dtmf, remote.direction, remote.crypto)


def build_sdp(address: str, port: int, *, session_id: int, version: int, codecs: tuple[int, ...] = (PCMU, PCMA),
              dtmf_pt: int | None = DTMF_PT, direction: str = "sendrecv", crypto: str | None = None,
              proto: str = "RTP/AVP") -> bytes:
    """Our offer (all codecs) or answer (the chosen one): 20 ms packets, RFC 4733 DTMF, SDES keys if any."""
    pts = [str(c) for c in codecs] + ([str(dtmf_pt)] if dtmf_pt is not None else [])
    lines = [
        "v=0",
        f"o=perezvon {session_id} {version} IN IP4 {address}",
        "s=perezvon",
        f"c=IN IP4 {address}",
        "t=0 0",
        f"m=audio {port} {proto} {' '.join(pts)}",
    ]
    lines += [f"a=rtpmap:{c} {CODEC_NAMES[c]}/8000" for c in codecs]
    if dtmf_pt is not None:
        lines += [f"a=rtpmap:{dtmf_pt} telephone-event/8000", f"a=fmtp:{dtmf_pt} 0-15"]
    lines += ["a=ptime:20", f"a={direction}"]
    if crypto:
        lines.append(f"a=crypto:{crypto}")
    return ("\r\n".join(lines) + "\r\n").encode()


def answer_direction(offered: str) -> str:
    """Our direction in an answer: a peer putting us on hold (sendonly) gets recvonly, and so on."""
    return _MIRROR.get(offered, "sendrecv")
