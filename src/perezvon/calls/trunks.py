"""A site's own SIP trunk, from its settings row to the dialer's ``Trunk``."""

from __future__ import annotations

from typing import Any

from .dialer.base import Trunk


def trunk_of_site(site: dict[str, Any] | None) -> Trunk | None:
    """A site's own trunk (camelCase JSON in ``sites.trunk``); None: the dialer's default."""
    raw = (site or {}).get("trunk")
    if not raw or not raw.get("host"):
        return None
    return Trunk(
        host=raw["host"],
        port=int(raw.get("port") or 5060),
        transport=raw.get("transport") or "udp",
        username=raw.get("username") or "",
        password=raw.get("password") or "",
        caller=raw.get("caller") or "",
        number_format=raw.get("numberFormat") or "{number}",
        caller_id=raw.get("callerId") or "display",
        assert_identity=bool(raw.get("assertIdentity")),
        srtp=raw.get("srtp") or "off",
        direct_media=bool(raw.get("directMedia")),
    )
