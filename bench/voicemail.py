"""Does the voicemail detector tell people from answering machines? (docs/benchmarks.md, "Voicemail")

A corpus generated on the spot, nothing downloaded: espeak-ng voices (ru, en; male and female variants)
at several speeds, band-limited to the telephone band by sox and passed through G.711 (µ-law or A-law,
as a trunk would), with line noise (white, pink, brown hiss or 50 Hz mains hum at 12-40 dB below the
speech), levels from -3 to -30 dBFS and, in a third of the clips, a level change of 6-12 dB mid-clip.

    people:   0.2-1 s of line, "Алло?" / "Да, слушаю" / "Hello?" (or "Алло? Алло?"), then either
              silence, or 1-2.5 s of waiting and then talk ("Алло, кто это? Говорите, я слушаю.")
    machines: 0.1-1 s of line, a greeting of 4-12 s, with or without a beep (425-1400 Hz, 0.25-0.8 s)
              after it; plus a few short greetings (1-3 s) ending in a beep, where only the beep tells

Each clip is fed to VoicemailDetector in 20 ms frames, as the RTP leg would, and the bench prints the
confusion matrix, a breakdown by kind of clip, the decision-time distribution per truth, the
misjudged clips, and the detector's CPU per second of audio. Goal (issue #13): >= 95 % of machines
caught, <= 2 % of people misjudged.

Usage:  .venv/bin/python bench/voicemail.py [--clips 400] [--seed 13] [--keep DIR]
Needs espeak-ng and sox (Debian packages); about a minute for 400 clips on a 2-core box.
"""

from __future__ import annotations

import argparse
import math
import random
import shutil
import subprocess
import sys
import tempfile
import time
from array import array
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from perezvon.calls.dialer.sip.rtp import decode, encode  # noqa: E402
from perezvon.calls.dialer.sip.sdp import PCMA, PCMU  # noqa: E402
from perezvon.calls.media.voicemail import FRAME, HUMAN, MACHINE, RATE, UNDECIDED, VoicemailDetector  # noqa: E402

VOICES = {"ru": ["ru", "ru+f3", "ru+m3"], "en": ["en-us", "en-gb", "en-us+f3", "en-gb+m3"]}
SPEEDS = [120, 150, 175, 210]
GREETINGS = {
    "ru": ["Алло?", "Да?", "Да, слушаю.", "Алло, слушаю.", "Слушаю вас.", "Алло, да.", "Да, алло?"],
    "en": ["Hello?", "Yes?", "Hello, yes?", "Hi, who's this?", "Yeah, hello.", "Speaking."],
}
TALK = {
    "ru": [
        "Алло, кто это? Говорите, я вас слушаю.",
        "Да, я оставлял заявку на сайте, слушаю вас.",
        "Алло, вас не слышно, перезвоните пожалуйста.",
    ],
    "en": [
        "Hello, who is this? Go ahead, I am listening.",
        "Yes, I asked for a callback on the website.",
        "Hello? I can't hear you, could you call me back?",
    ],
}
MACHINE_TEXTS = {
    "ru": [
        "Здравствуйте, вы позвонили Ивану Петрову. Сейчас я не могу ответить, оставьте сообщение после сигнала.",
        "Абонент не может ответить на ваш звонок. Оставьте голосовое сообщение после звукового сигнала, "
        "и абонент получит его по эс эм эс.",
        "Добрый день! Вы позвонили в компанию Ромашка. Все операторы заняты, оставьте ваше сообщение "
        "и номер телефона, мы перезвоним.",
        "Привет, это Марина. Я сейчас не могу подойти к телефону, оставь сообщение, я перезвоню.",
        "Здравствуйте. Вас приветствует автоответчик. Говорите после сигнала.",
        "Вы позвонили по номеру восемь девятьсот сто двадцать три. Пожалуйста, оставьте сообщение.",
    ],
    "en": [
        "Hi, you've reached John Smith. I can't take your call right now, please leave a message after the tone.",
        "The person you are calling is not available. Please leave your message after the tone. When "
        "you have finished recording, you may hang up.",
        "Thank you for calling Acme Corporation. Our office is closed. Please leave your name and number "
        "and we will call you back.",
        "Hey, it's Kate. Leave a message and I'll get back to you as soon as I can.",
        "Hello, this is the voicemail of nine one two three four. Please speak after the beep.",
        "You have reached the mailbox of Doctor Brown. Please leave a detailed message.",
    ],
}
SHORT_MACHINE = {
    "ru": ["Оставьте сообщение.", "Говорите после сигнала."],
    "en": ["Leave a message.", "Please speak after the tone."],
}
BEEP_HZ = [425, 800, 1000, 1000, 1400]


