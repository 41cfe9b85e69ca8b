"""The fake trunk's fixtures (defined beside the dialer's tests) for the other SIP shell tests too."""

from calls.sip.test_sip_dialer import dialer, trunk  # noqa: F401 - fixtures
