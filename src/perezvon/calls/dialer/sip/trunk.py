"""The trunk settings' text forms (``udp:HOST:PORT``, where to listen), and how a call presents itself."""

from __future__ import annotations

from typing import Any

from ..base import Trunk
from .message import SipParseError, split_hostport


def parse_trunk(spec: str, **options: Any) -> Trunk:
    """``udp:HOST:PORT`` / ``tcp:…`` / ``tls:…`` (also ``HOST``, ``HOST:PORT``, ``[v6]:PORT``) → Trunk.

    `options` are the other `Trunk` fields (username, password, caller, caller_id, srtp, …).
    """
    text = spec.strip()
    transport = "udp"
    head, sep, rest = text.partition(":")
    if sep and head.lower() in ("udp", "tcp", "tls"):
        transport, text = head.lower(), rest
    elif sep and head.lower() in ("sip", "sips"):
        raise ValueError(f"trunk {spec!r}: write udp:HOST:PORT, tcp:HOST:PORT or tls:HOST:PORT, not a SIP URI")
    try:
        host, port = split_hostport(text)
    except SipParseError as exc:
        raise ValueError(f"trunk {spec!r}: {exc}") from None
    if not host or any(c in host for c in " /@;"):
        raise ValueError(f"trunk {spec!r}: bad host {host!r}")
    return Trunk(
        host=host,
        port=port or (5061 if transport == "tls" else 5060),
        transport=transport,
        **options,
    )


def parse_bind(spec: str) -> tuple[str, int]:
    """``HOST:PORT`` to listen on (port 0: any free one); default 127.0.0.1:0."""
    host, _, port_s = (spec or "127.0.0.1:0").strip().rpartition(":")
    host = host.strip("[]") or "0.0.0.0"
    if not port_s.isdigit() or int(port_s) > 65535:
        raise ValueError(f"SIP bind address {spec!r}: want HOST:PORT")
    return host, int(port_s)


def from_identity(trunk: Trunk, calling_number: str | None) -> tuple[str, str]:
    """(display name, user part) of our From: the trunk's caller, or a number we call on behalf of.

    Where the call is made for someone (the operator's leg shows the visitor), the trunk's
    `caller_id` says whether that number goes in the display name (the user part stays the trunk's
    caller, which every trunk accepts) or in the user part (for trunks that let us set it).
    """
    caller = trunk.caller or trunk.username or "perezvon"
    if not calling_number:
        return "", caller
    if trunk.caller_id == "user":
        return "", calling_number
    display = trunk.caller_display.format(number=calling_number)
    return display.replace("\\", "").replace('"', ""), caller
