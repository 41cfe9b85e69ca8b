"""One outbound call (RFC 3261 UAC), sans-I/O: the INVITE, CANCEL, digest and in-dialog rules.

Shaped like aioquic's `QuicConnection`: every input takes `now` (seconds, any monotonic origin) —
`ring`, `cancel`, `hangup`, `reinvite`, `receive_response`, `receive_request`, `respond`,
`transport_error`, `handle_timer`; the
caller then takes `messages_to_send()` (each a `Transmit`: message, destination, transport), the
`next_event()`s, and calls `handle_timer(now)` again at `get_timer()`. Nothing here touches a socket
or a clock, so every rule is testable on a fake clock.

    CALLING ──1xx──▶ EARLY ──2xx──▶ CONFIRMED ──hangup (BYE)──▶ TERMINATING ──▶ TERMINATED
       │                │               └──────── BYE from the far end ────────────▲
       └──cancel────────┴──▶ CANCELLING ──487 / grace (a racing 2xx: ACK, BYE)──────┘
       non-2xx final, timeout ──────────────────────────────────────────────────────┘

Each state's answer to its INVITE transaction is one method (`_calling_invite`, …). After
TERMINATED the call lingers 64*T1 to ACK a retransmitted 2xx, then `finished` is true.

Once CONFIRMED the user may offer new media in a re-INVITE of ours (`reinvite`, §14.1; what direct
media is made of): its answer comes as `ReinviteAnswered` (the 2xx, already ACKed) or
`ReinviteFailed` (refused, 491 glare, timed out, or not allowed now); either way the call goes on.
"""

from __future__ import annotations

import enum
import ipaddress
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from ..base import RingResult
from .dialog import ALLOW, Dialog, cancel_for, reinvite_with_auth
from .digest import authorization, parse_challenge
from .message import NameAddr, SipParseError, SipRequest, SipResponse, SipUri, make_response
from .transaction import T1, ClientTransaction, Event, ResponseEvent, State
from .transactions import Address, TransactionTable, Transmit

log = logging.getLogger(__name__)

CANCEL_GRACE_S = 2.0  # after CANCEL, how long the ring waits for the 487 (or a racing 200 to ACK and BYE)
BYE_WAIT_S = 2.0  # TERMINATING waits no longer for the BYE's answer: the transaction goes on alone
LINGER_S = 64 * T1  # after TERMINATED: a late 2xx retransmission still gets its ACK


class CallState(enum.Enum):
    CALLING = "calling"  # INVITE sent, nothing heard (§9.1: no CANCEL may go yet)
    EARLY = "early"  # a provisional came: ringing
    CANCELLING = "cancelling"  # we gave up ringing; CANCEL sent, or waiting for a provisional to send it
    CONFIRMED = "confirmed"  # answered and ACKed
    TERMINATING = "terminating"  # our BYE is out
    TERMINATED = "terminated"


class Credentials(NamedTuple):
    """What the trunk's digest challenges are answered with."""

    username: str
    password: str


@dataclass(frozen=True)
class _ResponseNews:
    response: SipResponse


class Provisional(_ResponseNews):
    """A 1xx to our INVITE (its body is the early-media SDP of a 183, if any)."""


class Answered(_ResponseNews):
    """A 2xx made the dialog and was ACKed; its body is the SDP answer."""


@dataclass(frozen=True)
class _RequestNews:
    request: SipRequest


class RequestReceived(_RequestNews):
    """An in-dialog request only the user can answer (re-INVITE, UPDATE, INFO): call `respond()`."""


class AckReceived(_RequestNews):
    """The ACK of our 2xx to a re-INVITE; carries the SDP answer when we offered in that 2xx."""


@dataclass(frozen=True)
class NotAnswered:
    """Ringing ended without an answer (given at most once, and never after `Answered`)."""

    result: RingResult
    status: int | None  # the final response, None for a timeout or our own CANCEL


@dataclass(frozen=True)
class Terminated:
    by_remote: bool  # the far end sent BYE


class ReinviteAnswered(_ResponseNews):
    """A 2xx to our re-INVITE, ACKed; its body is the far end's SDP answer to our offer."""


