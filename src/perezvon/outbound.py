"""One place for outbound HTTP to addresses a tenant chose (webhooks): only public addresses are called.

A site's webhook URL is typed by a tenant. Without a check, ``http://169.254.169.254/…`` or
``http://127.0.0.1:6379/`` would make the server call its own cloud metadata, Redis or admin ports, and
the delivery log's ``last_error`` would tell the tenant what answered. So (like healthchecks'
``hc/lib/curl.py``) every host is resolved first and refused when any of its addresses is loopback,
private, link-local, unspecified or otherwise not public; the connection then goes to the address
that was checked (pinned: the URL's host is replaced by it, with the name kept for Host and TLS SNI),
so a DNS answer that changes between the check and the connect cannot rebind it to an inside address.
``allow_private`` (PEREZVON_WEBHOOK_ALLOW_PRIVATE=true) switches the check off for receivers on a LAN.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

RESOLVE_TIMEOUT_S = 5.0
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeURL(ValueError):
    """The URL may not be called: its scheme, its host, or an address the host resolves to."""


class Unresolvable(UnsafeURL):
    """The host does not resolve (now: it may later)."""


def is_public(address: IPAddress) -> bool:
    """A globally routable unicast address (not loopback, private, link-local, unspecified, CGNAT, …)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    return address.is_global and not address.is_multicast


@dataclass(frozen=True)
class Target:
    """Where to connect: the URL with its host replaced by the checked address, and the name it had."""

    url: str
    host_header: str
    hostname: str


def host_of(url: str) -> str:
    """The URL's host:port for a log line, whatever the URL is like."""
    try:
        return urlsplit(url).netloc
    except ValueError:
        return "(not a URL)"


def _split(url: str) -> tuple[str, str, int]:
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # "http://[" is an invalid IPv6 URL
        raise UnsafeURL(f"not a URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeURL(f"only http(s) URLs with a host are called, got {parts.scheme or 'no'} scheme")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise UnsafeURL(f"the port is not valid: {exc}") from None
    return parts.scheme, parts.hostname, port


async def resolve(hostname: str, port: int) -> list[IPAddress]:
    """Every address ``hostname`` resolves to (a literal address is itself); UnsafeURL if none."""
    try:
        return [ipaddress.ip_address(hostname)]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(loop.getaddrinfo(hostname, port, type=socket.SOCK_STREAM), RESOLVE_TIMEOUT_S)
    except (OSError, TimeoutError, UnicodeError) as exc:
        raise Unresolvable(f"{hostname} does not resolve ({type(exc).__name__})") from None
    addresses = []
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise Unresolvable(f"{hostname} does not resolve")
    return addresses


async def check_url(url: str, *, allow_private: bool = False) -> Target:
    """The pinned target for ``url``, or UnsafeURL saying why it may not be called."""
    scheme, hostname, port = _split(url)
    if allow_private:
        return Target(url=url, host_header="", hostname=hostname)
    addresses = await resolve(hostname, port)
    inside = [a for a in addresses if not is_public(a)]
    if inside:
        # The address itself is not named: the message reaches the tenant, who must not map our network.
        raise UnsafeURL(
            f"{hostname} resolves to a loopback, private, link-local or otherwise non-public address "
            "(the server's operator can allow such receivers with PEREZVON_WEBHOOK_ALLOW_PRIVATE=true)"
        )
    parts = urlsplit(url)
    pinned = addresses[0]
    netloc = f"[{pinned}]" if pinned.version == 6 else str(pinned)
    if parts.port is not None:
        netloc += f":{parts.port}"
    host_header = parts.netloc.rsplit("@", 1)[-1]
    return Target(
        url=urlunsplit((scheme, netloc, parts.path, parts.query, "")), host_header=host_header, hostname=hostname
    )
