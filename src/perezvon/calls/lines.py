"""The telephone lines the settings describe: the SIP dialer built from `Settings`.

Kept outside the SIP package so that package knows the dialer interface and nothing else of ours.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..settings import Settings
from .dialer.sip import SipDialer, parse_bind, parse_trunk, tls_context


def trunk_options(settings: Settings) -> dict[str, Any]:
    """The environment's trunk choices besides its address: what a site's own trunk starts from."""
    return {
        "username": settings.sip_user,
        "password": settings.sip_password,
        "caller": settings.sip_caller,
        "caller_id": settings.sip_caller_id,
        "caller_display": settings.sip_caller_display,
        "assert_identity": settings.sip_assert_identity,
        "srtp": settings.sip_srtp,
    }


def sip_dialer_from_settings(settings: Settings) -> SipDialer:
    """The dialer for `PEREZVON_DIALER=sip`: default trunk, credentials and addresses from settings."""
    trunk = None
    if settings.sip_trunk:  # direct media is each trunk's own choice, not inherited by a site's trunk
        trunk = parse_trunk(settings.sip_trunk, **trunk_options(settings), direct_media=settings.sip_direct_media)
    host, port = parse_bind(settings.sip_bind)
    return SipDialer(
        trunk,
        bind_host=host,
        bind_port=port,
        recordings_dir=Path(settings.recordings_dir) if settings.recordings_dir else None,
        rtp_ports=settings.sip_rtp_ports,
        public_address=settings.sip_public_address,
        tls=tls_context(verify=settings.sip_tls_verify, ca_file=settings.sip_tls_ca_file),
    )
