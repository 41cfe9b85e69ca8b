"""`SipLeg`: the asyncio side of one outbound call — its RTP socket, media, and the engine's awaits.

The SIP rules live in `call.OutboundCall`; the leg feeds it what the user asks (ring, hang up) through
the dialer, which owns the sockets and the one timer, and reacts to the call's events: it negotiates
SDP, answers re-INVITE/UPDATE/INFO, and settles what `ring()` and `hangup()` wait for.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ..base import Audio, CallLeg, DialerError, RingResult, Trunk
from . import call as sip
from . import rtp as rtplib
from .call import CallState, Credentials, OutboundCall
from .dialog import ALLOW, Dialog, new_invite
from .message import SipParseError, SipRequest, SipResponse, make_response
from .recorder import Recorder
from .relay import RtpRelay
from .ringback import ringback_period
from .sdp import DTMF_PT, PCMA, PCMU, MediaDescription, Negotiated, answer_direction, build_sdp, negotiate, parse_sdp
from .srtp import SrtpContext, SrtpError, crypto_attribute, new_key, parse_crypto
from .transport import Address, RtpSocket
from .trunk import from_identity

if TYPE_CHECKING:
    from .dialer import SipDialer

log = logging.getLogger(__name__)


class SipLeg(CallLeg):
    """One outbound call: INVITE, then a dialog with its own RTP socket."""

    # Media timing uses the monotonic clock directly (asyncio's loop.time() is the same clock, uvloop's
    # is rounded to milliseconds): cheaper per packet, and one clock for recorder and watchdog.
    _clock = staticmethod(time.monotonic)

    def __init__(self, dialer: SipDialer, number: str, trunk: Trunk, calling_number: str | None = None) -> None:
        self.number = number
        self.trunk = trunk
        self.calling_number = calling_number  # shown to the called phone instead of the trunk's caller
        self.answered_at = None
        self.ended_at = None
        self.result: RingResult | None = None
        self.call: OutboundCall | None = None
        self.media: Negotiated | None = None
        self.ended_by_remote = False
        self._dialer = dialer
        self._final: asyncio.Future[RingResult] | None = None
        self._rtp: RtpSocket | None = None
        self._sender = rtplib.RtpSender()
        self._relay = RtpRelay(self._sender)
        self._dtmf = rtplib.DtmfReceiver()
        self._digits: asyncio.Queue[str] = asyncio.Queue()
        self._ended = asyncio.Event()
        self._terminated = asyncio.Event()  # the call reached TERMINATED: BYE answered or given up
        # SDES-SRTP (the trunk's `srtp`): our key for the whole leg, the contexts once the far end's is known.
        self._srtp_key = new_key() if trunk.srtp != "off" else None
        self._srtp: SrtpContext | None = None
        self._crypto_tag = 1
        self._advertised = ""  # the address our Via, Contact and SDP give (a NAT's public one)
        self._sdp_session = secrets.randbits(31)
        self._sdp_version = 1
        self._peer: SipLeg | None = None
        # While ringing: who hears our early media or, until some arrives, a generated ringback.
        self._ringback_to: SipLeg | None = None
        self._ringback_country = ""
        self._ringback: asyncio.Future[None] | None = None
        self._recorder: Recorder | None = None
        # The engine listening before the bridge (voicemail screening): hear(pcm, at), and the
        # (listen start, first packet's arrival, its RTP timestamp) that turn timestamps into `at`.
        self._hear: Callable[[bytes, float], None] | None = None
        self._hear_clock: tuple[float, float | None, int] = (0.0, None, 0)
        self.packets_in = 0
        self.packets_dropped = 0  # not RTP at all
        self.packets_foreign = 0  # RTP from a host the SDP did not name
        self.packets_relayed = 0  # sent out of this leg from the bridged one
        self.packets_not_relayed = 0
        self.last_rtp_at = 0.0
        # Direct media: our re-INVITE's answer awaited, and the relay count when the far ends met.
        self._reoffer: asyncio.Future[Negotiated | None] | None = None
        self.relayed_at_direct: int | None = None
        self.reinvite_refusal: int | None = None  # the last refusal's status (491: glare, worth a retry)
        self._gone = asyncio.Event()  # an in-dialog OPTIONS found the dialog gone

    @property
    def dialog(self) -> Dialog | None:
        """The call's dialog, None until answered."""
        return self.call.dialog if self.call is not None else None

    @property
    def masked_number(self) -> str:
        """The number as logs show it: full phone numbers stay out of logs."""
        return "…" + self.number[-4:]

    @property
    def final_status(self) -> int | None:
        return self.call.final_status if self.call is not None else None

    # --- CallLeg ---------------------------------------------------------------------------------

    async def ring(self, timeout: float, *, ringback_to: CallLeg | None = None, country: str = "") -> RingResult:
        if isinstance(ringback_to, SipLeg):
            self._ringback_to, self._ringback_country = ringback_to, country
        try:
            return await self._ring(timeout)
        finally:
            self._stop_ringback()

    async def _ring(self, timeout: float) -> RingResult:
        if self._final is not None:
            raise DialerError("a leg rings once")
        d = self._dialer
        await d._require_started()
        self._final = asyncio.get_running_loop().create_future()
        try:
            dest = await d._resolve(self.trunk.host, self.trunk.port)
        except (OSError, DialerError) as exc:
            log.warning("SIP trunk %s cannot be resolved: %s", self.trunk.host, exc)
            self._end()
            self.result = RingResult.UNAVAILABLE
            return self.result
        local = d._local_host_for(dest[0])
        try:
            self._rtp = await RtpSocket.open(
                local if d.bind_host in ("0.0.0.0", "") else d.bind_host, self._on_rtp, d.rtp_ports
            )
        except OSError as exc:
            raise DialerError(str(exc)) from exc
        if self.is_ended:  # hung up while we were resolving: nothing to cancel yet, so nothing is sent
            self._rtp.close()
            self.result = RingResult.NO_ANSWER
            return self.result
        creds = Credentials(self.trunk.username, self.trunk.password) if self.trunk.username else None
        self.call = OutboundCall(self._invite(local), dest, transport=self.trunk.transport, credentials=creds)
        d._place(self, timeout)
        try:
            result = await asyncio.shield(self._final)
        except asyncio.CancelledError:
            # The engine gave up on this call (shutdown): do not leave a phone ringing.
            asyncio.ensure_future(self.hangup())
            raise
        self.result = result
        if result is not RingResult.ANSWERED:
            self._end()
        return result

    def _invite(self, local: str) -> SipRequest:
        d = self._dialer
        trunk = self.trunk
        default_port = 5061 if trunk.transport == "tls" else 5060
        hostport = _uri_host(trunk.host) + (f":{trunk.port}" if trunk.port != default_port else "")
        target = f"sip:{trunk.format_number(self.number)}@{hostport}"
        transport = trunk.transport.upper()
        param = f";transport={trunk.transport}" if transport != "UDP" else ""
        display, from_user = from_identity(trunk, self.calling_number)
        from_uri = f"sip:{from_user}@{_uri_host(trunk.host)}"
        extra = []
        if trunk.assert_identity:
            extra.append(("P-Asserted-Identity", f'"{display}" <{from_uri}>' if display else f"<{from_uri}>"))
        self._advertised = d.advertised_host(local)
        local_port = d.local_port(transport)
        return new_invite(
            target_uri=target + param,
            from_uri=from_uri,
            from_display=display,
            contact_uri=f"sip:perezvon@{_uri_host(self._advertised)}:{local_port}{param}",
            transport=transport,
            local_host=self._advertised,
            local_port=local_port,
            body=self._sdp(codecs=(PCMU, PCMA)),
            extra=extra,
        )

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
                self._send_rtp(self._sender.packet(media.codec, chunk), media)
            self._relay.rebase()
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

    def listen(self, hear: Callable[[bytes, float], None] | None) -> bool:
        self._hear = hear
        self._hear_clock = (self._clock(), None, 0)
        return True

    async def hangup(self) -> None:
        call = self.call
        if call is not None and call.state is CallState.CONFIRMED:
            self._signal(call.hangup)  # BYE; the call's own deadline bounds the wait for its answer
            self._end()
            await self._terminated.wait()
            return
        if call is not None and call.state in (CallState.CALLING, CallState.EARLY):
            self._signal(call.hangup)  # CANCEL, as soon as §9.1 allows
        self._end()

    # --- the call's events -------------------------------------------------------------------------

    def _signal(self, action: Callable[[float], None]) -> None:
        """Feed the call one input now and send what it answers."""
        action(self._dialer.now())
        self._dialer._flush(self)

    def on_call_event(self, event: sip.CallEvent) -> None:
        """One method per event: `_on_answered`, `_on_notanswered`, …"""
        getattr(self, f"_on_{type(event).__name__.lower()}")(event)

    def _on_provisional(self, event: sip.Provisional) -> None:
        """Ringing: the caller hears our early media (a 183's SDP) if it sends any, else a ringback tone."""
        listener = self._ringback_to
        if listener is None or self.media is not None:
            return
        if event.response.body:
            with contextlib.suppress(SipParseError):
                if self._use_media(negotiate(parse_sdp(event.response.body))):
                    self._peer = listener  # one way: the listener's own audio is not sent to a ringing phone
        if self._ringback is None:
            self._ringback = asyncio.ensure_future(self._play_ringback(listener))

    async def _play_ringback(self, listener: SipLeg) -> None:
        period = ringback_period(self._ringback_country)
        while listener.media is not None and not listener.is_ended:
            await listener.play(period)

    def _stop_ringback(self) -> None:
        """Ringing is over, or real early media arrived: the generated tone stops, now."""
        self._ringback_to = None
        if self._ringback is not None:
            self._ringback.cancel()
            self._ringback = None

    def _on_answered(self, event: sip.Answered) -> None:
        try:
            if not self._use_media(negotiate(parse_sdp(event.response.body))):
                raise SipParseError("SRTP is required on this trunk, and the answer has no usable key")
        except SipParseError as exc:
            log.info("no usable SDP answer from %s: %s", self.masked_number, exc)
            assert self.call is not None
            self._signal(self.call.hangup)
            self._settle(RingResult.ERROR)
            return
        self.answered_at = datetime.now(UTC)
        self._stop_ringback()
        if self._peer is not None and self._peer._peer is not self:
            self._peer = None  # it heard our early media; from now on only a bridge links us
        self._settle(RingResult.ANSWERED)

    def _on_notanswered(self, event: sip.NotAnswered) -> None:
        log.info("INVITE to %s: %s (%s)", self.masked_number, event.status or "no final response", event.result.value)
        self._settle(event.result)

    def _on_requestreceived(self, event: sip.RequestReceived) -> None:
        call = self.call
        assert call is not None
        response = self._in_dialog_answer(event.request)
        self._signal(lambda now: call.respond(event.request, response, now))

    def _on_ackreceived(self, event: sip.AckReceived) -> None:
        with contextlib.suppress(SipParseError):
            self._use_media(negotiate(parse_sdp(event.request.body)))

    def _on_reinviteanswered(self, event: sip.ReinviteAnswered) -> None:
        try:
            media: Negotiated | None = negotiate(parse_sdp(event.response.body))
        except SipParseError as exc:
            log.info("unusable SDP answer to our re-INVITE from %s: %s", self.masked_number, exc)
            media = None
        else:
            self._use_media(media)
        self._reoffered(media)

    def _on_reinvitefailed(self, event: sip.ReinviteFailed) -> None:
        log.info("re-INVITE to %s refused: %s %s", self.masked_number, event.status or "-", event.reason)
        self.reinvite_refusal = event.status
        self._reoffered(None)

    def _reoffered(self, media: Negotiated | None) -> None:
        if self._reoffer is not None and not self._reoffer.done():
            self._reoffer.set_result(media)

    async def redirect_media(self, to: Negotiated | None) -> Negotiated | None:
        """Re-INVITE the far end to send its media to `to` (another leg's far end), None: back to us.

        The far end's new media (its answer), or None if it refused, timed out or the call ended; then
        nothing changed (§14.1). The offer carries only `to`'s codec, which is what `to` expects.
        """
        call, media = self.call, self.media
        if call is None or media is None or self.is_ended or self._reoffer is not None:
            return None
        if to is None:
            other = PCMA if media.codec == PCMU else PCMU
            sdp = self._sdp(codecs=(media.codec, other))
        else:
            sdp = self._sdp(codecs=(to.codec,), address=to.address, port=to.port, dtmf_pt=to.dtmf_pt)
        self._reoffer = asyncio.get_running_loop().create_future()
        self.reinvite_refusal = None
        try:
            self._signal(lambda now: call.reinvite(now, sdp))
            return await self._reoffer
        finally:
            self._reoffer = None

    def ping(self) -> None:
        """Ask the far end whether it still holds the dialog (in-dialog OPTIONS); `_gone` if not."""
        if self.call is not None and not self.is_ended:
            self._signal(self.call.ping)

    def _on_pingfailed(self, event: sip.PingFailed) -> None:
        log.info("%s no longer holds the call (OPTIONS: %s)", self.masked_number, event.status or "no answer")
        self._gone.set()

    def _on_terminated(self, event: sip.Terminated) -> None:
        self.ended_by_remote = self.ended_by_remote or event.by_remote
        self._terminated.set()
        self._end()

    def _settle(self, result: RingResult) -> None:
        if self._final is not None and not self._final.done():
            self._final.set_result(result)

    def _in_dialog_answer(self, req: SipRequest) -> SipResponse:
        if req.method == "INFO":
            self._info_dtmf(req)
            return make_response(req, 200)
        return self._session_change(req)

    def _session_change(self, req: SipRequest) -> SipResponse:
        """re-INVITE / UPDATE: hold, resume or a session refresh; answered 200 with our SDP."""
        assert self.call is not None and self.media is not None
        extra = [("Contact", self.call.contact), ("Allow", ALLOW), ("Content-Type", "application/sdp")]
        if not req.body:
            # An offerless re-INVITE (a refresh): we offer, the answer comes in the ACK.
            body = self._direct_sdp(None) or self._sdp(codecs=(self.media.codec,))
            return make_response(req, 200, body=body, extra=extra)
        try:
            offer = parse_sdp(req.body)
            if (direct := self._direct_sdp(offer)) is not None:
                return make_response(req, 200, body=direct, extra=extra)
            prefer = (self.media.codec, PCMA if self.media.codec == PCMU else PCMU)
            media = negotiate(offer, prefer=prefer)
        except SipParseError:
            return make_response(req, 488)
        if not self._use_media(media, offered=True) or (offer.proto == "RTP/SAVP" and self._srtp is None):
            return make_response(req, 488)  # nothing we can decode, or SRTP insisted on in a suite we lack
        body = self._sdp(codecs=(media.codec,), direction=answer_direction(offer.direction), answer_to=offer)
        return make_response(req, 200, body=body, extra=extra)

    def _use_media(self, media: Negotiated, *, offered: bool = False) -> bool:
        """Take what an SDP answer (or the far end's offer) negotiated, SRTP keys included; False if it
        cannot be used. A far end that offers SRTP in a re-INVITE gets it even where we did not offer."""
        if self._srtp_key is None and offered and parse_crypto(media.crypto) is not None:
            self._srtp_key = new_key()
        if self._srtp_key is not None:
            remote = parse_crypto(media.crypto)
            if remote is None and self.trunk.srtp == "required":
                return False
            if remote is None:
                self._srtp = None  # optional: the far end chose plain RTP
            else:
                self._crypto_tag = remote[0]
                srtp = self._srtp
                self._srtp = srtp.rekeyed(remote[1]) if srtp is not None else SrtpContext(self._srtp_key, remote[1])
        self.media = media
        return True

    def _direct_sdp(self, offer: MediaDescription | None) -> bytes | None:
        """While the far ends talk directly: the other far end's media, so a session refresh (RFC 4028)
        leaves the media where it is. None (answer with ours, back to the relay) for hold or a new codec.
        """
        peer = self._peer
        theirs = peer.media if peer is not None else None
        if self.relayed_at_direct is None or theirs is None:
            return None
        if offer is not None:
            if offer.direction != "sendrecv" or offer.proto != "RTP/AVP":
                return None
            try:
                self.media = negotiate(offer, prefer=(theirs.codec,))
            except SipParseError:
                return None
        return self._sdp(codecs=(theirs.codec,), address=theirs.address, port=theirs.port, dtmf_pt=theirs.dtmf_pt)

    def _sdp(
        self,
        codecs: tuple[int, ...],
        direction: str = "sendrecv",
        answer_to: MediaDescription | None = None,
        *,
        address: str | None = None,
        port: int | None = None,
        dtmf_pt: int | None = DTMF_PT,
    ) -> bytes:
        """Our offer, or (`answer_to`) our answer: keys only where SRTP is on, in the offer's profile.

        With `address` and `port` (direct media) the media is another far end's, plain RTP: never SRTP.
        """
        assert self._rtp is not None
        key, crypto = self._srtp_key, None
        if key is not None and address is None and (answer_to is None or self._srtp is not None):
            crypto = crypto_attribute(key, self._crypto_tag)
        if answer_to is not None:
            proto = answer_to.proto
        else:
            proto = "RTP/SAVP" if self.trunk.srtp == "required" else "RTP/AVP"
        body = build_sdp(
            address or self._advertised or self._rtp.host,
            port or self._rtp.port,
            session_id=self._sdp_session,
            version=self._sdp_version,
            codecs=codecs,
            dtmf_pt=dtmf_pt,
            direction=direction,
            crypto=crypto,
            proto=proto,
        )
        self._sdp_version += 1
        return body

    def _info_dtmf(self, req: SipRequest) -> None:
        if "dtmf" not in (req.headers.get("Content-Type") or "").lower():
            return
        for line in req.body.decode("utf-8", "replace").splitlines():
            name, _, value = line.partition("=")
            if name.strip().lower() == "signal" and value.strip()[:1] in rtplib.DTMF_KEYS:
                self._digits.put_nowait(value.strip()[:1])

    # --- media: these run for every packet of every bridged call --------------------------------------

    def _on_rtp(self, data: bytes, addr: Address) -> None:
        if len(data) < 12 or data[0] >> 6 != 2:
            self.packets_dropped += 1
            return
        pt_byte = data[1]
        if 192 <= pt_byte <= 223:
            return  # RTCP multiplexed on this port (RFC 5761): we do not use it
        media = self.media
        if media is None:
            return
        if addr[0] != media.address:
            self.packets_foreign += 1  # not from the host the SDP named: never relayed, never answered
            return
        srtp = self._srtp
        if srtp is not None:
            try:
                data = srtp.unprotect(data)
            except SrtpError:
                self.packets_dropped += 1  # forged or replayed: it must not move our media either
                return
        if addr[1] != media.port:
            self.media = media = media.latch(addr) or media
        self.packets_in += 1
        self.last_rtp_at = self._clock()
        pt = pt_byte & 0x7F
        peer = self._peer
        if pt == media.dtmf_pt:
            self._on_dtmf(data, peer)
            return
        if pt != PCMU and pt != PCMA:
            return  # comfort noise and anything we did not offer
        if peer is not None:
            if self._ringback is not None:
                self._stop_ringback()  # the far end's own early media replaces our tone
            peer._relay_in(data, pt, None)
        if self._hear is not None:
            self._to_listener(data, pt)
        rec = self._recorder
        if rec is not None:
            with contextlib.suppress(rtplib.RtpParseError):
                pkt = rtplib.RtpPacket.parse(data)
                rec.add(self._clock(), pkt.ssrc, pkt.timestamp, rtplib.decode(pkt.payload, pt))

    def _to_listener(self, data: bytes, pt: int) -> None:
        try:
            pkt = rtplib.RtpPacket.parse(data)
        except rtplib.RtpParseError:
            return
        started, first_at, first_ts = self._hear_clock
        if first_at is None:
            first_at, first_ts = self._clock() - started, pkt.timestamp
            self._hear_clock = (started, first_at, first_ts)
        ticks = (pkt.timestamp - first_ts) & 0xFFFFFFFF
        if ticks >= 1 << 31:
            return  # sent before the first one we heard (reordered): too late to matter
        at = first_at + ticks / 8000
        hear = self._hear
        if hear is not None:
            hear(rtplib.decode(pkt.payload, pt), at)

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

    def _send_rtp(self, packet: bytes, media: Negotiated) -> None:
        assert self._rtp is not None
        srtp = self._srtp
        self._rtp.send(packet if srtp is None else srtp.protect(packet), media.target)

    def _relay_in(self, data: bytes, src_pt: int, dst_pt: int | None) -> None:
        """Send a packet that arrived on the other leg out of this one, as part of our own stream."""
        media = self.media
        rtp_sock = self._rtp
        if media is None or rtp_sock is None or not media.wants_ours or self.ended_at is not None:
            self.packets_not_relayed += 1  # on hold or hanging up: expected, but counted
            return
        out = self._relay.translate(data, src_pt, dst_pt, media.codec)
        if out is None:
            return
        packet, ssrc, ts, payload, pt = out
        srtp = self._srtp
        rtp_sock.send(packet if srtp is None else srtp.protect(packet), media.target)
        self.packets_relayed += 1
        rec = self._recorder
        if rec is not None and (pt == PCMU or pt == PCMA):
            rec.add(self._clock(), ssrc, ts, rtplib.decode(payload, pt))

    def _end(self) -> None:
        if self.ended_at is None:
            self.ended_at = datetime.now(UTC)
        self._ended.set()
        self._settle(RingResult.NO_ANSWER)  # hung up before ringing ended: an answer always settles first
        self._reoffered(None)
        peer, self._peer = self._peer, None
        if peer is not None:
            peer._peer = None
        if self._rtp is not None:
            self._rtp.close()


def _uri_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
