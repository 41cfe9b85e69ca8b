"""Voicemail detection on generated audio: espeak-ng speech and synthetic tones, rendered into tmp_path.

Times in these tests are sample times (seconds of audio since the answer), never the wall clock.
"""

from __future__ import annotations

import asyncio
import math
import random
import re
import shutil
from array import array
from pathlib import Path

import pytest

from perezvon.calls.dialer.sip.rtp import decode, encode
from perezvon.calls.dialer.sip.sdp import PCMA
from perezvon.calls.media.voicemail import FRAME, HUMAN, MACHINE, RATE, UNDECIDED, VoicemailDetector
from perezvon.calls.speech import SpeechRenderer

needs_tools = pytest.mark.skipif(
    shutil.which("espeak-ng") is None or shutil.which("sox") is None,
    reason="espeak-ng and sox are not installed (apt-get install espeak-ng sox)",
)

GREETING_RU = "Здравствуйте, вы позвонили Ивану Петрову. Сейчас я не могу ответить, оставьте сообщение после сигнала."


def speak(tmp: Path, text: str, language: str, speed: int = 160) -> array:
    """The product's own renderer (espeak-ng → sox, 8 kHz) into tmp, espeak's edge silences trimmed."""
    audio = asyncio.run(SpeechRenderer(cache_dir=tmp, speed_wpm=speed).render(text, language))
    samples = array("h")
    samples.frombytes(audio.pcm)
    loud = [i for i, s in enumerate(samples) if abs(s) > 300]
    return samples[loud[0] : loud[-1] + 1]


def silence(seconds: float) -> array:
    return array("h", bytes(int(seconds * RATE) * 2))


def tone(hz: float, seconds: float, amplitude: int = 8000) -> array:
    return array("h", (int(amplitude * math.sin(2 * math.pi * hz * i / RATE)) for i in range(int(seconds * RATE))))


def with_noise(samples: array, rms: float, seed: int = 1) -> array:
    rng = random.Random(seed)
    return array("h", (max(-32768, min(32767, int(s + rng.gauss(0, rms)))) for s in samples))


def scaled(samples: array, db: float) -> array:
    gain = 10 ** (db / 20)
    return array("h", (int(s * gain) for s in samples))


def run(detector: VoicemailDetector, samples: array, chunk: int = FRAME) -> None:
    """Feed as an RTP leg would: consecutive chunks, each with its time since the answer."""
    data = samples.tobytes()
    for i in range(0, len(data), chunk * 2):
        detector.feed(data[i : i + chunk * 2], i / 2 / RATE)
    detector.poll(len(samples) / RATE)


def decide(*parts: array, chunk: int = FRAME) -> VoicemailDetector:
    detector = VoicemailDetector()
    audio = array("h")
    for part in parts:
        audio.extend(part)
    run(detector, audio, chunk)
    return detector


@pytest.fixture(scope="module")
def voices(tmp_path_factory: pytest.TempPathFactory) -> dict[str, array]:
    if shutil.which("espeak-ng") is None or shutil.which("sox") is None:
        pytest.skip("espeak-ng and sox are not installed")
    tmp = tmp_path_factory.mktemp("voices")
    return {
        "allo": speak(tmp, "Алло?", "ru"),
        "slushayu": speak(tmp, "Да, слушаю.", "ru", 130),
        "hello": speak(tmp, "Hello?", "en"),
        "talk": speak(tmp, "Hello, who is this? Go ahead, I am listening.", "en"),
        "greeting_ru": speak(tmp, GREETING_RU, "ru"),
        "greeting_en": speak(
            tmp,
            "Hi, you've reached John Smith. I can't take your call right now, please leave a message after the tone.",
            "en",
            120,
        ),
        "short_ru": speak(tmp, "Оставьте сообщение.", "ru"),
    }


@needs_tools
@pytest.mark.parametrize("word", ["allo", "slushayu", "hello"])
def test_a_short_word_then_waiting_is_a_person(voices: dict[str, array], word: str) -> None:
    detector = decide(silence(0.4), voices[word], silence(4))
    assert detector.verdict.kind == HUMAN
    assert "silence" in detector.verdict.reason
    # Decided at the end of the pause, well before the 6 s deadline: the operator is not kept waiting.
    assert detector.verdict.at < 0.4 + len(voices[word]) / RATE + 1.1


