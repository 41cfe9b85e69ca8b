"""Answering-machine detection on the visitor leg (DESIGN §7 "Telephony": outcome ``client_voicemail``).

Sans-I/O: the caller feeds 8 kHz 16-bit little-endian mono PCM (G.711 payloads decoded with the RTP
layer's ``decode``) together with each frame's time since the answer, and reads a ``Verdict`` back. No
clock, no socket, no model: an energy speech-activity detector with an adaptive noise floor, plus a
tone detector for the beep.

The rules, in the order they are checked on every 20 ms frame:

* a steady pure tone (300-3000 Hz, >= 160 ms) is a voicemail beep → ``machine``;
* speech that runs on for more than ``long_speech_s`` (3 s) with no pause of ``pause_s`` in it is a
  recorded greeting → ``machine``;
* a short utterance (<= ``short_speech_s``) followed by ``pause_s`` of silence is a person who said
  "Алло?" and now waits for an answer → ``human``; a longer one must be followed by ``long_pause_s``;
* nothing decided by ``max_s`` (silence, or a mumble) → ``human``: when in doubt the visitor is bridged,
  as a person misjudged is a lost customer while a machine bridged only costs an operator a minute.

Level changes and line noise are handled by judging speech against the quietest frame of the last
two seconds (the noise floor), never against a fixed level alone.
"""

from __future__ import annotations

import math
import operator
from array import array
from collections import deque
from dataclasses import dataclass

HUMAN = "human"
MACHINE = "machine"
UNDECIDED = "undecided"

RATE = 8000
FRAME = 160  # 20 ms, one RTP packet of G.711
FRAME_S = FRAME / RATE


@dataclass(frozen=True)
class Verdict:
    """What the detector thinks; ``at`` is the time since answer (s) when it decided."""

    kind: str
    reason: str = ""
    at: float | None = None

    @property
    def decided(self) -> bool:
        return self.kind != UNDECIDED


@dataclass(frozen=True)
class Thresholds:
    long_speech_s: float = 3.0  # the contract's "continuous speech of more than ~3 s"
    short_speech_s: float = 1.8  # "Да, слушаю" at a slow pace still fits
    pause_s: float = 0.8  # a person waiting for the caller to speak
    long_pause_s: float = 1.0  # after a longer utterance (2-3 s): recorded greetings pause up to ~0.7 s
    max_s: float = 6.0  # nothing decided by then: a person (bridge)
    speech_above_floor_db: float = 9.0
    # Within an utterance a quieter frame still counts (hysteresis): on a noisy line the soft ends of
    # words sink towards the noise and would otherwise open pauses a recorded greeting does not have.
    speech_continues_db: float = 7.5
    speech_min_dbfs: float = -52.0  # below this nothing is speech, however quiet the line
    floor_window_s: float = 2.0
    min_utterance_s: float = 0.1  # shorter bursts (clicks, a cough of noise) are not speech
    beep_min_s: float = 0.16
    beep_purity: float = 0.8  # share of the frame's energy at the tone's frequency
    beep_low_hz: float = 300.0
    beep_high_hz: float = 3000.0


