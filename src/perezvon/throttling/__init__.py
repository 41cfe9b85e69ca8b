"""Request protection: per-IP rate limit, per-user and per-phone throttles, the daily API points ledger.

Backed by the ``limits`` library: in-process memory by default, Redis (``PEREZVON_REDIS_URL``) when
several processes must share the counts.
"""

from .guard import Guard, client_ip

__all__ = ["Guard", "client_ip"]
