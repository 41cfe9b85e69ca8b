"""`SipDialer`: the SIP user agent behind the `Dialer` interface, a B2BUA when it bridges.

The asyncio shell: it owns the SIP transports, the RTP sockets' legs and one loop timer. Each `SipLeg`
is its own `OutboundCall` (the sans-I/O rules) with its own RTP socket; the dialer routes what arrives
to the call by Call-ID, feeds it `loop.time()`, sends what it answers and hands its events to the
leg. Requests outside any call (probes, stray INVITEs) get answers from the dialer's own transaction
table. Bridging two legs relays RTP between their sockets (see `relay`), optionally recording.
"""

from __future__ import annotations

import asyncio
import heapq
import ipaddress
import itertools
import logging
import random
import secrets
import socket
import ssl
import time
from pathlib import Path

from ..base import CallLeg, Dialer, DialerError, Trunk
from .dialog import ALLOW
from .leg import SipLeg
from .message import SipRequest, SipResponse, make_response
from .recorder import Recorder
from .sdp import Negotiated
from .transactions import TransactionTable, Transmit
from .transport import Address, TcpTransport, TlsTransport, UdpTransport, tls_context

log = logging.getLogger(__name__)


def _local_ip_for(host: str) -> str:
    """The address the kernel would use to reach host (what we advertise when bound to 0.0.0.0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect((host, 9))
            return s.getsockname()[0]
        except OSError:
            return "127.0.0.1"


class SipDialer(Dialer):
    """A SIP user agent placing calls through a trunk (UDP, TCP or TLS), and bridging them."""

    def __init__(
        self,
        trunk: Trunk | None = None,
        *,
        bind_host: str = "127.0.0.1",
        bind_port: int = 0,
        recordings_dir: Path | None = None,
        rtp_timeout: float = 60.0,
        rtp_ports: tuple[int, int] | None = None,
        public_address: str = "",
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.trunk = trunk
        # Behind a 1:1 NAT: the address our Via, Contact and SDP give instead of the bound one.
        self.public_address = public_address
        self.tls_context = tls
        self.rtp_ports = rtp_ports  # e.g. (10000, 20000) to fit a firewall rule; None = any free port
        self.rtp_timeout = rtp_timeout  # seconds without media before a bridged call is ended; 0 = never
        # After a 491 to our re-INVITE, one more try after a random wait in this range (RFC 3261
        # §14.1: 2.1-4 s for the owner of the Call-ID, which we are for every leg).
        self.glare_retry = (2.1, 4.0)
        self.bind_host = bind_host
        self.bind_port = bind_port
        self.recordings_dir = recordings_dir
        self._udp: UdpTransport | None = None
        self._tcp: TcpTransport | None = None
        self._tls: TlsTransport | None = None
        self._ports: dict[str, int] = {}
        self._legs: dict[str, SipLeg] = {}  # by Call-ID, until the call is finished
        self._table = TransactionTable()  # answers to requests outside our calls
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        # The calls' deadlines as a heap, so each event costs O(log calls) and not a scan of every call
        # (a thousand held calls): (at, seq, Call-ID), stale unless `_armed[Call-ID]` is still `at`.
        self._deadlines: list[tuple[float, int, str]] = []
        self._armed: dict[str, float] = {}
        self._seq = itertools.count()
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
        self._tcp = TcpTransport(self._on_message, self._unreachable)
        try:
            # The same port number for TCP, so one Contact works for both; any port if it is taken.
            _, tport = await self._tcp.start(self.bind_host, port)
        except OSError:
            _, tport = await self._tcp.start(self.bind_host, 0)
        self._ports["TCP"] = tport
        # TLS connects out only; Via and Contact give the TCP port (nothing listens for TLS there).
        self._tls = TlsTransport(self._on_message, self.tls_context or tls_context(), self._unreachable)
        self._ports["TLS"] = tport
        self._started = True
        log.info("SIP user agent on %s:%s", host, port)

    async def close(self) -> None:
        for leg in list(self._legs.values()):
            await leg.hangup()
        if self._timer is not None:
            self._timer.cancel()
        for t in (self._udp, self._tcp, self._tls):
            if t is not None:
                t.close()
        self._started = False

    def local_port(self, transport: str = "UDP") -> int:
        return self._ports[transport.upper()]

    def leg(self, number: str, trunk: Trunk | None = None, *, calling_number: str | None = None) -> SipLeg:
        trunk = trunk or self.trunk
        if trunk is None:
            raise DialerError("no SIP trunk configured (PEREZVON_SIP_TRUNK) and none given for the site")
        return SipLeg(self, number, trunk, calling_number)

    async def bridge(self, a: CallLeg, b: CallLeg, record_to: Path | None = None) -> None:
        if not isinstance(a, SipLeg) or not isinstance(b, SipLeg):
            raise DialerError("SipDialer bridges only its own legs")
        recorder = None
        if not a.is_ended and not b.is_ended:
            if record_to is not None:
                recorder = Recorder(time.monotonic())
                a._recorder = recorder
            a._peer, b._peer = b, a  # the relay carries the call until (and unless) the far ends meet
            ended = [asyncio.ensure_future(a._ended.wait()), asyncio.ensure_future(b._ended.wait())]
            waits = list(ended)
            try:
                direct_up = False
                if record_to is None and a.trunk.direct_media and b.trunk.direct_media:
                    direct = asyncio.ensure_future(self._direct_media(a, b))
                    waits.append(direct)
                    await asyncio.wait([direct, *ended], return_when=asyncio.FIRST_COMPLETED)
                    failed = direct.exception() if direct.done() else None
                    if failed is not None:  # a bug, not a refusal: the relay keeps carrying the call
                        log.error("direct media failed", exc_info=failed)
                    direct_up = direct.done() and failed is None and direct.result()
                # With direct media no RTP reaches us, so silence proves nothing: OPTIONS pings do.
                watchdog = self._dialog_watchdog if direct_up else self._media_watchdog
                watch = [asyncio.ensure_future(watchdog(a, b))]
                waits += watch
                await asyncio.wait([*ended, *watch], return_when=asyncio.FIRST_COMPLETED)
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

    async def _direct_media(self, a: SipLeg, b: SipLeg) -> bool:
        """Point the far ends' media at each other (RFC 3725's flow when both answers are known).

        A is re-INVITEd with B's media, then B with A's answer. If A refuses nothing changed; if B
        refuses (or moved), A is asked back to us: the relay, still bridging, carries the call as
        before. True when both far ends now send to each other.
        """
        ma, mb = a.media, b.media
        if ma is None or mb is None or ma.direction != "sendrecv" or mb.direction != "sendrecv":
            return False  # on hold, or no media yet: nothing to hand over
        if a._srtp is not None or b._srtp is not None:
            return False  # SRTP keys are per hop: each far end's would have to reach the other
        a_new = await self._redirect(a, mb)
        if a_new is None:
            return False
        if a_new.codec != mb.codec:  # an answer outside our offer: B would get a codec it did not choose
            log.info("direct media: %s answered another codec; relaying", a.masked_number)
            await a.redirect_media(None)
            return False
        b_new = await self._redirect(b, a_new)
        if b_new is not None and b_new.target == mb.target and b_new.codec == mb.codec:
            for leg in (a, b):
                leg.relayed_at_direct = leg.packets_relayed
            log.info("direct media between %s and %s", a.masked_number, b.masked_number)
            return True
        log.info("direct media refused by %s: relaying", b.masked_number)
        await a.redirect_media(None)  # if this fails too, A sends to B's phone and the relay the rest
        if b_new is not None:
            await b.redirect_media(None)
        return False

    async def _redirect(self, leg: SipLeg, to: Negotiated) -> Negotiated | None:
        """`leg.redirect_media(to)`, tried once more after glare (491): the far end's own re-INVITE
        (a session refresh, say) crossed ours, and is over by then."""
        media = await leg.redirect_media(to)
        if media is None and leg.reinvite_refusal == 491 and not leg.is_ended:
            await asyncio.sleep(random.uniform(*self.glare_retry))
            media = await leg.redirect_media(to)
        return media

    async def _dialog_watchdog(self, a: SipLeg, b: SipLeg) -> None:
        """Direct media's dead-peer check: every `rtp_timeout / 2` s an in-dialog OPTIONS to each far
        end; return when one answers that the dialog is gone (481, 408, no answer: RFC 5057)."""
        if not self.rtp_timeout:
            await asyncio.Event().wait()
        gone = [asyncio.ensure_future(a._gone.wait()), asyncio.ensure_future(b._gone.wait())]
        try:
            while True:
                for leg in (a, b):
                    leg.ping()
                done, _ = await asyncio.wait(gone, timeout=self.rtp_timeout / 2, return_when=asyncio.FIRST_COMPLETED)
                if done:
                    return
        finally:
            for g in gone:
                g.cancel()

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
                    log.info("no RTP from %s for %.0f s: ending the call", leg.masked_number, self.rtp_timeout)
                    return

    # --- the shell: what the legs' calls need -------------------------------------------------------

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    async def _require_started(self) -> None:
        if not self._started:
            await self.start()

    async def _resolve(self, host: str, port: int) -> Address:
        key = (host, port)
        if key not in self._resolved:
            if _is_ip(host):
                self._resolved[key] = key
            else:
                infos = await asyncio.get_running_loop().getaddrinfo(
                    host, port, family=socket.AF_INET, type=socket.SOCK_DGRAM
                )
                if not infos:
                    raise DialerError(f"cannot resolve trunk host {host!r}")
                self._resolved[key] = (infos[0][4][0], port)
            if self._tls is not None:  # the certificate is checked against the name we were given
                self._tls.server_names[self._resolved[key]] = host
        return self._resolved[key]

    def _local_host_for(self, remote_ip: str) -> str:
        if self.bind_host not in ("0.0.0.0", ""):
            return self.bind_host
        return _local_ip_for(remote_ip)

    def advertised_host(self, local: str) -> str:
        """What Via, Contact and SDP say: the NAT's public address if configured, else the local one."""
        return self.public_address or local

    def _place(self, leg: SipLeg, timeout: float) -> None:
        """Start the leg's call ringing for at most `timeout` seconds."""
        assert leg.call is not None
        self._legs[leg.call.call_id] = leg
        leg.call.ring(self.now(), timeout)
        self._flush(leg)

    def _transmit(self, out: list[Transmit]) -> None:
        for t in out:
            transport = {"TCP": self._tcp, "TLS": self._tls}.get(t.transport.upper(), self._udp)
            if transport is not None:
                transport.send(t.message.encode(), t.dest)

    def _flush(self, leg: SipLeg) -> None:
        """After any input to a leg's call: send its messages, hand on its events, re-arm the timer."""
        call = leg.call
        assert call is not None
        while True:
            self._transmit(call.messages_to_send())
            event = call.next_event()
            if event is None:
                break
            try:
                leg.on_call_event(event)
            except Exception:  # a bug in one leg must not stop the others' signalling
                log.exception("SIP call event handler failed")
        if call.finished and self._legs.get(call.call_id) is leg:
            del self._legs[call.call_id]
        self._arm(call.call_id, None if call.finished else call.get_timer())
        self._schedule()

    def _flush_table(self) -> None:
        out, _ = self._table.drain()
        self._transmit(out)
        self._schedule()

    def _arm(self, call_id: str, at: float | None) -> None:
        if at is None:
            self._armed.pop(call_id, None)
        elif self._armed.get(call_id) != at:
            self._armed[call_id] = at
            heapq.heappush(self._deadlines, (at, next(self._seq), call_id))

    def _next_call_deadline(self) -> float | None:
        heap = self._deadlines
        while heap and self._armed.get(heap[0][2]) != heap[0][0]:
            heapq.heappop(heap)  # re-armed or disarmed since it was pushed
        return heap[0][0] if heap else None

    def _schedule(self) -> None:
        deadlines = (self._next_call_deadline(), self._table.get_timer())
        nxt = min((d for d in deadlines if d is not None), default=None)
        if nxt == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = nxt
        self._timer = asyncio.get_running_loop().call_at(nxt, self._on_timer) if nxt is not None else None

    def _on_timer(self) -> None:
        now = self.now()
        self._timer = None
        self._timer_at = None
        due = []
        while (at := self._next_call_deadline()) is not None and at <= now:
            _, _, call_id = heapq.heappop(self._deadlines)
            del self._armed[call_id]
            due.append(call_id)
        for call_id in due:
            leg = self._legs.get(call_id)
            if leg is not None and leg.call is not None:
                leg.call.handle_timer(now)
                self._flush(leg)
        self._table.handle_timer(now)
        self._flush_table()

    def _unreachable(self, addr: Address) -> None:
        now = self.now()
        for leg in list(self._legs.values()):
            if leg.call is not None:
                leg.call.transport_error(addr, now)
                self._flush(leg)

    # --- incoming --------------------------------------------------------------------------------------

    def _on_message(self, msg: SipRequest | SipResponse, addr: Address, transport: str) -> None:
        leg = self._legs.get(msg.call_id)
        if isinstance(msg, SipResponse):
            if leg is None or leg.call is None:
                log.debug("stray SIP response %s for %s", msg.status, msg.cseq)
                return
            leg.call.receive_response(msg, self.now())
            self._flush(leg)
        elif (
            leg is not None
            and leg.call is not None
            and msg.method != "CANCEL"
            and (msg.method == "ACK" or msg.to_addr.tag)
        ):
            leg.call.receive_request(msg, addr, transport, self.now())
            self._flush(leg)
        else:
            self._out_of_dialog(msg, addr, transport)

    def _out_of_dialog(self, req: SipRequest, addr: Address, transport: str) -> None:
        now = self.now()
        if req.method == "ACK":  # of our non-2xx answer: same branch as its INVITE (§17.1.1.3)
            tx = self._table.server((req.top_via.branch, "INVITE"))
            if tx is not None:
                tx.receive_request(req, now)
                self._flush_table()
            return
        tx = self._table.server((req.top_via.branch, req.method))
        if tx is not None:  # a retransmission: the transaction repeats its answer
            tx.receive_request(req, now)
        else:
            tx = self._table.start_server(req, addr, transport, now)
            tx.respond(_out_of_dialog_answer(req), now)
        self._flush_table()


def _out_of_dialog_answer(req: SipRequest) -> SipResponse:
    if req.method == "CANCEL":
        # We never keep an incoming INVITE pending, so there is nothing left to cancel.
        return make_response(req, 481)
    if req.to_addr.tag:
        return make_response(req, 481)  # a dialog we do not have (or no longer)
    if req.method == "OPTIONS":
        return make_response(req, 200, to_tag=secrets.token_hex(4), extra=[("Allow", ALLOW)])
    if req.method == "INVITE":
        return make_response(req, 480, to_tag=secrets.token_hex(4))  # we only call out
    return make_response(req, 405, to_tag=secrets.token_hex(4), extra=[("Allow", ALLOW)])


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
