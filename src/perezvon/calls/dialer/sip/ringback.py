"""The ringback tone a caller hears while the far end rings, in the cadence their country uses.

Played to the operator while the visitor's phone rings when the visitor's side sends no early media
(a 183 with SDP). Frequencies and cadences from ITU-T E.180 (the 1998 supplement of national tones).
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from functools import lru_cache

from ..base import Audio

RATE = 8000
LEVEL = 0.25 * 32767  # about -15 dBm0 per the sum of tones: audible, never clipping


@dataclass(frozen=True)
class Cadence:
    freqs: tuple[float, ...]  # summed sine tones (Hz)
    pattern: tuple[tuple[float, float], ...]  # (on, off) seconds, repeated


ETSI = Cadence((425.0,), ((1.0, 4.0),))  # most of Europe and the default
CADENCES: dict[str, Cadence] = {
    # Russia and the CIS networks built to the same standard: 425 Hz, 0.8 s on, 3.2 s off.
    **dict.fromkeys(
        ("RU", "KZ", "BY", "UA", "UZ", "KG", "TJ", "AM", "AZ", "GE", "MD"), Cadence((425.0,), ((0.8, 3.2),))
    ),
    **dict.fromkeys(("US", "CA"), Cadence((440.0, 480.0), ((2.0, 4.0),))),  # North American plan
    **dict.fromkeys(("GB", "IE"), Cadence((400.0, 450.0), ((0.4, 0.2), (0.4, 2.0)))),
    "FR": Cadence((440.0,), ((1.5, 3.5),)),
}


def cadence_of(country: str) -> Cadence:
    return CADENCES.get(country.upper(), ETSI)


@lru_cache(maxsize=16)
def ringback_period(country: str) -> Audio:
    """One period of the country's ringback (tone then silence): play it in a loop."""
    cadence = cadence_of(country)
    samples: list[int] = []
    for on, off in cadence.pattern:
        n_on = round(on * RATE)
        scale = LEVEL / len(cadence.freqs)
        samples += (
            round(scale * sum(math.sin(2 * math.pi * f * i / RATE) for f in cadence.freqs)) for i in range(n_on)
        )
        samples += [0] * round(off * RATE)
    return Audio(struct.pack(f"<{len(samples)}h", *samples))
