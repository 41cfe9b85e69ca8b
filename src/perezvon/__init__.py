"""perezvon: a self-hosted callback-request service with a Calltouch-compatible JavaScript API."""

__version__ = "0.1.0"