class VoicemailDetector:
    """Feed frames in time order with ``feed``; call ``poll(now)`` when no audio arrives (RTP stopped)."""

    def __init__(self, thresholds: Thresholds | None = None) -> None:
        self.t = thresholds or Thresholds()
        self.verdict = Verdict(UNDECIDED)
        self._frames = 0  # frames judged so far: the time since answer is counted in samples, not summed
        self._pending = array("h")  # samples not yet making a whole frame
        self._energies: deque[float] = deque(maxlen=max(1, round(self.t.floor_window_s / FRAME_S)))
        self._talk_start: float | None = None  # current utterance: first and last speech frame
        self._last_speech = 0.0
        self._speech_frames = 0
        self._tone_frames = 0
        self._tone_hz = 0.0

    @property
    def _now(self) -> float:
        """Time since answer at the end of the last frame judged."""
        return self._frames * FRAME / RATE

    # -- input ---------------------------------------------------------------------------------------

    def feed(self, pcm: bytes, at: float) -> Verdict:
        """``pcm``: samples starting ``at`` seconds after the answer. A jump forward counts as silence."""
        if self.verdict.decided:
            return self.verdict
        if at > self._now + FRAME_S:  # packets lost or not sent (silence suppression)
            del self._pending[:]  # a partial frame before the gap is not worth a frame of its own
            self.poll(at)
            if self.verdict.decided:
                return self.verdict
        samples = array("h")
        samples.frombytes(pcm[: len(pcm) & ~1])
        self._pending.extend(samples)
        while len(self._pending) >= FRAME and not self.verdict.decided:
            frame = self._pending[:FRAME]
            del self._pending[:FRAME]
            self._frame(frame)
        return self.verdict

    def poll(self, now: float) -> Verdict:
        """Advance time to ``now`` with nothing heard (no packets): pauses grow, deadlines pass."""
        while not self.verdict.decided and (self._frames + 1) * FRAME <= now * RATE + 1e-6:
            self._frames += 1
            self._judge(speech=False)
        return self.verdict

    # -- per frame -----------------------------------------------------------------------------------

    def _frame(self, frame: array) -> None:
        energy = sum(map(operator.mul, frame, frame)) / FRAME
        level = 10 * math.log10(energy / 32768**2) if energy > 0 else -120.0
        self._energies.append(level)
        floor = min(self._energies)
        above = self.t.speech_continues_db if self._talk_start is not None else self.t.speech_above_floor_db
        speech = level > max(floor + above, self.t.speech_min_dbfs)
        self._frames += 1
        # The beep is looked for in every audible frame, not only in those above the noise floor: a
        # tone that starts with the answer and never stops IS the floor, yet it is still a beep.
        if level <= self.t.speech_min_dbfs:
            self._tone_frames = 0
        elif self._beep(frame, energy):
            return
        self._judge(speech)

    def _judge(self, speech: bool) -> None:
        now, t = self._now, self.t
        if speech:
            if self._talk_start is None:
                self._talk_start, self._speech_frames = now - FRAME_S, 0
            self._last_speech = now
            self._speech_frames += 1
            if now - self._talk_start > t.long_speech_s:
                self._decide(MACHINE, f"speech for {t.long_speech_s:.0f} s without a pause", now)
                return
        elif self._talk_start is not None:
            silent = now - self._last_speech
            length = self._last_speech - self._talk_start
            if self._speech_frames * FRAME_S < t.min_utterance_s and silent >= t.pause_s:
                self._talk_start = None  # a click or a burst of noise, not a word
            elif length <= t.short_speech_s and silent >= t.pause_s:
                self._decide(HUMAN, f"{length:.1f} s of speech, then {t.pause_s:.1f} s of silence", now)
                return
            elif silent >= t.long_pause_s:
                self._decide(HUMAN, f"{length:.1f} s of speech, then {t.long_pause_s:.1f} s of silence", now)
                return
        if now >= t.max_s:
            self._decide(HUMAN, f"nothing decisive within {t.max_s:.0f} s", now)

    def _beep(self, frame: array, energy: float) -> bool:
        """Count steady pure-tone frames; True once they make a beep (and the verdict is set)."""
        hz = _tone_frequency(frame, energy, self.t.beep_purity)
        if hz is None or not self.t.beep_low_hz <= hz <= self.t.beep_high_hz:
            self._tone_frames = 0
            return False
        if self._tone_frames and abs(hz - self._tone_hz) > 0.03 * self._tone_hz:
            self._tone_frames = 0
        self._tone_frames += 1
        self._tone_hz = hz
        if self._tone_frames * FRAME_S >= self.t.beep_min_s:
            self._decide(MACHINE, f"a {hz:.0f} Hz beep", self._now)
            return True
        return False

    def _decide(self, kind: str, reason: str, at: float) -> None:
        self.verdict = Verdict(kind, reason, round(at, 3))


def _tone_frequency(frame: array, energy: float, purity: float) -> float | None:
    """The frame's frequency if it is (nearly) one sinusoid, else None.

    The frequency comes from zero crossings with hysteresis (noise near zero does not add crossings),
    measured between the first and last crossing with linear interpolation; then one Goertzel filter
    at that frequency tells how much of the frame's energy it holds.
    """
    hysteresis = 0.3 * math.sqrt(energy)
    crossings: list[float] = []
    armed = False
    previous = frame[0]
    for i in range(1, len(frame)):
        sample = frame[i]
        if sample < -hysteresis:
            armed = True
        elif armed and sample >= 0 > previous:
            crossings.append(i - 1 + previous / (previous - sample))
            armed = False
        previous = sample
    if len(crossings) < 3:
        return None
    hz = (len(crossings) - 1) * RATE / (crossings[-1] - crossings[0])
    coefficient = 2 * math.cos(2 * math.pi * hz / RATE)
    s1 = s2 = 0.0
    for sample in frame:
        s1, s2 = sample + coefficient * s1 - s2, s1
    power = s1 * s1 + s2 * s2 - coefficient * s1 * s2
    # A sinusoid of amplitude A over N samples: power (A N / 2)^2, energy per sample A^2 / 2.
    share = power / (len(frame) * len(frame) * energy / 2)
    return hz if share >= purity else None
