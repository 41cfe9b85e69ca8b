"""The telephone lines the settings describe: the SIP dialer built from `Settings`.

Kept outside the SIP package so that package knows the dialer interface and nothing else of ours.
"""

from __future__ import annotations

from pathlib import Path

from ..settings import Settings
from .dialer.sip import SipDialer, parse_bind, parse_trunk


def sip_dialer_from_settings(settings: Settings) -> SipDialer:
    """The dialer for `PEREZVON_DIALER=sip`: default trunk, credentials and bind address from settings."""
    trunk = None
    if settings.sip_trunk:
        trunk = parse_trunk(
            settings.sip_trunk, username=settings.sip_user, password=settings.sip_password, caller=settings.sip_caller
        )
    host, port = parse_bind(settings.sip_bind)
    return SipDialer(
        trunk,
        bind_host=host,
        bind_port=port,
        recordings_dir=Path(settings.recordings_dir) if settings.recordings_dir else None,
        rtp_ports=settings.sip_rtp_ports,
    )
