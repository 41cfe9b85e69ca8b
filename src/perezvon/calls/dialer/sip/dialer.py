"""`SipDialer`: the SIP user agent behind the `Dialer` interface, a B2BUA when it bridges.

Each `SipLeg` is its own outbound call: its own dialog and its own RTP socket. The dialer owns the
SIP transports and the transactions, feeds them `loop.time()` through one timer, sends what they queue
and hands their events to the leg that owns them. Bridging two legs relays RTP between their sockets
(rewriting SSRC/sequence/timestamp per leg, transcoding PCMU<->PCMA if they chose differently).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
import struct
import time
import wave
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from ..base import Audio, CallLeg, Dialer, DialerError, RingResult, Trunk
from . import rtp as rtplib
from .dialog import ALLOW, Dialog, cancel_for, new_invite, reinvite_with_auth
from .digest import authorization, parse_challenge
from .message import (
    NameAddr,
    SipParseError,
    SipRequest,
    SipResponse,
    SipUri,
    make_response,
    split_hostport,
)
from .sdp import PCMA, PCMU, Negotiated, answer_direction, build_sdp, negotiate, parse_sdp
from .transaction import (
    ClientInviteTransaction,
    ClientNonInviteTransaction,
    ClientTransaction,
    Event,
    ResponseEvent,
    ServerTransaction,
    TimeoutEvent,
)
from .transport import Address, RtpSocket, TcpTransport, UdpTransport

if TYPE_CHECKING:
    from ....settings import Settings

log = logging.getLogger(__name__)
_RTP_HEADER = struct.Struct("!BBHII")

CANCEL_GRACE_S = 2.0  # after CANCEL, how long ring() waits for the 487 (or a racing 200 to ACK and BYE)
BYE_WAIT_S = 2.0  # hangup() does not wait longer for the BYE's answer: the transaction goes on alone


def ring_result(status: int) -> RingResult:
    """A final response to our INVITE, as the engine sees it."""
    if 200 <= status < 300:
        return RingResult.ANSWERED
    if status in (486, 600):
        return RingResult.BUSY
    if status in (408, 480, 487):
        return RingResult.NO_ANSWER
    if status in (404, 604) or 300 <= status < 400 or 500 <= status < 600:
        return RingResult.UNAVAILABLE
    return RingResult.REJECTED  # 403, 603 and every other 4xx/6xx


def parse_trunk(spec: str, *, username: str = "", password: str = "", caller: str = "",
                number_format: str = "{number}") -> Trunk:
    """``udp:HOST:PORT`` / ``tcp:HOST:PORT`` (also ``HOST``, ``HOST:PORT``, ``[v6]:PORT``) → Trunk."""
    text = spec.strip()
    transport = "udp"
    head, sep, rest = text.partition(":")
    if sep and head.lower() in ("udp", "tcp"):
        transport, text = head.lower(), rest
    elif sep and head.lower() in ("sip", "sips"):
        raise ValueError(f"trunk {spec!r}: write udp:HOST:PORT or tcp:HOST:PORT, not a SIP URI")
    try:
        host, port = split_hostport(text)
    except SipParseError as exc:
        raise ValueError(f"trunk {spec!r}: {exc}") from None
    if not host or any(c in host for c in " /@;"):
        raise ValueError(f"trunk {spec!r}: bad host {host!r}")
    return Trunk(host=host, port=port or 5060, transport=transport, username=username, password=password,
                 caller=caller, number_format=number_format)


def sip_dialer_from_settings(settings: Settings) -> SipDialer:
    """The dialer for `PEREZVON_DIALER=sip`: default trunk, credentials and bind address from settings."""
    trunk = None
    if settings.sip_trunk:
        trunk = parse_trunk(settings.sip_trunk, username=settings.sip_user, password=settings.sip_password,
                            caller=settings.sip_caller)
    host, port = parse_bind(settings.sip_bind)
    return SipDialer(trunk, bind_host=host, bind_port=port,
                     recordings_dir=Path(settings.recordings_dir) if settings.recordings_dir else None,
                     rtp_ports=settings.sip_rtp_ports)


def parse_bind(spec: str) -> tuple[str, int]:
    """``HOST:PORT`` to listen on (port 0: any free one); default 127.0.0.1:0."""
    host, _, port_s = (spec or "127.0.0.1:0").strip().rpartition(":")
    host = host.strip("[]") or "0.0.0.0"
    if not port_s.isdigit() or int(port_s) > 65535:
        raise ValueError(f"SIP bind address {spec!r}: want HOST:PORT")
    return host, int(port_s)


def _local_ip_for(host: str) -> str:
    """The address the kernel would use to reach host (what we advertise when bound to 0.0.0.0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect((host, 9))
            return s.getsockname()[0]
        except OSError:
            return "127.0.0.1"


@dataclass
class _ClientEntry:
    tx: ClientTransaction
    dest: Address
    transport: str
    on_event: Callable[[Event], None]


class _Relay:
    """Rewrites packets from another leg into this leg's RTP stream (an RFC 3550 translator)."""

    __slots__ = ("src_ssrc", "seq_off", "ts_off")

    def __init__(self) -> None:
        self.src_ssrc: int | None = None
        self.seq_off = 0
        self.ts_off = 0


class Recorder:
    """Mixes both directions of a bridged call into one mono 8 kHz buffer, placed by RTP timestamp."""

    MAX_SAMPLES = 8000 * 3600 * 4  # four hours; beyond that the recording stops growing

    def __init__(self, start: float) -> None:
        self.start = start
        self.samples = array("h")
        self._bases: dict[int, tuple[int, int]] = {}  # ssrc → (position, timestamp)

    def add(self, now: float, ssrc: int, timestamp: int, pcm: bytes) -> None:
        base = self._bases.get(ssrc)
        if base is None:
            base = (max(0, int((now - self.start) * 8000)), timestamp)
            self._bases[ssrc] = base
        delta = (timestamp - base[1]) & 0xFFFFFFFF
        if delta >= 0x80000000:
            return  # older than the first packet we saw: reordered before the start, skip
        pos = base[0] + delta
        frame = array("h")
        frame.frombytes(pcm[: len(pcm) & ~1])
        end = pos + len(frame)
        if end > self.MAX_SAMPLES:
            return
        if end > len(self.samples):
            self.samples.frombytes(bytes(2 * (end - len(self.samples))))
        buf = self.samples
        for i, s in enumerate(frame):
            v = buf[pos + i] + s
            buf[pos + i] = 32767 if v > 32767 else -32768 if v < -32768 else v

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with wave.open(str(path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(8000)
            w.writeframes(self.samples.tobytes())


class SipLeg(CallLeg):
    """One outbound call: INVITE, then a dialog with its own RTP socket."""

    # Media timing uses the monotonic clock directly (asyncio's loop.time() is the same clock, uvloop's
    # is rounded to milliseconds): cheaper per packet, and one clock for recorder and watchdog.
    _clock = staticmethod(time.monotonic)

    def __init__(self, dialer: SipDialer, number: str, trunk: Trunk) -> None:
        self.number = number
        self.trunk = trunk
        self.answered_at = None
        self.ended_at = None
        self.result: RingResult | None = None
        self.final_status: int | None = None
        self._dialer = dialer
        self._invite: SipRequest | None = None
        self._final: asyncio.Future[RingResult] | None = None
        self._provisional = False
        self._cancelled = False
        self._cancel_sent = False
        self._auth_tries = 0
        self.dialog: Dialog | None = None
        self.media: Negotiated | None = None
        self._rtp: RtpSocket | None = None
        self._sender = rtplib.RtpSender()
        self._relay = _Relay()
        self._dtmf = rtplib.DtmfReceiver()
        self._digits: asyncio.Queue[str] = asyncio.Queue()
        self._ended = asyncio.Event()
        self._sdp_session = secrets.randbits(31)
        self._sdp_version = 1
        self._peer: SipLeg | None = None
        self._recorder: Recorder | None = None
        self.ended_by_remote = False
        self._bye_sent = False
        self._dest: Address = ("", 0)
        self.packets_in = 0
        self.packets_dropped = 0  # not RTP at all
        self.packets_relayed = 0  # sent out of this leg from the bridged one
        self.packets_not_relayed = 0
        self.last_rtp_at = 0.0

    # --- CallLeg ---------------------------------------------------------------------------------

    async def ring(self, timeout: float) -> RingResult:
        if self._final is not None:
            raise DialerError("a leg rings once")
        d = self._dialer
        await d._require_started()
        loop = asyncio.get_running_loop()
        self._final = loop.create_future()
        try:
            dest = await d._resolve(self.trunk.host, self.trunk.port)
        except (OSError, DialerError) as exc:
            log.warning("SIP trunk %s cannot be resolved: %s", self.trunk.host, exc)
            self._end()
            self.result = RingResult.UNAVAILABLE
            return self.result
        local = d._local_host_for(dest[0])
        try:
            self._rtp = await RtpSocket.open(local if d.bind_host in ("0.0.0.0", "") else d.bind_host,
                                             self._on_rtp, d.rtp_ports)
        except OSError as exc:
            raise DialerError(str(exc)) from exc
        hostport = _uri_host(self.trunk.host) + (f":{self.trunk.port}" if self.trunk.port != 5060 else "")
        target = f"sip:{self.trunk.format_number(self.number)}@{hostport}"
        transport = self.trunk.transport.upper()
        if transport == "TCP":
            target += ";transport=tcp"
        from_user = self.trunk.caller or self.trunk.username or "perezvon"
        local_port = d.local_port(transport)
        contact = f"sip:perezvon@{_uri_host(local)}:{local_port}" + (";transport=tcp" if transport == "TCP" else "")
        self._invite = new_invite(
            target_uri=target, from_uri=f"sip:{from_user}@{_uri_host(self.trunk.host)}", from_display="",
            contact_uri=contact, transport=transport, local_host=local, local_port=local_port,
            body=self._sdp(codecs=(PCMU, PCMA)),
        )
        self._dest = dest
        self._send_invite(self._invite)
        try:
            result = await asyncio.wait_for(asyncio.shield(self._final), timeout)
        except TimeoutError:
            result = await self._ring_timed_out()
        except asyncio.CancelledError:
            # The engine gave up on this call (shutdown): do not leave a phone ringing.
            asyncio.ensure_future(self.hangup())
            raise
        self.result = result
        if result is not RingResult.ANSWERED:
            self._end()
        return result

    async def _ring_timed_out(self) -> RingResult:
        assert self._final is not None
        self._cancelled = True
        had_provisional = self._provisional
        if had_provisional:
            self._send_cancel()
        # With no provisional response yet, §9.1 forbids CANCEL: it goes out when one arrives.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._final), CANCEL_GRACE_S)
        # Nobody said even "Trying": the trunk is not there, which is not the visitor's no-answer.
        return RingResult.NO_ANSWER if had_provisional or self._provisional else RingResult.UNAVAILABLE

    async def play(self, audio: Audio) -> None:
        if self.media is None or self.is_ended:
            return
        loop = asyncio.get_running_loop()
        codec = self.media.codec
        payload = rtplib.encode(audio.pcm, codec)
        step = rtplib.SAMPLES_PER_PACKET
        self._sender.new_talkspurt = True
        start = loop.time()
        for n, i in enumerate(range(0, len(payload), step)):
            if self.is_ended:
                return
            chunk = payload[i : i + step]
            if len(chunk) < step:
                chunk += rtplib.silence(codec, step - len(chunk))
            media = self.media
            if media is not None and media.wants_ours and self._rtp is not None:
                self._rtp.send(self._sender.packet(media.codec, chunk), (media.address, media.port))
            self._relay.src_ssrc = None  # relayed packets after this re-base on our stream
            # Absolute deadlines: pacing does not drift however late one wake-up is.
            delay = start + (n + 1) * rtplib.PACKET_SECONDS - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)

    async def read_digit(self, timeout: float) -> str | None:
        if not self._digits.empty():
            return self._digits.get_nowait()
        if self.is_ended:
            return None
        get = asyncio.ensure_future(self._digits.get())
        ended = asyncio.ensure_future(self._ended.wait())
        try:
            done, _ = await asyncio.wait({get, ended}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ended.cancel()
            if not get.done():
                get.cancel()
        return get.result() if get in done and not get.cancelled() else None

    async def hangup(self) -> None:
        if self.dialog is not None:
            if self._bye_sent or self.ended_by_remote:
                self._end()
                return
            self._bye_sent = True
            done: asyncio.Future[Event] = asyncio.get_running_loop().create_future()
            self._send_bye(done, retry_auth=True)
            self._end()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done, BYE_WAIT_S)
            return
        if self.is_ended:
            return
        if self._final is not None and not self._final.done():
            self._cancelled = True
            if self._provisional:
                self._send_cancel()
        self._end()

    # --- signalling --------------------------------------------------------------------------------

    def _send_bye(self, done: asyncio.Future[Event], *, retry_auth: bool,
                  auth: tuple[str, str] | None = None) -> None:
        """BYE; some PBXs challenge it too, so a 401/407 is answered once like the INVITE's."""
        assert self.dialog is not None
        bye = self.dialog.request("BYE", extra=[auth] if auth else None)

        def on_event(ev: Event) -> None:
            if isinstance(ev, ResponseEvent) and ev.response.status < 200:
                return
            if (retry_auth and isinstance(ev, ResponseEvent) and ev.response.status in (401, 407)
                    and self.trunk.username):
                header = "WWW-Authenticate" if ev.response.status == 401 else "Proxy-Authenticate"
                with contextlib.suppress(SipParseError, ValueError):
                    challenge = parse_challenge(ev.response.need(header))
                    value = authorization(challenge, method="BYE", uri=bye.uri, username=self.trunk.username,
                                          password=self.trunk.password)
                    out = "Authorization" if ev.response.status == 401 else "Proxy-Authorization"
                    self._send_bye(done, retry_auth=False, auth=(out, value))
                    return
            if not done.done():
                done.set_result(ev)

        self._dialer._start_client(bye, self._in_dialog_dest(), self.dialog.transport, on_event)

    def _sdp(self, codecs: tuple[int, ...], direction: str = "sendrecv") -> bytes:
        assert self._rtp is not None
        body = build_sdp(self._rtp.host, self._rtp.port, session_id=self._sdp_session, version=self._sdp_version,
                         codecs=codecs, direction=direction)
        self._sdp_version += 1
        return body

    def _send_invite(self, invite: SipRequest) -> None:
        self._invite = invite
        self._dialer._start_client(invite, self._dest, self.trunk.transport.upper(), self._on_invite_event)
        self._dialer._legs_by_call[invite.call_id] = self

    def _send_cancel(self) -> None:
        if self._cancel_sent or self._invite is None:
            return
        self._cancel_sent = True
        self._dialer._start_client(cancel_for(self._invite), self._dest, self.trunk.transport.upper(),
                                   lambda ev: None)

    def _on_invite_event(self, event: Event) -> None:
        assert self._final is not None and self._invite is not None
        if not isinstance(event, ResponseEvent):
            reason = "timed out" if isinstance(event, TimeoutEvent) else "transport error"
            log.info("INVITE to %s %s", self.number, reason)
            self._settle(RingResult.NO_ANSWER if self._cancelled and self._provisional
                         else RingResult.UNAVAILABLE)
            return
        resp = event.response
        status = resp.status
        if status < 200:
            self._provisional = True
            if self._cancelled:
                self._send_cancel()
            return
        self.final_status = status
        if status < 300:
            self._on_answered(resp)
            return
        if status in (401, 407) and self._answer_challenge(resp):
            return
        log.info("INVITE to %s answered %s %s", self.number, status, resp.reason)
        self._settle(ring_result(status))

    def _answer_challenge(self, resp: SipResponse) -> bool:
        """Retry the INVITE with credentials; False when we have none or they were refused."""
        assert self._invite is not None
        header = "WWW-Authenticate" if resp.status == 401 else "Proxy-Authenticate"
        raw = resp.headers.get(header)
        if not raw or not self.trunk.username or self._cancelled:
            return False
        try:
            challenge = parse_challenge(raw)
        except SipParseError as exc:
            log.info("unusable %s challenge: %s", resp.status, exc)
            return False
        # One retry, another only if the server says our nonce went stale (RFC 2617 §3.2.1).
        if self._auth_tries >= (2 if challenge.stale else 1) or not challenge.supported:
            return False
        self._auth_tries += 1
        value = authorization(challenge, method="INVITE", uri=self._invite.uri,
                              username=self.trunk.username, password=self.trunk.password)
        out = "Authorization" if resp.status == 401 else "Proxy-Authorization"
        self._provisional = False
        self._send_invite(reinvite_with_auth(self._invite, out, value))
        return True

    def _on_answered(self, resp: SipResponse) -> None:
        assert self._invite is not None
        if self.dialog is not None:
            return
        try:
            self.dialog = Dialog.from_response(self._invite, resp)
        except SipParseError as exc:
            log.info("unusable 2xx from %s: %s", self.number, exc)
            self._settle(RingResult.ERROR)
            return
        self._dialer._legs_by_call[self.dialog.call_id] = self
        self._send_ack()
        if self._cancelled or self.is_ended:
            # The 200 crossed our CANCEL: the call exists, so end it properly (§9.1).
            asyncio.ensure_future(self.hangup())
            self._settle(RingResult.NO_ANSWER)
            return
        try:
            self.media = negotiate(parse_sdp(resp.body))
        except SipParseError as exc:
            log.info("no usable SDP answer from %s: %s", self.number, exc)
            asyncio.ensure_future(self.hangup())
            self._settle(RingResult.ERROR)
            return
        self.answered_at = datetime.now(UTC)
        self._settle(RingResult.ANSWERED)

    def _send_ack(self) -> None:
        assert self.dialog is not None and self._invite is not None
        ack = self.dialog.request("ACK", cseq=self._invite.cseq[0])
        self._last_ack = ack
        self._dialer._send(ack.encode(), self._in_dialog_dest(), self.dialog.transport)

    def resend_ack(self) -> None:
        """A retransmitted 2xx (our ACK was lost): the dialog, not a transaction, answers it."""
        ack = getattr(self, "_last_ack", None)
        if ack is not None and self.dialog is not None:
            self._dialer._send(ack.encode(), self._in_dialog_dest(), self.dialog.transport)

    def _in_dialog_dest(self) -> Address:
        assert self.dialog is not None
        first = self.dialog.route_set[0] if self.dialog.route_set else f"<{self.dialog.remote_target}>"
        try:
            uri = SipUri.parse(NameAddr.parse(first).uri)
            host, port = uri.host, uri.port or 5060
        except SipParseError:
            return self._dest
        # Resolution was done for the trunk; an in-dialog hop given by name falls back to the trunk.
        return (host, port) if _is_ip(host) else self._dest

    def _settle(self, result: RingResult) -> None:
        if self._final is not None and not self._final.done():
            self._final.set_result(result)

    def handle_request(self, req: SipRequest) -> SipResponse:
        """An in-dialog request from the far end (§12.2.2)."""
        assert self.dialog is not None
        if not self.dialog.accepts(req):
            return make_response(req, 500, "Server Internal Error", extra=[("Retry-After", "1")])
        m = req.method
        if m == "BYE":
            self.ended_by_remote = True
            self._end()
            return make_response(req, 200)
        if m in ("INVITE", "UPDATE"):
            return self._session_change(req)
        if m == "OPTIONS":
            return make_response(req, 200, extra=[("Allow", ALLOW), ("Accept", "application/sdp")])
        if m == "INFO":
            self._info_dtmf(req)
            return make_response(req, 200)
        return make_response(req, 405, extra=[("Allow", ALLOW)])

    def _session_change(self, req: SipRequest) -> SipResponse:
        """re-INVITE / UPDATE: hold, resume or a session refresh; answered 200 with our SDP."""
        assert self.dialog is not None and self.media is not None
        contact = req.headers.get("Contact")
        if contact:
            with contextlib.suppress(SipParseError):
                self.dialog.remote_target = NameAddr.parse(contact).uri
        extra = [("Contact", self._contact()), ("Allow", ALLOW)]
        if not req.body:
            # An offerless re-INVITE (a refresh): we offer, the answer comes in the ACK.
            return make_response(req, 200, body=self._sdp(codecs=(self.media.codec,)),
                                 extra=extra + [("Content-Type", "application/sdp")])
        try:
            offer = parse_sdp(req.body)
            prefer = (self.media.codec, PCMA if self.media.codec == PCMU else PCMU)
            media = negotiate(offer, prefer=prefer)
        except SipParseError:
            return make_response(req, 488)
        self.media = media
        body = self._sdp(codecs=(media.codec,), direction=answer_direction(offer.direction))
        return make_response(req, 200, body=body, extra=extra + [("Content-Type", "application/sdp")])

    def ack_received(self, ack: SipRequest) -> None:
        if ack.body:
            with contextlib.suppress(SipParseError):
                self.media = negotiate(parse_sdp(ack.body))

    def _contact(self) -> str:
        assert self._invite is not None
        return self._invite.need("Contact")

    def _info_dtmf(self, req: SipRequest) -> None:
        if "dtmf" not in (req.headers.get("Content-Type") or "").lower():
            return
        for line in req.body.decode("utf-8", "replace").splitlines():
            name, _, value = line.partition("=")
            if name.strip().lower() == "signal" and value.strip()[:1] in rtplib.DTMF_KEYS:
                self._digits.put_nowait(value.strip()[:1])

    # --- media -------------------------------------------------------------------------------------

    # The two methods below run for every packet of every bridged call: they are written for speed
    # (no packet objects, one struct call each way, the common 12-byte header first).

    def _on_rtp(self, data: bytes, addr: Address) -> None:
        if len(data) < 12 or data[0] >> 6 != 2:
            self.packets_dropped += 1
            return
        pt_byte = data[1]
        if 192 <= pt_byte <= 223:
            return  # RTCP multiplexed on this port (RFC 5761): we do not use it
        self.packets_in += 1
        self.last_rtp_at = self._clock()
        media = self.media
        if media is None:
            return
        pt = pt_byte & 0x7F
        peer = self._peer
        if pt == media.dtmf_pt:
            self._on_dtmf(data, peer)
            return
        if pt != PCMU and pt != PCMA:
            return  # comfort noise and anything we did not offer
        if peer is not None:
            peer._relay_in(data, pt, None)
        rec = self._recorder
        if rec is not None:
            with contextlib.suppress(rtplib.RtpParseError):
                pkt = rtplib.RtpPacket.parse(data)
                rec.add(self._clock(), pkt.ssrc, pkt.timestamp, rtplib.decode(pkt.payload, pt))

    def _on_dtmf(self, data: bytes, peer: SipLeg | None) -> None:
        try:
            pkt = rtplib.RtpPacket.parse(data)
        except rtplib.RtpParseError:
            return
        key = self._dtmf.receive(pkt)
        if key is not None:
            self._digits.put_nowait(key)
        if peer is not None and peer.media is not None and peer.media.dtmf_pt is not None:
            peer._relay_in(data, data[1] & 0x7F, peer.media.dtmf_pt)

    def _relay_in(self, data: bytes, src_pt: int, dst_pt: int | None) -> None:
        """Send a packet that arrived on the other leg out of this one, as part of our own stream."""
        media = self.media
        rtp_sock = self._rtp
        if media is None or rtp_sock is None or not media.wants_ours or self.ended_at is not None:
            self.packets_not_relayed += 1  # on hold or hanging up: expected, but counted
            return
        first = data[0]
        if first == 0x80:  # no padding, extension or CSRCs: what phones send
            payload = data[12:]
        else:
            header_len = 12 + 4 * (first & 0x0F)
            if first & 0x10:
                if len(data) < header_len + 4:
                    return
                header_len += 4 + 4 * ((data[header_len + 2] << 8) | data[header_len + 3])
            end = len(data) - (data[-1] if first & 0x20 else 0)
            if end < header_len:
                return
            payload = data[header_len:end]
        _, marker, seq, ts, ssrc = _RTP_HEADER.unpack_from(data)
        marker &= 0x80
        relay = self._relay
        sender = self._sender
        if relay.src_ssrc != ssrc:
            # A new source (or we played in between): continue our own numbering from here.
            relay.src_ssrc = ssrc
            relay.seq_off = (sender.sequence - seq) & 0xFFFF
            relay.ts_off = (sender.timestamp - ts) & 0xFFFFFFFF
            marker = 0x80
        out_seq = (seq + relay.seq_off) & 0xFFFF
        out_ts = (ts + relay.ts_off) & 0xFFFFFFFF
        if dst_pt is None:
            dst_pt = media.codec
            if src_pt != dst_pt:
                payload = rtplib.transcode(payload, src_pt, dst_pt)
        # Keep the sender's next numbers ahead of what we relayed, for a later play() to continue.
        if ((out_seq - sender.sequence) & 0xFFFF) < 0x8000:
            sender.sequence = (out_seq + 1) & 0xFFFF
            sender.timestamp = (out_ts + rtplib.SAMPLES_PER_PACKET) & 0xFFFFFFFF
        rtp_sock.send(_RTP_HEADER.pack(0x80, marker | dst_pt, out_seq, out_ts, sender.ssrc) + payload,
                      media.target)
        self.packets_relayed += 1
        rec = self._recorder
        if rec is not None and (dst_pt == PCMU or dst_pt == PCMA):
            rec.add(self._clock(), ssrc, ts, rtplib.decode(payload, dst_pt))

    def _end(self) -> None:
        if self.ended_at is None:
            self.ended_at = datetime.now(UTC)
        self._ended.set()
        self._settle(RingResult.NO_ANSWER if self._cancelled else RingResult.ERROR)
        peer, self._peer = self._peer, None
        if peer is not None:
            peer._peer = None
        if self._rtp is not None:
            self._rtp.close()
        self._dialer._leg_ended(self)


class SipDialer(Dialer):
    """A SIP user agent placing calls through a trunk (UDP or TCP), and bridging them."""

    def __init__(self, trunk: Trunk | None = None, *, bind_host: str = "127.0.0.1", bind_port: int = 0,
                 recordings_dir: Path | None = None, rtp_timeout: float = 60.0,
                 rtp_ports: tuple[int, int] | None = None) -> None:
        self.trunk = trunk
        self.rtp_ports = rtp_ports  # e.g. (10000, 20000) to fit a firewall rule; None = any free port
        self.rtp_timeout = rtp_timeout  # seconds without media before a bridged call is ended; 0 = never
        self.bind_host = bind_host
        self.bind_port = bind_port
        self.recordings_dir = recordings_dir
        self._udp: UdpTransport | None = None
        self._tcp: TcpTransport | None = None
        self._ports: dict[str, int] = {}
        self._clients: dict[tuple[str, str], _ClientEntry] = {}
        self._servers: dict[tuple[str, str], tuple[ServerTransaction, Address, str]] = {}
        self._legs_by_call: dict[str, SipLeg] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._resolved: dict[tuple[str, int], Address] = {}
        self._started = False

    @property
    def dropped(self) -> int:
        return (self._udp.dropped if self._udp else 0) + (self._tcp.dropped if self._tcp else 0)

    async def start(self) -> None:
        if self._started:
            return
        self._udp = UdpTransport(self._on_message)
        host, port = await self._udp.start(self.bind_host, self.bind_port)
        self._ports["UDP"] = port
        self._tcp = TcpTransport(self._on_message)
        try:
            # The same port number for TCP, so one Contact works for both; any port if it is taken.
            _, tport = await self._tcp.start(self.bind_host, port)
        except OSError:
            _, tport = await self._tcp.start(self.bind_host, 0)
        self._ports["TCP"] = tport
        self._started = True
        log.info("SIP user agent on %s:%s", host, port)

    async def close(self) -> None:
        for leg in list(self._legs_by_call.values()):
            await leg.hangup()
        if self._timer is not None:
            self._timer.cancel()
        for t in (self._udp, self._tcp):
            if t is not None:
                t.close()
        self._started = False

    def local_port(self, transport: str = "UDP") -> int:
        return self._ports[transport.upper()]

    def leg(self, number: str, trunk: Trunk | None = None) -> SipLeg:
        trunk = trunk or self.trunk
        if trunk is None:
            raise DialerError("no SIP trunk configured (PEREZVON_SIP_TRUNK) and none given for the site")
        return SipLeg(self, number, trunk)

    async def bridge(self, a: CallLeg, b: CallLeg, record_to: Path | None = None) -> None:
        if not isinstance(a, SipLeg) or not isinstance(b, SipLeg):
            raise DialerError("SipDialer bridges only its own legs")
        recorder = None
        if not a.is_ended and not b.is_ended:
            if record_to is not None:
                recorder = Recorder(time.monotonic())
                a._recorder = recorder
            a._peer, b._peer = b, a
            waits = [asyncio.ensure_future(a._ended.wait()), asyncio.ensure_future(b._ended.wait()),
                     asyncio.ensure_future(self._media_watchdog(a, b))]
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            except asyncio.CancelledError:
                # Cancelled (worker shutdown): the calls must not outlive us.
                asyncio.ensure_future(asyncio.gather(a.hangup(), b.hangup()))
                raise
            finally:
                for w in waits:
                    w.cancel()
                a._recorder = None
        # Either side hung up (or its media died): end the other one too.
        await asyncio.gather(a.hangup(), b.hangup())
        if recorder is not None and record_to is not None:
            await asyncio.get_running_loop().run_in_executor(None, recorder.write, record_to)

    async def _media_watchdog(self, a: SipLeg, b: SipLeg) -> None:
        """Return when a leg that should be sending has sent nothing for `rtp_timeout` seconds.

        A far end that vanished without a BYE (network gone, crashed PBX) would otherwise keep the
        bridge, the worker and the billing running for ever. A leg that put us on hold is exempt.
        """
        if not self.rtp_timeout:
            await asyncio.Event().wait()
        for leg in (a, b):
            leg.last_rtp_at = max(leg.last_rtp_at, time.monotonic())
        while True:
            await asyncio.sleep(min(self.rtp_timeout / 4, 5.0))
            now = time.monotonic()
            for leg in (a, b):
                media = leg.media
                if media is not None and media.sends_to_us and now - leg.last_rtp_at > self.rtp_timeout:
                    log.info("no RTP from %s for %.0f s: ending the call", leg.number, self.rtp_timeout)
                    return

    # --- plumbing used by the legs -------------------------------------------------------------------

    async def _require_started(self) -> None:
        if not self._started:
            await self.start()

    async def _resolve(self, host: str, port: int) -> Address:
        key = (host, port)
        if key not in self._resolved:
            if _is_ip(host):
                self._resolved[key] = key
            else:
                infos = await asyncio.get_running_loop().getaddrinfo(host, port, family=socket.AF_INET,
                                                                     type=socket.SOCK_DGRAM)
                if not infos:
                    raise DialerError(f"cannot resolve trunk host {host!r}")
                self._resolved[key] = (infos[0][4][0], port)
        return self._resolved[key]

    def _local_host_for(self, remote_ip: str) -> str:
        if self.bind_host not in ("0.0.0.0", ""):
            return self.bind_host
        return _local_ip_for(remote_ip)

    def _send(self, data: bytes, dest: Address, transport: str) -> None:
        t = self._tcp if transport.upper() == "TCP" else self._udp
        if t is not None:
            t.send(data, dest)

    def _start_client(self, request: SipRequest, dest: Address, transport: str,
                      on_event: Callable[[Event], None]) -> _ClientEntry:
        now = asyncio.get_running_loop().time()
        reliable = transport.upper() == "TCP"
        cls = ClientInviteTransaction if request.method == "INVITE" else ClientNonInviteTransaction
        tx = cls(request, now, reliable=reliable)
        entry = _ClientEntry(tx, dest, transport, on_event)
        self._clients[tx.key] = entry
        self._flush_client(entry)
        return entry

    def _flush_client(self, entry: _ClientEntry) -> None:
        tx = entry.tx
        out, tx.outbox = tx.outbox, []
        for msg in out:
            self._send(msg.encode(), entry.dest, entry.transport)
        events, tx.events = tx.events, []
        for ev in events:
            try:
                entry.on_event(ev)
            except Exception:  # a bug in one leg must not stop the others' signalling
                log.exception("SIP event handler failed")
        if tx.terminated:
            self._clients.pop(tx.key, None)
        self._schedule()

    def _flush_server(self, key: tuple[str, str]) -> None:
        tx, addr, transport = self._servers[key]
        out, tx.outbox = tx.outbox, []
        for msg in out:
            self._send(msg.encode(), addr, transport)
        if tx.terminated:
            del self._servers[key]
        self._schedule()

    def _schedule(self) -> None:
        deadlines = [e.tx.get_timer() for e in self._clients.values()]
        deadlines += [s[0].get_timer() for s in self._servers.values()]
        nxt = min((d for d in deadlines if d is not None), default=None)
        if nxt == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = nxt
        self._timer = asyncio.get_running_loop().call_at(nxt, self._on_timer) if nxt is not None else None

    def _on_timer(self) -> None:
        now = asyncio.get_running_loop().time()
        self._timer = None
        self._timer_at = None
        for entry in list(self._clients.values()):
            at = entry.tx.get_timer()
            if at is not None and at <= now:
                entry.tx.handle_timer(now)
                self._flush_client(entry)
        for key, (tx, _, _) in list(self._servers.items()):
            at = tx.get_timer()
            if at is not None and at <= now:
                tx.handle_timer(now)
                self._flush_server(key)
        self._schedule()

    def _leg_ended(self, leg: SipLeg) -> None:
        # Keep the leg findable for a while: a late 200 or BYE retransmission still needs its dialog.
        if leg._invite is not None:
            asyncio.get_running_loop().call_later(32.0, self._forget, leg._invite.call_id, leg)

    def _forget(self, call_id: str, leg: SipLeg) -> None:
        if self._legs_by_call.get(call_id) is leg:
            del self._legs_by_call[call_id]

    # --- incoming --------------------------------------------------------------------------------------

    def _on_message(self, msg: SipRequest | SipResponse, addr: Address, transport: str) -> None:
        if isinstance(msg, SipResponse):
            self._on_response(msg)
        else:
            self._on_request(msg, addr, transport)

    def _on_response(self, resp: SipResponse) -> None:
        key = (resp.top_via.branch, resp.cseq[1])
        entry = self._clients.get(key)
        if entry is not None:
            entry.tx.receive_response(resp, asyncio.get_running_loop().time())
            self._flush_client(entry)
            return
        if resp.cseq[1] == "INVITE" and 200 <= resp.status < 300:
            leg = self._legs_by_call.get(resp.call_id)
            if leg is not None:
                if leg.dialog is None:
                    # A 2xx after the transaction ended (e.g. a second fork): we take none of those.
                    return
                leg.resend_ack()
                return
        log.debug("stray SIP response %s for %s", resp.status, key)

    def _on_request(self, req: SipRequest, addr: Address, transport: str) -> None:
        now = asyncio.get_running_loop().time()
        leg = self._legs_by_call.get(req.call_id)
        if req.method == "ACK":
            for key, (tx, _, _) in self._servers.items():
                if tx.method == "INVITE" and tx.request.call_id == req.call_id and not tx.acked:
                    tx.receive_request(req, now)
                    self._flush_server(key)
                    break
            if leg is not None:
                leg.ack_received(req)
            return
        key = (req.top_via.branch, req.method)
        if key in self._servers:  # a retransmission: the transaction repeats its answer
            self._servers[key][0].receive_request(req, now)
            self._flush_server(key)
            return
        tx = ServerTransaction(req, now, reliable=transport == "TCP")
        self._servers[key] = (tx, addr, transport)
        to_tag = req.to_addr.tag
        if req.method == "CANCEL":
            # We never keep an incoming INVITE pending, so there is nothing left to cancel.
            resp = make_response(req, 481)
        elif leg is not None and leg.dialog is not None and to_tag == leg.dialog.local_tag:
            resp = leg.handle_request(req)
        elif to_tag:
            resp = make_response(req, 481)
        elif req.method == "OPTIONS":
            resp = make_response(req, 200, to_tag=secrets.token_hex(4), extra=[("Allow", ALLOW)])
        elif req.method == "INVITE":
            resp = make_response(req, 480, to_tag=secrets.token_hex(4))  # we only call out
        else:
            resp = make_response(req, 405, to_tag=secrets.token_hex(4), extra=[("Allow", ALLOW)])
        tx.respond(resp, now)
        self._flush_server(key)


def _is_ip(host: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
    except OSError:
        return False
    return True


def _uri_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
