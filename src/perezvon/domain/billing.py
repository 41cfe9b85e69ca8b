"""Minutes accounting (DESIGN §4): bridged time is billed per started minute. Pure arithmetic.

* ``billed_seconds``: the bridged talk time in whole seconds, rounded up (0 s bridged stays 0);
* ``billed_minutes``: ceil(billed_seconds / 60) — 1 s → 1 minute, 60 s → 1, 61 s → 2;
* ``spend``: the balance never goes below 0; what could not be paid is simply not taken (the site is
  then at zero and stops accepting new requests until topped up).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Clock arithmetic gives 60.000000001 for a call of exactly a minute; that must not start minute two.
_FLOAT_SLACK_S = 1e-3


def billed_seconds(bridged_seconds: float) -> int:
    """Whole seconds billed for a bridge that lasted ``bridged_seconds`` (negative or zero → 0)."""
    if bridged_seconds <= _FLOAT_SLACK_S:
        return 0
    return math.ceil(bridged_seconds - _FLOAT_SLACK_S)


def billed_minutes(seconds: int) -> int:
    """Started minutes in ``seconds`` of bridged time."""
    if seconds <= 0:
        return 0
    return -(-seconds // 60)


@dataclass(frozen=True)
class Charge:
    minutes: int  # what the call cost
    spent: int  # what was taken from the balance (≤ minutes: the balance floors at 0)
    balance_after: int


def spend(balance: int, minutes: int) -> Charge:
    """Take ``minutes`` from ``balance``, never below zero."""
    spent = max(0, min(balance, minutes))
    return Charge(minutes=max(0, minutes), spent=spent, balance_after=max(0, balance - spent))
