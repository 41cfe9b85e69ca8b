"""Rendering announcements with espeak-ng + sox (skipped where they are not installed)."""

from __future__ import annotations

import asyncio
import shutil
import struct
from pathlib import Path

import pytest

from perezvon.calls.speech import SpeechError, SpeechRenderer, render_speech

needs_tools = pytest.mark.skipif(
    shutil.which("espeak-ng") is None or shutil.which("sox") is None,
    reason="espeak-ng and sox are not installed (apt-get install espeak-ng sox)",
)


def peak(pcm: bytes) -> int:
    return max(abs(s) for s in struct.unpack(f"<{len(pcm) // 2}h", pcm))


@needs_tools
@pytest.mark.parametrize(("language", "text"), [("en", "Callback request from the site. Name: Ivan."),
                                                ("ru", "Заявка на обратный звонок с сайта. Имя: Иван.")])
async def test_renders_8khz_16bit_speech(language: str, text: str) -> None:
    audio = await SpeechRenderer().render(text, language)
    assert audio.rate == 8000 and len(audio.pcm) % 2 == 0
    assert 1.5 < audio.seconds < 8
    assert 3000 < peak(audio.pcm) < 32767  # audible, and gain -1 kept it from clipping


@needs_tools
async def test_same_text_is_rendered_once_even_concurrently() -> None:
    renderer = SpeechRenderer()
    results = await asyncio.gather(*(renderer.render("Name: Ivan.", "en") for _ in range(5)))
    assert renderer.renders == 1
    assert all(r is results[0] for r in results)
    await renderer.render("Name: Ivan.", "ru")  # another language is another render
    assert renderer.renders == 2


@needs_tools
async def test_lru_evicts_the_oldest() -> None:
    renderer = SpeechRenderer(max_items=1)
    await renderer.render("One.", "en")
    await renderer.render("Two.", "en")
    await renderer.render("One.", "en")
    assert renderer.renders == 3


@needs_tools
async def test_disk_cache_survives_a_new_renderer(tmp_path: Path) -> None:
    first = await SpeechRenderer(cache_dir=tmp_path).render("Name: Ivan.", "en")
    second_renderer = SpeechRenderer(cache_dir=tmp_path)
    again = await second_renderer.render("Name: Ivan.", "en")
    assert again.pcm == first.pcm and second_renderer.renders == 0
    assert len(list(tmp_path.glob("*.pcm"))) == 1


@needs_tools
async def test_text_that_looks_like_an_option_is_spoken_not_parsed() -> None:
    audio = await SpeechRenderer().render("--help -v", "en")
    assert audio.seconds > 0.3


@needs_tools
async def test_module_level_helper() -> None:
    assert (await render_speech("Test.", "en")).seconds > 0.2


async def test_missing_synthesiser_is_a_speech_error() -> None:
    with pytest.raises(SpeechError, match="not installed"):
        await SpeechRenderer(espeak="no-such-espeak-binary").render("x", "en")


async def test_unknown_language_is_refused() -> None:
    with pytest.raises(ValueError, match="language"):
        await SpeechRenderer().render("x", "de")