@dataclass(frozen=True)
class ReinviteFailed:
    """Our re-INVITE changed nothing (§14.1: the session stays as it was before the offer)."""

    status: int | None  # the final response (491: glare); None: it timed out or could not be sent
    reason: str


@dataclass(frozen=True)
class PingFailed:
    """Our in-dialog OPTIONS found the dialog gone (481, 408 or no answer: RFC 5057 §5.1)."""

    status: int | None


CallEvent = (
    Provisional
    | Answered
    | NotAnswered
    | RequestReceived
    | AckReceived
    | Terminated
    | ReinviteAnswered
    | ReinviteFailed
    | PingFailed
)


_OnNews = Callable[[ClientTransaction, Event, float], None]


def ring_result(status: int) -> RingResult:
    """A final response to our INVITE, as the engine sees it."""
    if 200 <= status < 300:
        return RingResult.ANSWERED
    if status in (486, 600):
        return RingResult.BUSY
    if status in (408, 480, 487):
        return RingResult.NO_ANSWER
    if status in (403, 603):
        return RingResult.REJECTED
    if status in (404, 484, 604):
        return RingResult.INVALID_NUMBER
    if status in (401, 407):  # only final when we could not answer the challenge: our credentials
        return RingResult.ERROR
    return RingResult.UNAVAILABLE  # 3xx (not followed), 5xx, every other 4xx/6xx


