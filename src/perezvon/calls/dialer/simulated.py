"""The simulated line (DESIGN §5): for the demo and for tests that need no telephony.

A number ending in 01 never answers, one ending in 02 is busy, any other answers after ``ring_s``
seconds and, once bridged, talks for ``talk_s`` seconds before the visitor hangs up.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from .base import Audio, CallLeg, Dialer, RingResult, Trunk


class SimulatedLeg(CallLeg):
    def __init__(
        self, number: str, ring_s: float, talk_s: float, speed: float, calling_number: str | None = None
    ) -> None:
        self.number = number
        self.calling_number = calling_number
        self._ring_s = ring_s
        self._talk_s = talk_s
        self._speed = speed
        self._ended = asyncio.Event()
        self.answered_at = None
        self.ended_at = None
        self.played: list[Audio] = []

    async def ring(self, timeout: float, *, ringback_to: CallLeg | None = None, country: str = "") -> RingResult:
        if self.number.endswith("02"):
            await asyncio.sleep(min(0.2, self._ring_s))
            self._end()
            return RingResult.BUSY
        if self.number.endswith("01") or self._ring_s >= timeout:
            await asyncio.sleep(timeout)
            self._end()
            return RingResult.NO_ANSWER
        await asyncio.sleep(self._ring_s)
        self.answered_at = datetime.now(UTC)
        return RingResult.ANSWERED

    async def play(self, audio: Audio) -> None:
        self.played.append(audio)
        if not self.is_ended:
            await asyncio.sleep(audio.seconds * self._speed)

    async def read_digit(self, timeout: float) -> str | None:
        # The simulated operator accepts at once.
        return None if self.is_ended else "1"

    async def hangup(self) -> None:
        self._end()

    def _end(self) -> None:
        if self.ended_at is None:
            self.ended_at = datetime.now(UTC)
        self._ended.set()

    async def talk(self) -> None:
        """The visitor talks for talk_s, then hangs up (unless the other side did first)."""
        await self.wait_ended(self._talk_s)
        self._end()


class SimulatedDialer(Dialer):
    def __init__(self, ring_s: float = 1.0, talk_s: float = 5.0, speed: float = 1.0) -> None:
        self.ring_s = ring_s
        self.talk_s = talk_s
        # speed scales announcement playback time (0 plays instantly): tests and benchmarks use 0.
        self.speed = speed
        self.legs: list[SimulatedLeg] = []

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        for leg in self.legs:
            await leg.hangup()

    def leg(self, number: str, trunk: Trunk | None = None, *, calling_number: str | None = None) -> SimulatedLeg:
        leg = SimulatedLeg(number, self.ring_s, self.talk_s, self.speed, calling_number)
        self.legs.append(leg)
        if len(self.legs) > 1000:  # keep memory flat in long runs
            self.legs = [x for x in self.legs if not x.is_ended]
        return leg

    async def bridge(self, a: CallLeg, b: CallLeg, record_to: Path | None = None) -> None:
        visitor_talk = asyncio.ensure_future(b.talk()) if isinstance(b, SimulatedLeg) else None
        ended_a = asyncio.ensure_future(a.wait_ended())
        ended_b = asyncio.ensure_future(b.wait_ended())
        await asyncio.wait({ended_a, ended_b}, return_when=asyncio.FIRST_COMPLETED)
        for task in (ended_a, ended_b, visitor_talk):
            if task is not None:
                task.cancel()
        await a.hangup()
        await b.hangup()
