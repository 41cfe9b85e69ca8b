"""Screening the visitor's side before the bridge: is it a person or an answering machine? (DESIGN §7)

The asyncio side of `media.voicemail`: the leg hands its received frames to the detector; when no
packet comes, time still moves on (the detector's `poll`), so a silent line is decided on time too.
"""

from __future__ import annotations

import asyncio

from .dialer.base import CallLeg
from .media.voicemail import HUMAN, Verdict, VoicemailDetector

# Packets are judged by their RTP time; the wall clock only fills in silence for packets that did not
# come. It lags by this much, so a packet a little late through the network is not counted as silence.
POLL_LAG_S = 0.1
POLL_EVERY_S = 0.1


async def screen(leg: CallLeg, detector: VoicemailDetector | None = None) -> Verdict:
    """Listen to a just-answered leg until the detector decides (at most ~6 s of audio).

    A leg that carries no audio (the simulated line) is a person at once; so is one that hangs up
    while we listen (there is nothing to bridge or to redial as a machine).
    """
    detector = detector or VoicemailDetector()
    decided = asyncio.Event()

    def hear(pcm: bytes, at: float) -> None:
        if detector.feed(pcm, at).decided:
            decided.set()

    loop = asyncio.get_running_loop()
    started = loop.time()
    if not leg.listen(hear):
        return Verdict(HUMAN, "the line carries no audio to screen", 0.0)
    try:
        while not decided.is_set() and not leg.is_ended:
            try:
                await asyncio.wait_for(decided.wait(), POLL_EVERY_S)
            except TimeoutError:
                if detector.poll(loop.time() - started - POLL_LAG_S).decided:
                    break
    finally:
        leg.listen(None)
    if not detector.verdict.decided:
        return Verdict(HUMAN, "hung up while screened", round(loop.time() - started, 3))
    return detector.verdict