class OutboundCall:
    """An INVITE to `dest` (the trunk) and the dialog it makes."""

    def __init__(
        self, invite: SipRequest, dest: Address, *, transport: str = "UDP", credentials: Credentials | None = None
    ) -> None:
        self.invite = invite  # the latest INVITE (a digest retry replaces it)
        self.dest = dest
        self.transport = transport.upper()
        self.credentials = credentials
        self.state = CallState.CALLING
        self.dialog: Dialog | None = None
        self.final_status: int | None = None
        self._table = TransactionTable()
        self._out: list[Transmit] = []
        self._events: deque[CallEvent] = deque()
        self._deadlines: dict[str, float] = {}  # ring, cancel_grace, bye_wait, linger
        self._provisional = False  # heard a 1xx to the current INVITE (§9.1: CANCEL allowed)
        self._cancel_sent = False
        self._outcome_given = False
        self._auth_tries: dict[str, int] = {}  # by method
        self._ack: SipRequest | None = None
        self._reinvite_acks: dict[int, SipRequest] = {}  # by CSeq: for 2xx retransmissions of our re-INVITEs
        self._reinvite_pending = False  # our re-INVITE awaits its final response (§14.2: theirs get 491)
        # Who hears each client transaction's news: the INVITE's go by state, a BYE's to _bye_answered;
        # a re-INVITE of ours would add its own.
        self._on_news: dict[tuple[str, str], _OnNews] = {}

    @property
    def call_id(self) -> str:
        return self.invite.call_id

    @property
    def contact(self) -> str:
        return self.invite.need("Contact")

    @property
    def finished(self) -> bool:
        """Over, and nothing left to retransmit or absorb: the user may forget the call."""
        return self.state is CallState.TERMINATED and self.get_timer() is None

    # --- inputs ------------------------------------------------------------------------------------

    def ring(self, now: float, timeout: float | None = None) -> None:
        """Send the INVITE; after `timeout` seconds unanswered the call cancels itself."""
        self._start_client(self.invite, self.dest, now, self._invite_news)
        if timeout is not None:
            self._deadlines["ring"] = now + timeout
        self._pump(now)

    def cancel(self, now: float) -> None:
        """Stop ringing (§9.1); does nothing once answered or over."""
        self._cancel(now)
        self._pump(now)

    def hangup(self, now: float) -> None:
        """End the call however far it got: CANCEL while ringing, BYE once answered."""
        if self.state is CallState.CONFIRMED:
            self._send_bye(now)
        else:
            self._cancel(now)
        self._pump(now)

    def reinvite(self, now: float, sdp: bytes) -> None:
        """Offer `sdp` to the far end in a re-INVITE; answered by `ReinviteAnswered` or `ReinviteFailed`."""
        if self.state is not CallState.CONFIRMED or self.dialog is None:
            self._events.append(ReinviteFailed(None, f"call is {self.state.value}"))
        elif self._reinvite_pending or self._invite_server_pending():
            # §14.1: no second INVITE transaction in either direction; to the user it is glare.
            self._events.append(ReinviteFailed(491, "another INVITE is in progress"))
        else:
            self._reinvite_pending = True
            self._auth_tries.pop("INVITE", None)  # the dialog's INVITE was answered: a fresh challenge count
            self._send_reinvite(now, sdp)
        self._pump(now)

    def ping(self, now: float) -> None:
        """An in-dialog OPTIONS, for when no media proves the far end is there (direct media)."""
        if self.state is CallState.CONFIRMED and self.dialog is not None:
            options = self.dialog.request("OPTIONS", extra=[("Accept", "application/sdp")])
            self._start_client(options, self._in_dialog_dest(), now, self._ping_news)
        self._pump(now)

    def receive_response(self, response: SipResponse, now: float) -> None:
        tx = self._table.client((response.top_via.branch, response.cseq[1]))
        if tx is not None:
            tx.receive_response(response, now)
        elif response.cseq[1] == "INVITE" and 200 <= response.status < 300:
            self._retransmitted_2xx(response, now)
        self._pump(now)

    def receive_request(self, request: SipRequest, source: Address, transport: str, now: float) -> None:
        """A request within this call's dialog (by Call-ID): BYE, re-INVITE, OPTIONS, INFO, ACK."""
        if request.method == "ACK":
            self._ack_received(request, now)
        else:
            tx = self._table.server((request.top_via.branch, request.method))
            if tx is not None:  # a retransmission: the transaction repeats its answer
                tx.receive_request(request, now)
            else:
                tx = self._table.start_server(request, source, transport, now)
                response = self._answer_request(request, now)
                if response is not None:
                    tx.respond(response, now)
        self._pump(now)

    def respond(self, request: SipRequest, response: SipResponse, now: float) -> None:
        """The user's answer to a `RequestReceived`."""
        tx = self._table.server((request.top_via.branch, request.method))
        if tx is not None:
            tx.respond(response, now)
        self._pump(now)

    def transport_error(self, dest: Address, now: float) -> None:
        """The transport could not reach `dest` (TCP/TLS connect failed, certificate refused)."""
        self._table.transport_error(dest)
        self._pump(now)

    def handle_timer(self, now: float) -> None:
        self._table.handle_timer(now)
        for name, at in sorted(self._deadlines.items(), key=lambda kv: kv[1]):
            if at <= now and self._deadlines.get(name) == at:
                del self._deadlines[name]
                getattr(self, f"_deadline_{name}")(now)
        self._pump(now)

    # --- outputs -----------------------------------------------------------------------------------

    def get_timer(self) -> float | None:
        at = self._table.get_timer()
        return min((t for t in (at, *self._deadlines.values()) if t is not None), default=None)

    def messages_to_send(self) -> list[Transmit]:
        out, self._out = self._out, []
        return out

    def next_event(self) -> CallEvent | None:
        return self._events.popleft() if self._events else None

    # --- the INVITE transaction's news, by state -----------------------------------------------------

    def _pump(self, now: float) -> None:
        """Collect what the transactions queued and hand their events on, until they are quiet."""
        while True:
            out, events = self._table.drain()
            self._out.extend(out)
            if not events:
                return
            for tx, event in events:
                self._transaction_event(tx, event, now)

    def _start_client(self, request: SipRequest, dest: Address, now: float, on_news: _OnNews | None) -> None:
        """A client transaction whose events go to `on_news` (None: its answer changes nothing)."""
        tx = self._table.start_client(request, dest, self.transport, now)
        if on_news is not None:
            self._on_news[tx.key] = on_news

    def _transaction_event(self, tx: ClientTransaction, event: Event, now: float) -> None:
        on_news = self._on_news.get(tx.key)
        if tx.terminated:
            self._on_news.pop(tx.key, None)
        if on_news is not None:
            on_news(tx, event, now)

    def _invite_news(self, tx: ClientTransaction, event: Event, now: float) -> None:
        getattr(self, f"_{self.state.value}_invite")(event, now)

    def _calling_invite(self, event: Event, now: float) -> None:
        if not isinstance(event, ResponseEvent):
            self._not_answered(RingResult.UNAVAILABLE, None, now)  # timer B or transport error
            return
        resp = event.response
        if resp.status < 200:
            self._provisional = True
            self.state = CallState.EARLY
            self._events.append(Provisional(resp))
            return
        self.final_status = resp.status
        if resp.status < 300:
            self._answered(resp, now)
        elif not (resp.status in (401, 407) and self._retry_invite(resp, now)):
            self._not_answered(ring_result(resp.status), resp.status, now)

    _early_invite = _calling_invite  # more provisionals, or the final: the same rules

    def _cancelling_invite(self, event: Event, now: float) -> None:
        resp = event.response if isinstance(event, ResponseEvent) else None
        if resp is not None and resp.status < 200:
            self._provisional = True
            self._send_cancel_if_allowed(now)
            return
        if resp is not None:
            self.final_status = resp.status
        if resp is not None and resp.status < 300 and self._make_dialog(resp):
            # The 200 crossed our CANCEL: the call exists, so it is ended properly (§9.1).
            self._send_ack()
            self._settle(self._cancelled_result(), resp.status)
            self._send_bye(now)
            return
        self._not_answered(self._cancelled_result(), resp.status if resp else None, now)

    def _confirmed_invite(self, event: Event, now: float) -> None:
        return None  # the INVITE transaction ended with the 2xx; retransmissions come as strays

    _terminating_invite = _confirmed_invite

    def _terminated_invite(self, event: Event, now: float) -> None:
        if isinstance(event, ResponseEvent) and 200 <= event.response.status < 300:
            self._late_2xx(event.response, now)

    # --- the rules ----------------------------------------------------------------------------------

    def _cancel(self, now: float) -> None:
        if self.state not in (CallState.CALLING, CallState.EARLY):
            return
        self.state = CallState.CANCELLING
        self._deadlines.pop("ring", None)
        self._deadlines["cancel_grace"] = now + CANCEL_GRACE_S
        self._send_cancel_if_allowed(now)

    def _send_cancel_if_allowed(self, now: float) -> None:
        """RFC 3261 §9.1: no CANCEL before a provisional response; it goes out when one arrives."""
        if self._cancel_sent or not self._provisional:
            return
        self._cancel_sent = True
        self._start_client(cancel_for(self.invite), self.dest, now, None)  # the INVITE's final tells

    def _cancelled_result(self) -> RingResult:
        # Nobody said even "Trying": the trunk is not there, which is not the visitor's no-answer.
        return RingResult.NO_ANSWER if self._provisional else RingResult.UNAVAILABLE

    def _answered(self, resp: SipResponse, now: float) -> None:
        if not self._make_dialog(resp):
            self._not_answered(RingResult.ERROR, resp.status, now)
            return
        self._send_ack()
        self.state = CallState.CONFIRMED
        self._deadlines.pop("ring", None)
        self._outcome_given = True
        self._events.append(Answered(resp))

    def _make_dialog(self, resp: SipResponse) -> bool:
        try:
            self.dialog = Dialog.from_response(self.invite, resp)
        except SipParseError as exc:
            log.info("unusable 2xx on call %s: %s", self.call_id, exc)
            return False
        return True

    def _send_ack(self) -> None:
        """The 2xx's ACK belongs to the dialog, not the transaction (§13.2.2.4); kept for resends."""
        assert self.dialog is not None
        self._ack = self.dialog.request("ACK", cseq=self.invite.cseq[0])
        self._out.append(Transmit(self._ack, self._in_dialog_dest(), self.transport))

    def _retransmitted_2xx(self, resp: SipResponse, now: float) -> None:
        if self.dialog is None:
            self._late_2xx(resp, now)
        elif resp.to_addr.tag == self.dialog.remote_tag:
            ack = self._reinvite_acks.get(resp.cseq[0], self._ack)
            if ack is not None:
                self._out.append(Transmit(ack, self._in_dialog_dest(), self.transport))  # our ACK was lost

    def _late_2xx(self, resp: SipResponse, now: float) -> None:
        """A 2xx after we gave up waiting: the call exists at the far end, so ACK it and BYE it."""
        if self.state is CallState.TERMINATED and self.dialog is None and self._make_dialog(resp):
            self._send_ack()
            self._send_bye(now)

    def _send_bye(self, now: float, auth: tuple[str, str] | None = None) -> None:
        assert self.dialog is not None
        bye = self.dialog.request("BYE", extra=[auth] if auth else None)
        self._start_client(bye, self._in_dialog_dest(), now, self._bye_answered)
        if self.state is not CallState.TERMINATED:
            self.state = CallState.TERMINATING
            self._deadlines["bye_wait"] = now + BYE_WAIT_S

    def _bye_answered(self, tx: ClientTransaction, event: Event, now: float) -> None:
        resp = event.response if isinstance(event, ResponseEvent) else None
        if resp is not None and resp.status < 200:
            return
        if resp is not None and resp.status in (401, 407):
            auth = self._authorization(resp, tx.request)  # some PBXs challenge BYE too
            if auth is not None:
                self._send_bye(now, auth)
                return
        if self.state is CallState.TERMINATING:
            self._terminate(now)

    def _retry_invite(self, resp: SipResponse, now: float) -> bool:
        """The same INVITE with credentials (§22.2): a new transaction, CALLING again."""
        auth = self._authorization(resp, self.invite)
        if auth is None:
            return False
        self._on_news.pop((self.invite.top_via.branch, "INVITE"), None)  # its retransmitted 401s say nothing
        self.invite = reinvite_with_auth(self.invite, *auth)
        self._provisional = False
        self.state = CallState.CALLING
        self._start_client(self.invite, self.dest, now, self._invite_news)
        return True

    def _authorization(self, resp: SipResponse, request: SipRequest) -> tuple[str, str] | None:
        """The header answering a 401/407 to `request`: once per method, again only for a stale nonce."""
        header = "WWW-Authenticate" if resp.status == 401 else "Proxy-Authenticate"
        raw = resp.headers.get(header)
        creds = self.credentials
        if not raw or creds is None or not creds.username:
            return None
        try:
            challenge = parse_challenge(raw)
        except (SipParseError, ValueError) as exc:
            log.info("unusable %s challenge: %s", resp.status, exc)
            return None
        tries = self._auth_tries.get(request.method, 0)
        if tries >= (2 if challenge.stale else 1) or not challenge.supported:  # RFC 2617 §3.2.1
            return None
        self._auth_tries[request.method] = tries + 1
        value = authorization(
            challenge, method=request.method, uri=request.uri, username=creds.username, password=creds.password
        )
        return ("Authorization" if resp.status == 401 else "Proxy-Authorization"), value

    def _settle(self, result: RingResult, status: int | None) -> None:
        if not self._outcome_given:
            self._outcome_given = True
            self._events.append(NotAnswered(result, status))

    def _not_answered(self, result: RingResult, status: int | None, now: float) -> None:
        self._settle(result, status)
        self._terminate(now)

    def _terminate(self, now: float, *, by_remote: bool = False) -> None:
        if self.state is CallState.TERMINATED:
            return
        self.state = CallState.TERMINATED
        self._deadlines = {"linger": now + LINGER_S}
        self._events.append(Terminated(by_remote))

    # --- our re-INVITE (§14.1) ----------------------------------------------------------------------

    def _invite_server_pending(self) -> bool:
        """Their INVITE still in progress: unanswered, or our 2xx not yet ACKed."""
        return any(
            tx.method == "INVITE" and tx.state in (State.PROCEEDING, State.ACCEPTED) for tx in self._table.servers()
        )

    def _send_reinvite(self, now: float, sdp: bytes, auth: tuple[str, str] | None = None) -> None:
        assert self.dialog is not None
        extra = [("Contact", self.contact), ("Allow", ALLOW), *([auth] if auth else [])]
        reinvite = self.dialog.request("INVITE", body=sdp, extra=extra)
        self._start_client(reinvite, self._in_dialog_dest(), now, self._reinvite_news)

    def _reinvite_news(self, tx: ClientTransaction, event: Event, now: float) -> None:
        if not isinstance(event, ResponseEvent):
            self._reinvite_done(ReinviteFailed(None, "no final response"))
            return
        resp = event.response
        if resp.status < 200:
            return
        if resp.status >= 300:
            auth = self._authorization(resp, tx.request) if resp.status in (401, 407) else None
            if auth is not None and self.state is CallState.CONFIRMED:
                self._send_reinvite(now, tx.request.body, auth)
            else:
                self._reinvite_done(ReinviteFailed(resp.status, resp.reason))
            return
        assert self.dialog is not None
        contact = resp.headers.get("Contact")
        if contact:  # a 2xx to a re-INVITE refreshes the target (§12.2.1.2)
            try:
                self.dialog.remote_target = NameAddr.parse(contact).uri
            except SipParseError:
                pass
        ack = self.dialog.request("ACK", cseq=tx.request.cseq[0])  # every 2xx is ACKed, even after a BYE
        self._reinvite_acks[tx.request.cseq[0]] = ack
        self._out.append(Transmit(ack, self._in_dialog_dest(), self.transport))
        self._reinvite_done(ReinviteAnswered(resp))

    def _ping_news(self, tx: ClientTransaction, event: Event, now: float) -> None:
        status = event.response.status if isinstance(event, ResponseEvent) else None
        if status is not None and status < 200:
            return
        # Any other answer (200, 405, even 401) means the far end still holds the dialog.
        if (status is None or status in (408, 481)) and self.state is CallState.CONFIRMED:
            self._events.append(PingFailed(status))

    def _reinvite_done(self, news: ReinviteAnswered | ReinviteFailed) -> None:
        self._reinvite_pending = False
        self._events.append(news)

    # --- deadlines ----------------------------------------------------------------------------------

    def _deadline_ring(self, now: float) -> None:
        self._cancel(now)

    def _deadline_cancel_grace(self, now: float) -> None:
        if self.state is CallState.CANCELLING:
            self._not_answered(self._cancelled_result(), None, now)

    def _deadline_bye_wait(self, now: float) -> None:
        if self.state is CallState.TERMINATING:
            self._terminate(now)

    def _deadline_linger(self, now: float) -> None:
        return None  # `finished` now holds, once the transactions are quiet too

    # --- in-dialog requests from the far end (§12.2.2) ------------------------------------------------

    def _answer_request(self, req: SipRequest, now: float) -> SipResponse | None:
        """Our answer, or None when the user must give it (a `RequestReceived` is queued)."""
        dialog = self.dialog
        if dialog is None or req.to_addr.tag != dialog.local_tag:
            return make_response(req, 481)
        if not dialog.accepts(req):
            return make_response(req, 500, "Server Internal Error", extra=[("Retry-After", "1")])
        if req.method == "BYE":
            self._terminate(now, by_remote=True)
            return make_response(req, 200)
        if req.method == "OPTIONS":
            return make_response(req, 200, extra=[("Allow", ALLOW), ("Accept", "application/sdp")])
        if req.method not in ("INVITE", "UPDATE", "INFO"):
            return make_response(req, 405, extra=[("Allow", ALLOW)])
        if req.method == "INVITE" and self._reinvite_pending:
            return make_response(req, 491, extra=[("Retry-After", "1")])  # glare with ours (§14.2)
        contact = req.headers.get("Contact")
        if contact and req.method != "INFO":  # a target refresh (§12.2.2)
            try:
                dialog.remote_target = NameAddr.parse(contact).uri
            except SipParseError:
                pass
        self._events.append(RequestReceived(req))
        return None

    def _ack_received(self, ack: SipRequest, now: float) -> None:
        for tx in self._table.servers():
            if tx.method == "INVITE" and not tx.acked:
                tx.receive_request(ack, now)
                break
        if ack.body:
            self._events.append(AckReceived(ack))

    def _in_dialog_dest(self) -> Address:
        """The first hop of the route set, else the remote target; a hop given by name: the trunk."""
        assert self.dialog is not None
        first = self.dialog.route_set[0] if self.dialog.route_set else f"<{self.dialog.remote_target}>"
        try:
            uri = SipUri.parse(NameAddr.parse(first).uri)
            host, port = uri.host, uri.port or 5060
            ipaddress.ip_address(host)
        except (SipParseError, ValueError):
            return self.dest  # resolution was done for the trunk only
        return host, port
