"""A small SIP user agent (RFC 3261) for calling back: a module per layer, sans-I/O below `transport`.

message → transaction → dialog (+ digest, sdp, rtp) → transport (asyncio) → dialer (`SipDialer`).
"""

from .dialer import SipDialer, SipLeg, parse_trunk, ring_result, sip_dialer_from_settings

__all__ = ["SipDialer", "SipLeg", "parse_trunk", "ring_result", "sip_dialer_from_settings"]
