"""The whole callback over real SIP: Kamailio as the trunk, two baresip phones that record what they hear.

Operator phone plays a 440 Hz tone, visitor phone 880 Hz. SipDialer rings the operator, reads the
announcement, waits for the operator to press 1, rings the visitor and bridges; the visitor's tone file
is short, so the visitor hangs up by itself (BYE from the visitor's side) and the bridge must end the
operator's leg too.
"""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path

import pytest

from perezvon.calls.dialer.base import Audio, RingResult
from perezvon.calls.dialer.sip import SipDialer, parse_trunk
from perezvon.calls.speech import SpeechRenderer
from perezvon.domain.announcement import announcement_text

from .sip_audio import best_correlation, envelope, read_wav, tone_share, windows

pytestmark = pytest.mark.e2e

OPERATOR = "79990000001"
VISITOR = "79990000002"


@pytest.fixture
async def speech() -> Audio:
    from .conftest import need

    need("espeak-ng")
    text = announcement_text([("Name", "Ivan"), ("Last name", "Petrov")], language="en", site_name=None, unit_name=None)
    return await SpeechRenderer().render(text, "en")


async def test_operator_hears_announcement_then_visitor_and_visitor_hears_operator(
    kamailio, phones, speech: Audio, tmp_path: Path
) -> None:
    operator = await phones(OPERATOR, 440, seconds=30)
    visitor = await phones(VISITOR, 880, seconds=3)  # hangs up when its tone ends
    router = await kamailio({OPERATOR: operator.sip_port, VISITOR: visitor.sip_port})
    dialer = SipDialer(parse_trunk(f"udp:127.0.0.1:{router.port}"))
    await dialer.start()
    try:
        op_leg = dialer.leg(OPERATOR)
        assert await op_leg.ring(10) is RingResult.ANSWERED
        await operator.wait_event("CALL_ESTABLISHED")
        await op_leg.play(speech)
        # The operator accepts the request by pressing 1 (RFC 4733 from baresip).
        await operator.command("sndcode", "1")
        assert await op_leg.read_digit(5) == "1"

        vis_leg = dialer.leg(VISITOR)
        assert await vis_leg.ring(10) is RingResult.ANSWERED
        await visitor.wait_event("CALL_ESTABLISHED")
        recording = tmp_path / "bridged.wav"
        await asyncio.wait_for(dialer.bridge(op_leg, vis_leg, recording), 20)

        # The visitor hung up; the bridge ended the operator's leg with a BYE of our own.
        assert vis_leg.ended_by_remote
        assert op_leg.is_ended and not op_leg.ended_by_remote
        await operator.wait_event("CALL_CLOSED")
        await visitor.wait_event("CALL_CLOSED")
    finally:
        await dialer.close()
    operator.close()  # sndfile finishes its WAV headers when the phone stops
    visitor.close()

    heard_by_operator = operator.recording("dec")
    speech_samples = [
        int.from_bytes(speech.pcm[i : i + 2], "little", signed=True) for i in range(0, len(speech.pcm), 2)
    ]
    # 1. The operator heard the announcement first: its loudness contour matches the rendered speech.
    head = heard_by_operator[: len(speech_samples) + 8000]
    corr = best_correlation(envelope(head), envelope(speech_samples))
    assert corr > 0.8, f"operator's first seconds do not match the announcement (r={corr:.2f})"
    # ...and it is not the visitor's tone.
    assert tone_share(heard_by_operator[8000:16000], 880) < 0.2
    # 2. Then the visitor's 880 Hz tone, through our relay.
    after = windows(heard_by_operator[len(speech_samples) + 1600 :])
    assert after, "the operator heard nothing after the announcement"
    shares = [tone_share(w, 880) for w in after]
    assert sum(s > 0.8 for s in shares) >= len(shares) * 0.6, shares
    # 3. The visitor heard the operator's 440 Hz tone and nothing of the announcement.
    heard_by_visitor = windows(visitor.recording("dec"))
    assert heard_by_visitor, "the visitor heard nothing"
    shares = [tone_share(w, 440) for w in heard_by_visitor]
    assert sum(s > 0.8 for s in shares) >= len(shares) * 0.6, shares
    # 4. Our recording of the bridge holds both tones.
    with wave.open(str(recording)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
    mixed = read_wav(recording)
    assert len(mixed) > 8000
    middle = mixed[len(mixed) // 2 - 4000 : len(mixed) // 2 + 4000]
    assert tone_share(middle, 440) > 0.3 and tone_share(middle, 880) > 0.3
