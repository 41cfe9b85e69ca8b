"""The trunk settings' text forms: where to send calls (``udp:HOST:PORT``) and where to listen."""

from __future__ import annotations

from ..base import Trunk
from .message import SipParseError, split_hostport


def parse_trunk(
    spec: str, *, username: str = "", password: str = "", caller: str = "", number_format: str = "{number}"
) -> Trunk:
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
    return Trunk(
        host=host,
        port=port or 5060,
        transport=transport,
        username=username,
        password=password,
        caller=caller,
        number_format=number_format,
    )


def parse_bind(spec: str) -> tuple[str, int]:
    """``HOST:PORT`` to listen on (port 0: any free one); default 127.0.0.1:0."""
    host, _, port_s = (spec or "127.0.0.1:0").strip().rpartition(":")
    host = host.strip("[]") or "0.0.0.0"
    if not port_s.isdigit() or int(port_s) > 65535:
        raise ValueError(f"SIP bind address {spec!r}: want HOST:PORT")
    return host, int(port_s)