@dataclass
class Clip:
    truth: str  # human | machine
    kind: str  # breakdown row
    language: str
    voice: str
    speed: int
    pcm: array
    note: str


class Renderer:
    """espeak-ng → sox (8 kHz, telephone band), cached per (text, voice, speed)."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.cache: dict[tuple[str, str, int], array] = {}

    def __call__(self, text: str, voice: str, speed: int) -> array:
        key = (text, voice, speed)
        if key not in self.cache:
            wav = self.work / "speech.wav"
            subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(wav), "--", text], check=True)
            self.cache[key] = trim(sox_to_pcm(self.work, str(wav), "sinc", "300-3400", "gain", "-n", "-1"))
        return self.cache[key]


def sox_to_pcm(work: Path, source: str, *effects: str) -> array:
    """sox from `source` (a file, or -n for synth) to 8 kHz 16-bit mono samples, through `effects`."""
    raw = work / "sox.raw"
    subprocess.run(["sox", "-q", source, "-t", "raw", "-r", str(RATE), "-c", "1", "-b", "16", "-e", "signed-integer",
                    "-L", str(raw), *effects], check=True)
    samples = array("h")
    samples.frombytes(raw.read_bytes())
    return samples


def trim(samples: array) -> array:
    """Drop espeak's leading and trailing silence: the clip builder places the speech itself."""
    loud = [i for i in range(0, len(samples), 80) if abs(samples[i]) > 300]
    return samples[loud[0] : loud[-1] + 80] if loud else samples


def noise_bank(work: Path, rng: random.Random) -> dict[str, list[float]]:
    """30 s of each kind of line noise, unit RMS; clips take random stretches of it."""
    bank = {}
    for kind in ("whitenoise", "pinknoise", "brownnoise"):
        bank[kind] = unit(sox_to_pcm(work, "-n", "synth", "30", kind, "sinc", "200-3400"))
    phase = rng.random()
    bank["hum"] = unit(
        [
            math.sin(2 * math.pi * 50 * (i / RATE + phase))
            + 0.4 * math.sin(2 * math.pi * 150 * i / RATE)
            + 0.2 * math.sin(2 * math.pi * 250 * i / RATE)
            for i in range(30 * RATE)
        ]
    )
    return bank


def unit(samples) -> list[float]:
    rms = math.sqrt(sum(s * s for s in samples) / len(samples)) or 1.0
    return [s / rms for s in samples]


def rms(samples) -> float:
    return math.sqrt(sum(s * s for s in samples) / max(1, len(samples)))


def silence(seconds: float) -> list[float]:
    return [0.0] * int(seconds * RATE)


def tone(hz: float, seconds: float, amplitude: float) -> list[float]:
    n = int(seconds * RATE)
    ramp = int(0.005 * RATE)
    return [amplitude * math.sin(2 * math.pi * hz * i / RATE) * min(1.0, i / ramp, (n - i) / ramp) for i in range(n)]


