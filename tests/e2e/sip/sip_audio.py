"""Audio checks for recordings, in pure Python (the project has no numpy)."""

from __future__ import annotations

import math
import struct
import wave
from pathlib import Path


def read_wav(path: Path) -> list[int]:
    with wave.open(str(path), "rb") as w:
        assert (w.getsampwidth(), w.getnchannels()) == (2, 1), path
        frames = w.readframes(w.getnframes())
    return list(struct.unpack(f"<{len(frames) // 2}h", frames))


def goertzel_power(samples: list[int], freq: float, rate: int = 8000) -> float:
    coeff = 2 * math.cos(2 * math.pi * freq / rate)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = x + coeff * s1 - s2, s1
    return s1 * s1 + s2 * s2 - coeff * s1 * s2


def tone_share(samples: list[int], freq: float, rate: int = 8000) -> float:
    """Share of the window's energy at `freq` (1.0 for a pure tone, ~0 for speech or another tone)."""
    energy = sum(x * x for x in samples)
    if energy == 0:
        return 0.0
    return 2 * goertzel_power(samples, freq, rate) / (len(samples) * energy)


def windows(samples: list[int], seconds: float = 0.5, rate: int = 8000) -> list[list[int]]:
    n = int(seconds * rate)
    return [samples[i : i + n] for i in range(0, len(samples) - n + 1, n)]


def envelope(samples: list[int], frame: int = 160) -> list[float]:
    return [
        math.sqrt(sum(x * x for x in samples[i : i + frame]) / frame) for i in range(0, len(samples) - frame + 1, frame)
    ]


def best_correlation(a: list[float], b: list[float], max_lag: int = 50) -> float:
    """Highest Pearson correlation of envelope b within a, over lags 0..max_lag frames."""
    best = -1.0
    n = len(b)
    for lag in range(0, max(1, min(max_lag, len(a) - n) + 1)):
        seg = a[lag : lag + n]
        if len(seg) < n:
            break
        ma, mb = sum(seg) / n, sum(b) / n
        cov = sum((x - ma) * (y - mb) for x, y in zip(seg, b, strict=True))
        va = math.sqrt(sum((x - ma) ** 2 for x in seg))
        vb = math.sqrt(sum((y - mb) ** 2 for y in b))
        if va and vb:
            best = max(best, cov / (va * vb))
    return best
