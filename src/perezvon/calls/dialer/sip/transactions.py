"""The transaction table: live SIP transactions by key, where each sends, and their next deadline.

Sans-I/O like the transactions it holds: `drain()` collects what they queued to send (as `Transmit`)
and what they told their user, and forgets the ones that ended. One table serves each outbound call
(its INVITE, CANCEL, BYE and in-dialog server transactions) and one the dialer's out-of-dialog answers.
"""

from __future__ import annotations

from dataclasses import dataclass

from .message import SipRequest, SipResponse
from .transaction import (
    ClientInviteTransaction,
    ClientNonInviteTransaction,
    ClientTransaction,
    Event,
    ServerTransaction,
)

Address = tuple[str, int]
Key = tuple[str, str]  # (Via branch, method)
RELIABLE = ("TCP", "TLS")  # stream transports: no retransmissions (§17.1.1.2)


@dataclass(frozen=True)
class Transmit:
    """One message to put on the wire: to `dest` over `transport` ("UDP", "TCP" or "TLS")."""

    message: SipRequest | SipResponse
    dest: Address
    transport: str


@dataclass
class _Entry:
    tx: ClientTransaction | ServerTransaction
    dest: Address
    transport: str


class TransactionTable:
    def __init__(self) -> None:
        self._entries: dict[tuple[str, Key], _Entry] = {}

    def start_client(self, request: SipRequest, dest: Address, transport: str, now: float) -> ClientTransaction:
        reliable = transport.upper() in RELIABLE
        cls = ClientInviteTransaction if request.method == "INVITE" else ClientNonInviteTransaction
        tx = cls(request, now, reliable=reliable)
        self._entries[("client", tx.key)] = _Entry(tx, dest, transport)
        return tx

    def start_server(self, request: SipRequest, source: Address, transport: str, now: float) -> ServerTransaction:
        tx = ServerTransaction(request, now, reliable=transport.upper() in RELIABLE)
        self._entries[("server", tx.key)] = _Entry(tx, source, transport)
        return tx

    def client(self, key: Key) -> ClientTransaction | None:
        entry = self._entries.get(("client", key))
        return entry.tx if entry is not None else None  # type: ignore[return-value]

    def server(self, key: Key) -> ServerTransaction | None:
        entry = self._entries.get(("server", key))
        return entry.tx if entry is not None else None  # type: ignore[return-value]

    def transport_error(self, dest: Address) -> None:
        """Nothing can be sent to `dest` (a TCP/TLS connection refused): its client transactions fail now."""
        for (side, _), entry in list(self._entries.items()):
            if side == "client" and entry.dest == dest:
                entry.tx.transport_error()  # type: ignore[union-attr]

    def servers(self) -> list[ServerTransaction]:
        return [e.tx for (side, _), e in self._entries.items() if side == "server"]  # type: ignore[misc]

    def get_timer(self) -> float | None:
        return min((at for e in self._entries.values() if (at := e.tx.get_timer()) is not None), default=None)

    def handle_timer(self, now: float) -> None:
        for entry in list(self._entries.values()):
            at = entry.tx.get_timer()
            if at is not None and at <= now:
                entry.tx.handle_timer(now)

    def drain(self) -> tuple[list[Transmit], list[tuple[ClientTransaction, Event]]]:
        """What every transaction queued to send, the client events in order; ended ones dropped."""
        out: list[Transmit] = []
        events: list[tuple[ClientTransaction, Event]] = []
        for key, entry in list(self._entries.items()):
            tx = entry.tx
            messages, tx.outbox = tx.outbox, []
            out.extend(Transmit(m, entry.dest, entry.transport) for m in messages)
            if isinstance(tx, ClientTransaction):
                pending, tx.events = tx.events, []
                events.extend((tx, ev) for ev in pending)
            if tx.terminated:
                del self._entries[key]
        return out, events
