"""Dialogs (RFC 3261 §12) from the caller's side, and the requests that start and live in them.

Sans-I/O: a `Dialog` holds the identifiers, the route set and the CSeq counters, and builds the
requests (ACK, BYE, …) a UAC sends within it; `new_invite` builds the out-of-dialog INVITE.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from .message import Headers, NameAddr, SipParseError, SipRequest, SipResponse

USER_AGENT = "perezvon"
ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE"


def new_branch() -> str:
    return "z9hG4bK" + secrets.token_hex(8)  # the RFC 3261 magic cookie marks a unique branch


def new_tag() -> str:
    return secrets.token_hex(6)


def via_value(transport: str, host: str, port: int, branch: str) -> str:
    """Our Via: `rport` (RFC 3581) asks for answers to where we sent from, through any NAT; over TLS
    `alias` (RFC 5923) asks the peer to send its own requests back on our connection too, since we
    hold no certificate to accept one."""
    alias = ";alias" if transport.upper() == "TLS" else ""
    return f"SIP/2.0/{transport.upper()} {host}:{port};branch={branch};rport{alias}"


def new_invite(*, target_uri: str, from_uri: str, from_display: str, contact_uri: str, transport: str,
               local_host: str, local_port: int, body: bytes,
               extra: list[tuple[str, str]] | None = None) -> SipRequest:
    headers = Headers()
    headers.add("Via", via_value(transport, local_host, local_port, new_branch()))
    headers.add("Max-Forwards", "70")
    display = f'"{from_display}" ' if from_display else ""
    headers.add("From", f"{display}<{from_uri}>;tag={new_tag()}")
    headers.add("To", f"<{target_uri}>")
    headers.add("Call-ID", f"{secrets.token_hex(12)}@{local_host}")
    headers.add("CSeq", "1 INVITE")
    headers.add("Contact", f"<{contact_uri}>")
    headers.add("Allow", ALLOW)
    headers.add("Supported", "replaces")
    headers.add("User-Agent", USER_AGENT)
    for k, v in extra or []:
        headers.add(k, v)
    headers.add("Content-Type", "application/sdp")
    return SipRequest("INVITE", target_uri, headers, body)


def cancel_for(invite: SipRequest) -> SipRequest:
    """CANCEL (§9.1): same Request-URI, Call-ID, From, To, CSeq number and top Via as the INVITE."""
    headers = Headers()
    headers.add("Via", invite.headers.get_all("Via")[0])
    for route in invite.headers.get_all("Route"):
        headers.add("Route", route)
    headers.add("Max-Forwards", "70")
    headers.add("From", invite.need("From"))
    headers.add("To", invite.need("To"))
    headers.add("Call-ID", invite.call_id)
    headers.add("CSeq", f"{invite.cseq[0]} CANCEL")
    headers.add("User-Agent", USER_AGENT)
    return SipRequest("CANCEL", invite.uri, headers)


def reinvite_with_auth(invite: SipRequest, header: str, value: str) -> SipRequest:
    """The same INVITE with credentials, next CSeq and a new branch (§22.2): a new transaction."""
    headers = Headers()
    cseq = invite.cseq[0] + 1
    for k, v in invite.headers:
        low = k.lower()
        if low in ("authorization", "proxy-authorization"):
            continue
        if low in ("via", "v"):
            sent_by = v.split(";", 1)[0]
            alias = ";alias" if "/TLS " in sent_by.upper() else ""
            v = f"{sent_by};branch={new_branch()};rport{alias}"
        elif low == "cseq":
            v = f"{cseq} INVITE"
        headers.add(k, v)
    headers.add(header, value)
    return SipRequest("INVITE", invite.uri, headers, invite.body)


@dataclass
class Dialog:
    call_id: str
    local_tag: str
    remote_tag: str
    local_uri: str  # From as we send it (without tag)
    remote_uri: str  # To as we send it (without tag)
    remote_target: str  # the peer's Contact URI
    route_set: list[str] = field(default_factory=list)
    local_cseq: int = 1
    remote_cseq: int | None = None
    transport: str = "UDP"
    local_host: str = ""
    local_port: int = 0

    @property
    def key(self) -> tuple[str, str, str]:
        return self.call_id, self.local_tag, self.remote_tag

    @classmethod
    def from_response(cls, invite: SipRequest, response: SipResponse) -> Dialog:
        """The caller's dialog made by a 2xx (or a tagged 1xx) to our INVITE (§12.1.2)."""
        remote = response.to_addr
        local = invite.from_addr
        if not remote.tag:
            raise SipParseError("2xx without a To tag")
        contacts = response.headers.get_all("Contact")
        if not contacts:
            raise SipParseError("2xx without a Contact")
        # The UAC reverses Record-Route to get its route set.
        route_set = list(reversed(response.headers.get_all("Record-Route")))
        via = invite.top_via
        return cls(
            call_id=invite.call_id,
            local_tag=local.tag or "",
            remote_tag=remote.tag,
            local_uri=invite.need("From").split(";tag=")[0],
            remote_uri=response.need("To").split(";tag=")[0],
            remote_target=NameAddr.parse(contacts[0]).uri,
            route_set=route_set,
            local_cseq=invite.cseq[0],
            transport=via.transport,
            local_host=via.host,
            local_port=via.port or 5060,
        )

    def request(self, method: str, *, body: bytes = b"", content_type: str | None = None,
                cseq: int | None = None, extra: list[tuple[str, str]] | None = None) -> SipRequest:
        """An in-dialog request (§12.2.1.1). ACK reuses the INVITE's CSeq number (pass `cseq`)."""
        if cseq is None:
            self.local_cseq += 1
            cseq = self.local_cseq
        uri = self.remote_target
        routes = list(self.route_set)
        if routes and ";lr" not in NameAddr.parse(routes[0]).uri:
            # A strict router (RFC 2543): it becomes the Request-URI, our target goes last.
            uri = NameAddr.parse(routes[0]).uri
            routes = routes[1:] + [f"<{self.remote_target}>"]
        headers = Headers()
        headers.add("Via", via_value(self.transport, self.local_host, self.local_port, new_branch()))
        for route in routes:
            headers.add("Route", route)
        headers.add("Max-Forwards", "70")
        headers.add("From", f"{self.local_uri};tag={self.local_tag}")
        headers.add("To", f"{self.remote_uri};tag={self.remote_tag}")
        headers.add("Call-ID", self.call_id)
        headers.add("CSeq", f"{cseq} {method}")
        headers.add("User-Agent", USER_AGENT)
        for k, v in extra or []:
            headers.add(k, v)
        if body:
            headers.add("Content-Type", content_type or "application/sdp")
        return SipRequest(method, uri, headers, body)

    def accepts(self, request: SipRequest) -> bool:
        """Is this in-dialog request for us, and not an old one (§12.2.2)?"""
        try:
            seq = request.cseq[0]
        except SipParseError:
            return False
        if request.method in ("ACK", "CANCEL"):
            return True
        if self.remote_cseq is not None and seq < self.remote_cseq:
            return False
        self.remote_cseq = seq
        return True
