"""The recording of a bridged call: both directions mixed into one mono 8 kHz WAV."""

from __future__ import annotations

import wave
from array import array
from pathlib import Path


class Recorder:
    """Mixes both directions of a bridged call into one mono 8 kHz buffer, placed by RTP timestamp."""

    MAX_SAMPLES = 8000 * 3600 * 4  # four hours; beyond that the recording stops growing

    def __init__(self, start: float) -> None:
        self.start = start
        self.samples = array("h")
        self._bases: dict[int, tuple[int, int]] = {}  # ssrc → (position, timestamp)

    def add(self, now: float, ssrc: int, timestamp: int, pcm: bytes) -> None:
        base = self._bases.get(ssrc)
        if base is None:
            base = (max(0, int((now - self.start) * 8000)), timestamp)
            self._bases[ssrc] = base
        delta = (timestamp - base[1]) & 0xFFFFFFFF
        if delta >= 0x80000000:
            return  # older than the first packet we saw: reordered before the start, skip
        pos = base[0] + delta
        frame = array("h")
        frame.frombytes(pcm[: len(pcm) & ~1])
        end = pos + len(frame)
        if end > self.MAX_SAMPLES:
            return
        if end > len(self.samples):
            self.samples.frombytes(bytes(2 * (end - len(self.samples))))
        buf = self.samples
        for i, s in enumerate(frame):
            v = buf[pos + i] + s
            buf[pos + i] = 32767 if v > 32767 else -32768 if v < -32768 else v

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with wave.open(str(path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(8000)
            w.writeframes(self.samples.tobytes())
