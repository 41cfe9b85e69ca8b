"""The dialer interface the callback engine talks to.

A dialer makes call legs. The engine rings the operator leg, plays the announcement to it, rings the
visitor leg, then asks the dialer to bridge the two until either side hangs up. Everything is async and
every wait has a timeout, so a dead peer never hangs a worker.
"""

from __future__ import annotations

import abc
import asyncio
import enum
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path


class RingResult(enum.Enum):
    """How ringing a leg ended."""

    ANSWERED = "answered"
    BUSY = "busy"  # 486/600
    NO_ANSWER = "no_answer"  # ring timeout (we sent CANCEL), 408, 480
    REJECTED = "rejected"  # 403, 603: declined
    INVALID_NUMBER = "invalid_number"  # 404, 484, 604: no such number
    UNAVAILABLE = "unavailable"  # 5xx, 3xx, other 4xx/6xx, trunk unreachable
    ERROR = "error"  # our side failed (a challenge we cannot answer: wrong or no credentials)


@dataclass(frozen=True)
class Audio:
    """Mono 16-bit little-endian PCM at 8 kHz: what a G.711 leg carries."""

    pcm: bytes
    rate: int = 8000

    @property
    def seconds(self) -> float:
        return len(self.pcm) / 2 / self.rate


@dataclass(frozen=True)
class Trunk:
    """Where and how to place calls (a site's own trunk, else the environment's default)."""

    host: str
    port: int = 5060
    transport: str = "udp"  # udp | tcp | tls
    username: str = ""
    password: str = ""
    caller: str = ""  # the From number
    number_format: str = "{number}"  # e.g. "+{number}" or "8{national}"
    # How a leg dialled on someone's behalf (the operator's, for a visitor) shows that number:
    # "display": `"Callback 79001234567" <sip:CALLER@trunk>` (any trunk passes it); "user":
    # `<sip:79001234567@trunk>` (the trunk must allow a From it did not assign).
    caller_id: str = "display"
    caller_display: str = "Callback {number}"
    assert_identity: bool = False  # also send P-Asserted-Identity (RFC 3325) with the shown number
    srtp: str = "off"  # off | optional (offer SDES keys, accept plain RTP) | required (RTP/SAVP only)
    # The trunk lets the two far ends of a bridged call send media to each other (re-INVITEs pointing
    # each at the other), so the bridge relays nothing; used only when the call is not recorded.
    direct_media: bool = False

    def format_number(self, number: str) -> str:
        return self.number_format.format(number=number, national=number[1:])


class DialerError(Exception):
    """The dialer could not do what was asked (not a peer's answer: those are RingResult)."""


class CallLeg(abc.ABC):
    """One outbound call to one number."""

    number: str
    answered_at: datetime | None = None
    ended_at: datetime | None = None

    @abc.abstractmethod
    async def ring(self, timeout: float, *, ringback_to: CallLeg | None = None, country: str = "") -> RingResult:
        """Dial and wait until answered or failed; on timeout cancel the call and answer NO_ANSWER.

        `ringback_to` (an answered leg: the operator) hears what a caller would while this one rings:
        the far end's early media where it sends some, else a ringback tone in `country`'s cadence.
        """

    @abc.abstractmethod
    async def play(self, audio: Audio) -> None:
        """Send audio to this leg and return when it has been played (or the leg ended)."""

    @abc.abstractmethod
    async def read_digit(self, timeout: float) -> str | None:
        """The next DTMF key pressed on this leg (RFC 4733), or None after timeout or hang-up."""

    def listen(self, hear: Callable[[bytes, float], None] | None) -> bool:
        """Hand each audio frame this leg receives to ``hear(pcm, at)`` until called again with None.

        ``pcm`` is 16-bit 8 kHz PCM, ``at`` the frame's time in seconds since ``listen`` was called
        (from the RTP timestamps, so lost packets show as a gap). False if the leg carries no audio
        the engine could hear (the simulated line): then nothing is screened.
        """
        return False

    # Set by the leg when the call is over, whoever ended it.
    _ended: asyncio.Event

    async def wait_ended(self, timeout: float | None = None) -> bool:
        """Wait for the call to end (either side); True if it did within timeout."""
        try:
            await asyncio.wait_for(self._ended.wait(), timeout)
        except TimeoutError:
            return False
        return True

    @abc.abstractmethod
    async def hangup(self) -> None:
        """End the leg (BYE when answered, CANCEL while ringing); safe to call twice."""

    @property
    def is_ended(self) -> bool:
        return self.ended_at is not None


class Dialer(abc.ABC):
    """Makes legs and bridges them."""

    @abc.abstractmethod
    async def start(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    def leg(self, number: str, trunk: Trunk | None = None, *, calling_number: str | None = None) -> CallLeg:
        """A leg to number, not yet dialled; its phone shows `calling_number` (None: the trunk's caller)."""

    @abc.abstractmethod
    async def bridge(self, a: CallLeg, b: CallLeg, record_to: Path | None = None) -> None:
        """Relay media both ways until either side hangs up, then hang up the other."""