def finish(
    parts: list[list[float]], speech_rms: float, rng: random.Random, bank: dict[str, list[float]], seconds: float
) -> tuple[array, str]:
    """Level, level change, line noise, G.711: what the far end's line does to the clip."""
    signal = [s for part in parts for s in part]
    signal += [0.0] * max(0, int(seconds * RATE) - len(signal))
    level_db = rng.uniform(-30, -3)  # peak of the speech
    peak = max(1.0, max(abs(s) for s in signal))
    gain = 32767 * 10 ** (level_db / 20) / peak
    note = f"level {level_db:.0f} dBFS"
    step_at, step = len(signal), 1.0
    if rng.random() < 0.33:
        step_db = rng.choice([-1, 1]) * rng.uniform(6, 12)
        step_at, step = rng.randrange(len(signal) // 4, len(signal) * 3 // 4), 10 ** (step_db / 20)
        note += f", step {step_db:+.0f} dB at {step_at / RATE:.1f} s"
    kind = rng.choice(list(bank))
    snr = rng.uniform(12, 40)
    noise, start = bank[kind], rng.randrange(0, len(bank[kind]) - len(signal))
    noise_gain = speech_rms * gain * 10 ** (-snr / 20)
    note += f", {kind} at {snr:.0f} dB SNR"
    out = array(
        "h",
        (
            max(-32768, min(32767, int(s * gain * (step if i >= step_at else 1.0) + noise[start + i] * noise_gain)))
            for i, s in enumerate(signal)
        ),
    )
    codec = rng.choice([PCMU, PCMA])
    pcm = decode(encode(out.tobytes(), codec), codec)
    result = array("h")
    result.frombytes(pcm)
    return result, note + (", PCMU" if codec == PCMU else ", PCMA")


def person(rng: random.Random, render: Renderer, bank: dict[str, list[float]]) -> Clip:
    language = rng.choice(["ru", "en"])
    voice, speed = rng.choice(VOICES[language]), rng.choice(SPEEDS)
    greeting = list(render(rng.choice(GREETINGS[language]), voice, speed))
    parts = [silence(rng.uniform(0.2, 1.0)), greeting]
    kind = "person, then silence"
    if rng.random() < 0.15:  # "Алло? ... Алло?": people repeat a one-word greeting
        greeting = list(render(rng.choice(GREETINGS[language][:2]), voice, speed))
        parts = [parts[0], greeting, silence(rng.uniform(0.3, 0.6)), greeting]
        kind = "person, twice, then silence"
    if rng.random() < 0.5:
        pause = rng.uniform(1.0, 2.5)
        parts += [silence(pause), list(render(rng.choice(TALK[language]), voice, speed))]
        kind = kind.replace("silence", "talk")
    pcm, note = finish(parts, rms(greeting), rng, bank, 8.0)
    return Clip(HUMAN, kind, language, voice, speed, pcm, note)


def machine(rng: random.Random, render: Renderer, bank: dict[str, list[float]]) -> Clip:
    language = rng.choice(["ru", "en"])
    voice, speed = rng.choice(VOICES[language]), rng.choice(SPEEDS)
    short = rng.random() < 0.1
    texts = SHORT_MACHINE[language] if short else MACHINE_TEXTS[language]
    for _ in range(20):  # a greeting of 4-12 s (a fast voice reading a short text may be under 4 s)
        greeting = list(render(rng.choice(texts), voice, speed))
        if short or 4.0 <= len(greeting) / RATE <= 12.0:
            break
        speed = rng.choice(SPEEDS)
    parts = [silence(rng.uniform(0.1, 1.0)), greeting]
    beep = short or rng.random() < 0.5
    kind = "short greeting + beep" if short else ("greeting + beep" if beep else "greeting, no beep")
    if beep:
        hz = rng.choice(BEEP_HZ)
        parts += [silence(rng.uniform(0.2, 0.6)), tone(hz, rng.uniform(0.25, 0.8), max(map(abs, greeting)) * 0.7)]
    pcm, note = finish(parts, rms(greeting), rng, bank, sum(map(len, parts)) / RATE + 2.0)
    return Clip(MACHINE, kind, language, voice, speed, pcm, note + f", greeting {len(greeting) / RATE:.1f} s")


FED_FRAMES = [0]  # frames fed before a decision, for the CPU figure


def detect(clip: Clip) -> tuple[str, str, float | None]:
    detector = VoicemailDetector()
    data = clip.pcm.tobytes()
    for i in range(0, len(data), FRAME * 2):
        FED_FRAMES[0] += 1
        verdict = detector.feed(data[i : i + FRAME * 2], i / 2 / RATE)
        if verdict.decided:
            break
    verdict = detector.poll(len(clip.pcm) / RATE)
    return verdict.kind, verdict.reason, verdict.at


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def report(clips: list[Clip], results: list[tuple[str, str, float | None]], cpu_s: float) -> bool:
    matrix = Counter((clip.truth, kind) for clip, (kind, _, _) in zip(clips, results, strict=True))
    print(f"\nconfusion matrix ({len(clips)} clips; rows: truth, columns: decision)")
    print(f"{'':>9} {'human':>7} {'machine':>8} {'undecided':>10}")
    for truth in (HUMAN, MACHINE):
        print(
            f"{truth:>9} "
            + " ".join(f"{matrix[(truth, k)]:>{w}}" for k, w in ((HUMAN, 7), (MACHINE, 8), (UNDECIDED, 10)))
        )
    rows: dict[str, Counter] = defaultdict(Counter)
    for clip, (kind, _, _) in zip(clips, results, strict=True):
        rows[f"{clip.kind} ({clip.language})"][kind == clip.truth] += 1
    print("\nby kind of clip: right / all")
    for name in sorted(rows):
        print(f"  {name:<36} {rows[name][True]:>4} / {sum(rows[name].values())}")
    print("\ndecision time after answer (s): p50 / p90 / max")
    for truth in (HUMAN, MACHINE):
        times = [at for clip, (_, _, at) in zip(clips, results, strict=True) if clip.truth == truth and at is not None]
        print(f"  {truth:>7}: {pct(times, 0.5):.2f} / {pct(times, 0.9):.2f} / {max(times, default=float('nan')):.2f}")
    reasons = Counter(reason.split(" ", 1)[1] if reason[0].isdigit() else reason for _, reason, _ in results)
    print("\nreasons: " + "; ".join(f"{n}× {r}" for r, n in reasons.most_common(8)))
    wrong = [(clip, r) for clip, r in zip(clips, results, strict=True) if r[0] != clip.truth]
    if wrong:
        print("\nmisjudged:")
        for clip, (kind, reason, at) in wrong[:20]:
            print(f"  {clip.truth} {clip.kind} {clip.voice} {clip.speed} wpm, {clip.note} → {kind} at {at} s: {reason}")
    humans = sum(1 for c in clips if c.truth == HUMAN)
    machines = len(clips) - humans
    caught = matrix[(MACHINE, MACHINE)] / max(1, machines)
    misjudged = (humans - matrix[(HUMAN, HUMAN)]) / max(1, humans)
    audio_s = FED_FRAMES[0] * FRAME / RATE
    ok = caught >= 0.95 and misjudged <= 0.02
    print(
        f"\nmachines caught {caught:.1%} (goal >= 95 %), people misjudged {misjudged:.1%} (goal <= 2 %): "
        f"{'met' if ok else 'NOT met'}; detector CPU {cpu_s / audio_s * 1e3:.2f} ms per second of audio "
        f"fed ({cpu_s * 1e6 / max(1, FED_FRAMES[0]):.0f} µs per 20 ms frame)"
    )
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=400, help="clips in all, half people, half machines")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--keep", help="write the clips as .raw (8 kHz s16le) files into this directory")
    args = parser.parse_args()
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed (apt-get install espeak-ng sox)")
    rng = random.Random(args.seed)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="voicemail-") as tmp:
        work = Path(tmp)
        render, bank = Renderer(work), noise_bank(work, rng)
        clips = [(person if i % 2 == 0 else machine)(rng, render, bank) for i in range(args.clips)]
    if args.keep:
        keep = Path(args.keep)
        keep.mkdir(parents=True, exist_ok=True)
        for i, clip in enumerate(clips):
            (keep / f"{i:04d}-{clip.truth}-{clip.kind.replace(' ', '_').replace(',', '')}.raw").write_bytes(
                clip.pcm.tobytes()
            )
    print(
        f"voicemail detection: {len(clips)} clips generated in {time.monotonic() - started:.0f} s "
        f"({len(render.cache)} espeak-ng renders), seed {args.seed}"
    )
    cpu0 = time.process_time()
    results = [detect(clip) for clip in clips]
    cpu = time.process_time() - cpu0
    sys.exit(0 if report(clips, results, cpu) else 1)


if __name__ == "__main__":
    main()
