"""Speech synthesis for announcements: espeak-ng renders, sox resamples to 8 kHz 16-bit mono PCM.

Both are Debian packages run as subprocesses (no Python dependency). The same request text is read to
the operator on every redial, so renders are cached per (text, language): in memory (LRU) and, when a
directory is given, on disk across restarts.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import shutil
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from pathlib import Path

from .dialer.base import Audio

log = logging.getLogger(__name__)

VOICES = {"ru": "ru", "en": "en"}
RENDER_TIMEOUT_S = 30.0


class SpeechError(RuntimeError):
    """The synthesiser is missing or failed."""


class SpeechRenderer:
    def __init__(self, *, cache_dir: Path | None = None, max_items: int = 128, espeak: str = "espeak-ng",
                 sox: str = "sox", speed_wpm: int = 150) -> None:
        self.cache_dir = cache_dir
        self.max_items = max_items
        self.espeak = espeak
        self.sox = sox
        self.speed_wpm = speed_wpm
        self.renders = 0  # how many times the synthesiser actually ran (tests check the cache)
        self._memory: OrderedDict[tuple[str, str], Audio] = OrderedDict()
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    async def render(self, text: str, language: str) -> Audio:
        if language not in VOICES:
            raise ValueError(f"language must be one of {sorted(VOICES)}, got {language!r}")
        key = (text, language)
        cached = self._memory.get(key)
        if cached is not None:
            self._memory.move_to_end(key)
            return cached
        # Concurrent calls for the same text wait for one render rather than starting several.
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            cached = self._memory.get(key)
            if cached is None:
                cached = self._from_disk(key) or await self._render(text, language)
                self._remember(key, cached)
        self._locks.pop(key, None)
        return cached

    def _remember(self, key: tuple[str, str], audio: Audio) -> None:
        self._memory[key] = audio
        self._memory.move_to_end(key)
        while len(self._memory) > self.max_items:
            self._memory.popitem(last=False)

    def _disk_path(self, key: tuple[str, str]) -> Path | None:
        if self.cache_dir is None:
            return None
        digest = hashlib.sha256(f"{key[1]}\0{self.speed_wpm}\0{key[0]}".encode()).hexdigest()
        return self.cache_dir / f"{digest}.pcm"

    def _from_disk(self, key: tuple[str, str]) -> Audio | None:
        path = self._disk_path(key)
        if path is None or not path.exists():
            return None
        return Audio(path.read_bytes())

    async def _render(self, text: str, language: str) -> Audio:
        for tool in (self.espeak, self.sox):
            if shutil.which(tool) is None:
                raise SpeechError(f"{tool} is not installed (apt-get install espeak-ng sox)")
        read_fd, write_fd = os.pipe()
        try:
            # Text goes on stdin, so a value starting with "-" is never read as an option.
            espeak = await asyncio.create_subprocess_exec(
                self.espeak, "-v", VOICES[language], "-s", str(self.speed_wpm), "--stdin", "--stdout",
                stdin=asyncio.subprocess.PIPE, stdout=write_fd, stderr=asyncio.subprocess.PIPE)
            # gain -1 keeps the resampler from clipping (TELEPHONY-LAB).
            sox = await asyncio.create_subprocess_exec(
                self.sox, "-q", "-t", "wav", "-", "-t", "raw", "-r", "8000", "-c", "1", "-b", "16",
                "-e", "signed-integer", "-L", "-", "gain", "-1",
                stdin=read_fd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        finally:
            os.close(read_fd)
            os.close(write_fd)
        try:
            (_, e_err), (pcm, s_err) = await asyncio.wait_for(
                asyncio.gather(espeak.communicate(text.encode()), sox.communicate()), RENDER_TIMEOUT_S)
        except TimeoutError:
            for proc in (espeak, sox):
                if proc.returncode is None:
                    proc.kill()
            raise SpeechError("speech rendering timed out") from None
        if espeak.returncode or sox.returncode:
            raise SpeechError(f"speech rendering failed: espeak-ng {espeak.returncode} {e_err[:200]!r}, "
                              f"sox {sox.returncode} {s_err[:200]!r}")
        if not pcm:
            raise SpeechError("speech rendering produced no audio")
        self.renders += 1
        audio = Audio(pcm[: len(pcm) & ~1])
        path = self._disk_path((text, language))
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(audio.pcm)
            tmp.replace(path)  # atomic: a reader never sees half a file
        return audio


_default = SpeechRenderer()


async def render_speech(text: str, language: str) -> Audio:
    """`text` spoken in `language` ("ru" or "en") as 8 kHz 16-bit mono PCM, cached in memory."""
    return await _default.render(text, language)


# -- how the worker voices announcements ------------------------------------------------------------------

SPEECH_CHARS_PER_S = 14.0  # espeak-ng at 150 wpm: the simulated line gets silence this long

Speaker = Callable[[str, str], Awaitable[Audio]]


def silence_for(text: str) -> Audio:
    """Silence as long as reading ``text`` would take: the simulated line needs timing, not sound."""
    seconds = len(text) / SPEECH_CHARS_PER_S
    return Audio(b"\0\0" * int(seconds * 8000))


async def silent_speaker(text: str, language: str) -> Audio:
    return silence_for(text)


def rendered_speaker() -> Speaker:
    """Announcements rendered by espeak-ng (a real line); silence if rendering fails."""

    async def speak(text: str, language: str) -> Audio:
        try:
            return await render_speech(text, language)
        except Exception:  # no espeak-ng, a failed render: the call goes on without the announcement
            log.warning("speech rendering failed; the operator hears silence instead", exc_info=True)
            return silence_for(text)

    return speak
