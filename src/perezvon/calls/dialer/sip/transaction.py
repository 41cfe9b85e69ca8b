"""SIP transactions (RFC 3261 §17, with RFC 6026's Accepted state for server INVITE).

Sans-I/O, time passed in: every input takes `now` (seconds, any monotonic origin); a transaction
queues what to send in `outbox` and what its user should know in `events`, and `get_timer()` names
the next moment it wants `handle_timer(now)` called. Their owner, a `transactions.TransactionTable`
(one per outbound call, one for the dialer's out-of-dialog answers), drains both after every input.
Each §17 state is one method (`_calling`, `_proceeding`, …) from input to next state.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .message import Headers, SipRequest, SipResponse

T1 = 0.5  # RTT estimate (§17.1.1.1)
T2 = 4.0  # maximum retransmit interval for non-INVITE requests and INVITE responses
T4 = 5.0  # maximum time a message stays in the network


class State(enum.Enum):
    CALLING = "calling"
    TRYING = "trying"
    PROCEEDING = "proceeding"
    COMPLETED = "completed"
    ACCEPTED = "accepted"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


@dataclass
class ResponseEvent:
    """A response for the transaction user (the UA): provisional or final."""

    response: SipResponse


@dataclass
class TimeoutEvent:
    """Timer B or F fired: no final response came (treat as 408, §8.1.3.1)."""


@dataclass
class TransportErrorEvent:
    """The transport could not deliver (e.g. ICMP port unreachable)."""


Event = ResponseEvent | TimeoutEvent | TransportErrorEvent


class ClientTransaction:
    """Common parts of the two client transactions."""

    def __init__(self, request: SipRequest, now: float, *, reliable: bool = False, t1: float = T1) -> None:
        self.request = request
        self.reliable = reliable
        self.t1 = t1
        self.outbox: list[SipRequest] = [request]
        self.events: list[Event] = []
        self.branch = request.top_via.branch
        self.method = request.method
        self.last_response: SipResponse | None = None
        self._timers: dict[str, float] = {}

    @property
    def key(self) -> tuple[str, str]:
        return self.branch, self.method

    @property
    def terminated(self) -> bool:
        return self.state is State.TERMINATED

    state: State

    def get_timer(self) -> float | None:
        return min(self._timers.values(), default=None)

    def handle_timer(self, now: float) -> None:
        for name, at in sorted(self._timers.items(), key=lambda kv: kv[1]):
            if at <= now and name in self._timers:
                del self._timers[name]
                getattr(self, f"_timer_{name}")(now)

    def transport_error(self) -> None:
        if self.state is not State.TERMINATED:
            self.events.append(TransportErrorEvent())
            self._terminate()

    def _terminate(self) -> None:
        self.state = State.TERMINATED
        self._timers.clear()

    def receive_response(self, response: SipResponse, now: float) -> None:
        raise NotImplementedError


class ClientInviteTransaction(ClientTransaction):
    """§17.1.1: Calling → Proceeding → Completed → Terminated; 2xx terminates at once."""

    def __init__(self, request: SipRequest, now: float, *, reliable: bool = False, t1: float = T1) -> None:
        super().__init__(request, now, reliable=reliable, t1=t1)
        self.state = State.CALLING
        self._interval_a = t1
        if not reliable:
            self._timers["a"] = now + t1
        self._timers["b"] = now + 64 * t1

    def receive_response(self, response: SipResponse, now: float) -> None:
        getattr(self, f"_{self.state.value}")(response, now)

    def _calling(self, response: SipResponse, now: float) -> None:
        self._timers.pop("a", None)  # any response stops retransmission
        self._proceeding(response, now)

    def _proceeding(self, response: SipResponse, now: float) -> None:
        self.last_response = response
        if response.status < 200:
            self.state = State.PROCEEDING
            self._timers.pop("b", None)  # a provisional means someone holds the request
            self.events.append(ResponseEvent(response))
        elif response.status < 300:
            # The TU owns the 2xx's ACK and retransmissions (§17.1.1.2).
            self.events.append(ResponseEvent(response))
            self._terminate()
        else:
            self.state = State.COMPLETED
            self._timers.clear()
            self.outbox.append(self.ack_for(response))
            self.events.append(ResponseEvent(response))
            self._timers["d"] = now + (0 if self.reliable else 32.0)

    def _completed(self, response: SipResponse, now: float) -> None:
        # A retransmitted final response: ACK again, tell no one.
        if response.status >= 300:
            self.outbox.append(self.ack_for(response))

    def _terminated(self, response: SipResponse, now: float) -> None:
        return None

    def _timer_a(self, now: float) -> None:
        if self.state is State.CALLING:
            self.outbox.append(self.request)
            self._interval_a *= 2
            self._timers["a"] = now + self._interval_a

    def _timer_b(self, now: float) -> None:
        if self.state in (State.CALLING, State.PROCEEDING):
            self.events.append(TimeoutEvent())
            self._terminate()

    def _timer_d(self, now: float) -> None:
        self._terminate()

    def ack_for(self, response: SipResponse) -> SipRequest:
        """The ACK for a non-2xx final response (§17.1.1.3): same branch, the response's To."""
        req = self.request
        headers = Headers()
        headers.add("Via", req.headers.get_all("Via")[0])
        for route in req.headers.get_all("Route"):
            headers.add("Route", route)
        headers.add("Max-Forwards", req.headers.get("Max-Forwards") or "70")
        headers.add("From", req.need("From"))
        headers.add("To", response.need("To"))
        headers.add("Call-ID", req.call_id)
        headers.add("CSeq", f"{req.cseq[0]} ACK")
        return SipRequest("ACK", req.uri, headers)


