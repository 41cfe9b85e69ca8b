"""The asyncio edge: SIP over UDP and TCP, and one RTP socket per call leg.

This is the one place that owns sockets. What arrives is parsed here; anything unparsable is logged,
counted and dropped (never raised into the event loop), so a garbage datagram cannot take a call down.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import ssl
from collections.abc import Callable

from .message import SipParseError, SipRequest, SipResponse, StreamFramer, parse_message

log = logging.getLogger(__name__)

Address = tuple[str, int]
MessageHandler = Callable[[SipRequest | SipResponse, Address, str], None]


class UdpTransport(asyncio.DatagramProtocol):
    name = "UDP"

    def __init__(self, on_message: MessageHandler) -> None:
        self._on_message = on_message
        self._transport: asyncio.DatagramTransport | None = None
        self.dropped = 0  # unparsable datagrams, for tests and logs

    async def start(self, host: str, port: int) -> Address:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: self, local_addr=(host, port))
        self._transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("sockname")
        return sock[0], sock[1]

    def datagram_received(self, data: bytes, addr: tuple) -> None:  # type: ignore[override]
        if data in (b"\r\n\r\n", b"\r\n"):  # RFC 5626 keep-alive
            return
        try:
            msg = parse_message(data)
        except SipParseError as exc:
            self.dropped += 1
            log.info("dropped unparsable SIP datagram from %s:%s: %s", addr[0], addr[1], exc)
            return
        try:
            self._on_message(msg, (addr[0], addr[1]), self.name)
        except SipParseError as exc:
            # A message that parsed but lacks what its handler needs (e.g. a bad CSeq in a reply).
            self.dropped += 1
            log.info("dropped SIP message from %s:%s: %s", addr[0], addr[1], exc)
        except Exception:
            # A bug in handling one message must not take down the socket every call depends on.
            self.dropped += 1
            log.exception("failed to handle SIP message from %s:%s", addr[0], addr[1])

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable and friends: the transaction times out on its own.
        log.info("SIP UDP error: %s", exc)

    def send(self, data: bytes, addr: Address) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.sendto(data, addr)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


class _TcpConnection(asyncio.Protocol):
    def __init__(self, owner: TcpTransport, peer: Address | None = None) -> None:
        self.owner = owner
        self.peer = peer
        self.framer = StreamFramer()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self.peer = (peer[0], peer[1])
        self.owner._connections[self.peer] = self

    def data_received(self, data: bytes) -> None:
        assert self.peer is not None
        try:
            frames = self.framer.feed(data)
        except SipParseError as exc:
            log.info("bad SIP stream from %s:%s: %s; closing", self.peer[0], self.peer[1], exc)
            self.owner.dropped += 1
            if self.transport:
                self.transport.close()
            return
        for frame in frames:
            try:
                msg = parse_message(frame, stream=True)
                self.owner._on_message(msg, self.peer, self.owner.name)
            except SipParseError as exc:
                self.owner.dropped += 1
                log.info("dropped SIP message from %s:%s: %s", self.peer[0], self.peer[1], exc)
            except Exception:
                self.owner.dropped += 1
                log.exception("failed to handle SIP message from %s:%s", self.peer[0], self.peer[1])

    def connection_lost(self, exc: Exception | None) -> None:
        if self.peer and self.owner._connections.get(self.peer) is self:
            del self.owner._connections[self.peer]


class TcpTransport:
    """Connections by peer address, opened on first send and reused; a listener for peers' requests."""

    name = "TCP"

    def __init__(self, on_message: MessageHandler, on_error: Callable[[Address], None] | None = None) -> None:
        self._on_message = on_message
        self._on_error = on_error  # told when a connection to an address cannot be made
        self._connections: dict[Address, _TcpConnection] = {}
        self._pending: dict[Address, list[bytes]] = {}
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.dropped = 0

    async def start(self, host: str, port: int) -> Address:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _TcpConnection(self), host, port)
        sock = self._server.sockets[0].getsockname()
        return sock[0], sock[1]

    def send(self, data: bytes, addr: Address) -> None:
        conn = self._connections.get(addr)
        if conn is not None and conn.transport is not None and not conn.transport.is_closing():
            conn.transport.write(data)
            return
        queue = self._pending.setdefault(addr, [])
        queue.append(data)
        if len(queue) == 1:
            task = asyncio.ensure_future(self._connect(addr))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _connect(self, addr: Address) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(lambda: _TcpConnection(self, addr), addr[0], addr[1], **self._tls(addr)),
                5.0,
            )
        except (OSError, TimeoutError) as exc:  # ssl.SSLError (a certificate refused) is an OSError
            log.warning("SIP %s connect to %s:%s failed: %s", self.name, addr[0], addr[1], exc)
            self._pending.pop(addr, None)
            if self._on_error is not None:
                self._on_error(addr)  # the transactions waiting on it fail now, not at timer B
            return
        # Replies come back on this connection, whatever port the peer saw us connect from.
        self._connections[addr] = conn
        for data in self._pending.pop(addr, []):
            assert conn.transport is not None
            conn.transport.write(data)

    def _tls(self, addr: Address) -> dict[str, object]:
        return {}

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for conn in list(self._connections.values()):
            if conn.transport is not None:
                conn.transport.close()
        for task in self._tasks:
            task.cancel()