@needs_tools
def test_a_person_who_goes_on_talking_after_the_pause_is_still_a_person(voices: dict[str, array]) -> None:
    detector = decide(silence(0.3), voices["hello"], silence(1.2), voices["talk"])
    assert detector.verdict.kind == HUMAN


@needs_tools
@pytest.mark.parametrize("greeting", ["greeting_ru", "greeting_en"])
def test_a_recorded_greeting_is_a_machine_after_3_seconds_of_speech(voices: dict[str, array], greeting: str) -> None:
    detector = decide(silence(0.5), voices[greeting], silence(2))
    assert detector.verdict.kind == MACHINE
    assert "without a pause" in detector.verdict.reason
    assert 3.5 <= detector.verdict.at < 4.6  # 0.5 s of line + 3 s of speech, then a pause of a frame


@needs_tools
def test_a_quiet_noisy_line_with_a_level_drop_changes_nothing(voices: dict[str, array]) -> None:
    greeting = voices["greeting_ru"]
    half = len(greeting) // 2
    quiet = scaled(greeting[:half], -20)
    quiet.extend(scaled(greeting[half:], -30))  # the far end's level falls 10 dB mid-greeting
    assert decide(with_noise(silence(0.5) + quiet + silence(2), 40)).verdict.kind == MACHINE
    person = with_noise(silence(0.5) + scaled(voices["allo"], -20) + silence(4), 40)
    assert decide(person).verdict.kind == HUMAN


@needs_tools
def test_a_short_greeting_ending_in_a_beep_is_caught_by_the_beep(voices: dict[str, array]) -> None:
    detector = decide(silence(0.3), voices["short_ru"], silence(0.3), tone(1000, 0.5), silence(3))
    assert detector.verdict.kind == MACHINE
    assert detector.verdict.reason == "a 1000 Hz beep"


@pytest.mark.parametrize("hz", [425, 1000, 1400, 2100])
def test_a_beep_alone_is_a_machine(hz: int) -> None:
    detector = decide(silence(0.5), with_noise(tone(hz, 0.4), 400), silence(3))
    assert detector.verdict.kind == MACHINE
    measured = int(re.fullmatch(r"a (\d+) Hz beep", detector.verdict.reason).group(1))
    assert abs(measured - hz) <= 0.01 * hz
    assert 0.5 + 0.16 <= detector.verdict.at <= 0.5 + 0.26


def test_a_tone_too_short_for_a_beep_is_not_one() -> None:
    detector = decide(silence(0.5), tone(1000, 0.1), silence(3))
    assert detector.verdict.kind == HUMAN


def test_silence_is_a_person_at_the_deadline() -> None:
    detector = decide(silence(8))
    assert (detector.verdict.kind, detector.verdict.at) == (HUMAN, 6.0)
    assert detector.verdict.reason == "nothing decisive within 6 s"


def test_no_packets_at_all_count_as_silence() -> None:
    detector = VoicemailDetector()
    assert detector.poll(2.0).kind == UNDECIDED
    assert detector.poll(7.0).kind == HUMAN


@needs_tools
def test_lost_packets_are_a_pause(voices: dict[str, array]) -> None:
    detector = VoicemailDetector()
    run(detector, silence(0.3) + voices["allo"])
    assert not detector.verdict.decided
    detector.feed(bytes(FRAME * 2), 0.3 + len(voices["allo"]) / RATE + 1.0)  # the next packet, 1 s later
    assert detector.verdict.kind == HUMAN


@needs_tools
def test_chunks_of_any_size_decide_the_same(voices: dict[str, array]) -> None:
    audio = silence(0.5) + voices["greeting_en"]
    by_frame, by_odd_chunk = decide(audio), decide(audio, chunk=97)
    assert by_frame.verdict == by_odd_chunk.verdict


@needs_tools
def test_g711_audio_decoded_by_the_rtp_layer(voices: dict[str, array]) -> None:
    pcm = decode(encode((silence(0.5) + voices["greeting_ru"]).tobytes(), PCMA), PCMA)
    audio = array("h")
    audio.frombytes(pcm)
    assert decide(audio).verdict.kind == MACHINE


def test_a_decision_is_final() -> None:
    detector = decide(silence(0.5), tone(1000, 0.4))
    verdict = detector.verdict
    run(detector, silence(8))
    assert detector.verdict is verdict