class ClientNonInviteTransaction(ClientTransaction):
    """§17.1.2: Trying → Proceeding → Completed → Terminated."""

    def __init__(self, request: SipRequest, now: float, *, reliable: bool = False, t1: float = T1) -> None:
        super().__init__(request, now, reliable=reliable, t1=t1)
        self.state = State.TRYING
        self._interval_e = t1
        if not reliable:
            self._timers["e"] = now + t1
        self._timers["f"] = now + 64 * t1

    def receive_response(self, response: SipResponse, now: float) -> None:
        getattr(self, f"_{self.state.value}")(response, now)

    def _trying(self, response: SipResponse, now: float) -> None:
        self._proceeding(response, now)

    def _proceeding(self, response: SipResponse, now: float) -> None:
        self.last_response = response
        self.events.append(ResponseEvent(response))
        if response.status < 200:
            self.state = State.PROCEEDING
            return
        self.state = State.COMPLETED
        self._timers.clear()
        self._timers["k"] = now + (0 if self.reliable else T4)

    def _completed(self, response: SipResponse, now: float) -> None:
        return None  # retransmissions of the final response are absorbed

    def _terminated(self, response: SipResponse, now: float) -> None:
        return None

    def _timer_e(self, now: float) -> None:
        if self.state is State.TRYING:
            self._interval_e = min(self._interval_e * 2, T2)
        elif self.state is State.PROCEEDING:
            self._interval_e = T2
        else:
            return
        self.outbox.append(self.request)
        self._timers["e"] = now + self._interval_e

    def _timer_f(self, now: float) -> None:
        if self.state in (State.TRYING, State.PROCEEDING):
            self.events.append(TimeoutEvent())
            self._terminate()

    def _timer_k(self, now: float) -> None:
        self._terminate()


class ServerTransaction:
    """§17.2 server side, for the few requests a calling-out UA receives (BYE, re-INVITE, OPTIONS…).

    A retransmitted request gets the last response again. For INVITE, a 2xx is retransmitted with
    T1 doubling up to T2 until the ACK arrives (RFC 6026 Accepted state; §13.3.1.4), 64*T1 at most.
    """

    def __init__(self, request: SipRequest, now: float, *, reliable: bool = False, t1: float = T1) -> None:
        self.request = request
        self.reliable = reliable
        self.t1 = t1
        self.method = request.method
        self.branch = request.top_via.branch
        self.state = State.PROCEEDING if request.method == "INVITE" else State.TRYING
        self.last_response: SipResponse | None = None
        self.outbox: list[SipResponse] = []
        self.acked = False
        self._timers: dict[str, float] = {}
        self._interval_g = t1

    @property
    def key(self) -> tuple[str, str]:
        return self.branch, self.method

    @property
    def terminated(self) -> bool:
        return self.state is State.TERMINATED

    def respond(self, response: SipResponse, now: float) -> None:
        self.last_response = response
        self.outbox.append(response)
        if response.status < 200:
            self.state = State.PROCEEDING
            return
        if self.method == "INVITE":
            self.state = State.ACCEPTED if response.status < 300 else State.COMPLETED
            if not self.reliable:
                self._timers["g"] = now + self._interval_g
            self._timers["h"] = now + 64 * self.t1
        else:
            self.state = State.COMPLETED
            self._timers = {"j": now + (0 if self.reliable else 64 * self.t1)}

    def receive_request(self, request: SipRequest, now: float) -> None:
        """A retransmission of our request, or the ACK of our INVITE's final response."""
        if request.method == "ACK":
            self.acked = True
            if self.state in (State.COMPLETED, State.ACCEPTED):
                self.state = State.CONFIRMED
                self._timers = {"i": now + (0 if self.reliable else T4)}
            return
        if self.last_response is not None and self.state is not State.CONFIRMED:
            self.outbox.append(self.last_response)

    def get_timer(self) -> float | None:
        return min(self._timers.values(), default=None)

    def handle_timer(self, now: float) -> None:
        for name, at in sorted(self._timers.items(), key=lambda kv: kv[1]):
            if at <= now and name in self._timers:
                del self._timers[name]
                if name == "g" and self.state in (State.COMPLETED, State.ACCEPTED):
                    assert self.last_response is not None
                    self.outbox.append(self.last_response)
                    self._interval_g = min(self._interval_g * 2, T2)
                    self._timers["g"] = now + self._interval_g
                elif name in ("h", "i", "j"):
                    self.state = State.TERMINATED
                    self._timers.clear()