class TlsTransport(TcpTransport):
    """SIP over TLS (RFC 3261 §26.3.1): client connections only, the trunk's certificate checked.

    We hold no certificate, so we accept no TLS connections: requests from the trunk come back on the
    connection we opened (our Via asks for that with `alias`, RFC 5923). The name checked against the
    certificate is the trunk's host name as configured (`server_names`), else the address itself.
    """

    name = "TLS"

    def __init__(
        self, on_message: MessageHandler, context: ssl.SSLContext, on_error: Callable[[Address], None] | None = None
    ) -> None:
        super().__init__(on_message, on_error)
        self.context = context
        self.server_names: dict[Address, str] = {}

    async def start(self, host: str, port: int) -> Address:
        return host, port

    def _tls(self, addr: Address) -> dict[str, object]:
        return {"ssl": self.context, "server_hostname": self.server_names.get(addr, addr[0])}


def tls_context(*, verify: bool = True, ca_file: str | None = None) -> ssl.SSLContext:
    """The client context for `tls:` trunks: the system's CAs (or `ca_file`), host names checked."""
    context = ssl.create_default_context(cafile=ca_file or None)
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class RtpSocket:
    """One leg's RTP port: hands every datagram to `on_packet`; sends to the negotiated address.

    A plain non-blocking socket watched with `loop.add_reader`, not an asyncio transport: each
    readiness event drains what is queued, and a send that would block is dropped instead of
    buffered (late audio is worse than lost audio). This is the relay's hot path: it roughly halves
    the per-packet cost of an asyncio datagram transport.
    """

    MAX_BATCH = 64  # packets read per wake-up, so one flooded port cannot starve the others

    def __init__(self, sock: socket.socket, on_packet: Callable[[bytes, Address], None]) -> None:
        self.sock = sock
        self.on_packet = on_packet
        self.host, self.port = sock.getsockname()[:2]
        self.send_dropped = 0
        self._loop = asyncio.get_running_loop()
        self._closed = False
        self._loop.add_reader(sock.fileno(), self._read_ready)

    @classmethod
    async def open(
        cls, host: str, on_packet: Callable[[bytes, Address], None], ports: tuple[int, int] | None = None
    ) -> RtpSocket:
        """Bind an RTP port: any free one, or an even one in `ports` (a firewall's media range)."""
        candidates = [0]
        if ports is not None:
            lo, hi = ports
            candidates = list(range(lo + (lo % 2), hi + 1, 2))  # even ports, RTCP's odd neighbour free
            random.shuffle(candidates)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        for port in candidates:
            sock = socket.socket(family, socket.SOCK_DGRAM)
            try:
                sock.bind((host, port))
            except OSError:
                sock.close()
                continue
            sock.setblocking(False)
            return cls(sock, on_packet)
        raise OSError(f"no free RTP port in {ports[0]}-{ports[1]}" if ports else "cannot bind an RTP port")

    def _read_ready(self) -> None:
        recv = self.sock.recvfrom
        on_packet = self.on_packet
        for _ in range(self.MAX_BATCH):
            try:
                data, addr = recv(2048)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                # e.g. ECONNREFUSED after an ICMP port-unreachable for something we sent: the far
                # end's port closed; the call ends by signalling, not here.
                continue
            try:
                on_packet(data, addr)
            except Exception:  # one bad packet must not stop the leg's media
                log.exception("failed to handle an RTP packet from %s:%s", addr[0], addr[1])

    def send(self, data: bytes, addr: Address) -> None:
        try:
            self.sock.sendto(data, addr)
        except (BlockingIOError, InterruptedError):
            self.send_dropped += 1
        except OSError:
            pass  # unreachable for now (ICMP); RTP carries on or the call ends by signalling

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._loop.remove_reader(self.sock.fileno())
            self.sock.close()
