"""A small SIP user agent (RFC 3261) for calling back: a module per layer, sans-I/O below the shell.

message → transaction → transactions (table) → dialog (+ digest, sdp, rtp) → call (`OutboundCall`,
the sans-I/O rules of one outbound call) → transport, leg and dialer (the asyncio shell: `SipDialer`).
Beside them: trunk (config text), relay (RTP between bridged legs), recorder (the call's WAV).
This package imports only the dialer interface (`..base`); `calls/lines.py` builds it from settings.
"""

from .call import OutboundCall, ring_result
from .dialer import SipDialer
from .leg import SipLeg
from .transport import tls_context
from .trunk import parse_bind, parse_trunk

__all__ = ["OutboundCall", "SipDialer", "SipLeg", "parse_bind", "parse_trunk", "ring_result", "tls_context"]
