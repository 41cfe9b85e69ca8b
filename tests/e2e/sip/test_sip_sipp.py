"""SipDialer against sipp as a scripted trunk: busy, no answer, digest, BYE from the far end, 503, junk.

sipp checks our side of each exchange (`ereg check_it`, `verifyauth`) and exits 0 only if every step
matched; we check what the dialer made of it.
"""

from __future__ import annotations

import asyncio

import pytest

from perezvon.calls.dialer.base import Audio, RingResult
from perezvon.calls.dialer.sip import SipDialer, parse_trunk

from .conftest import SCENARIOS

pytestmark = pytest.mark.e2e

NUMBER = "79001234567"


async def dial(port: int, *, transport: str = "udp", timeout: float = 5.0, **trunk: str):
    dialer = SipDialer(parse_trunk(f"{transport}:127.0.0.1:{port}", **trunk))
    await dialer.start()
    leg = dialer.leg(NUMBER)
    result = await leg.ring(timeout)
    return dialer, leg, result


@pytest.mark.parametrize(
    ("status", "result"),
    [
        (603, RingResult.REJECTED),
        (403, RingResult.REJECTED),
        (404, RingResult.INVALID_NUMBER),
        (484, RingResult.INVALID_NUMBER),
        (604, RingResult.INVALID_NUMBER),
        (488, RingResult.UNAVAILABLE),
    ],
)
async def test_a_refusal_says_declined_or_no_such_number(sipp, tmp_path, status: int, result: RingResult) -> None:
    # busy.xml with another final status (sipp checks status lines when it loads a scenario: no keyword).
    scenario = tmp_path / f"refused_{status}.xml"
    scenario.write_text((SCENARIOS / "busy.xml").read_text().replace("486 Busy Here", f"{status} Refused"))
    peer = await sipp(str(scenario))
    dialer, leg, got = await dial(peer.port)
    try:
        assert got is result and leg.final_status == status
        assert await peer.wait(10) == 0, peer.messages()  # and it was acknowledged
    finally:
        await dialer.close()


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_busy_is_busy_and_acknowledged(sipp, transport: str) -> None:
    peer = await sipp("busy.xml", transport="u1" if transport == "udp" else "t1")
    dialer, leg, result = await dial(peer.port, transport=transport)
    try:
        assert result is RingResult.BUSY
        assert leg.final_status == 486 and leg.is_ended
        assert await peer.wait(10) == 0, peer.messages()  # sipp saw our ACK and a well-formed offer
    finally:
        await dialer.close()


async def test_no_answer_cancels_after_ring_timeout(sipp) -> None:
    peer = await sipp("noanswer.xml")
    loop = asyncio.get_running_loop()
    started = loop.time()
    dialer, leg, result = await dial(peer.port, timeout=1.5)
    try:
        assert result is RingResult.NO_ANSWER
        assert loop.time() - started >= 1.5
        assert leg.final_status == 487  # the INVITE ended by our CANCEL, not by giving up silently
        assert await peer.wait(10) == 0, peer.messages()
    finally:
        await dialer.close()


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_digest_challenge_is_answered(sipp, transport: str) -> None:
    peer = await sipp("auth.xml", transport="u1" if transport == "udp" else "t1")
    dialer, leg, result = await dial(peer.port, transport=transport, username="alice", password="s3cret")
    try:
        assert result is RingResult.ANSWERED, leg.final_status
        assert leg.media is not None and leg.media.codec == 8  # sipp answered PCMA only
        await leg.hangup()
        assert await peer.wait(10) == 0, peer.messages()  # verifyauth passed and our BYE got its 200
    finally:
        await dialer.close()


async def test_wrong_password_is_rejected(sipp) -> None:
    peer = await sipp("auth.xml")
    dialer, leg, result = await dial(peer.port, username="alice", password="wrong")
    try:
        assert result is RingResult.REJECTED
        assert leg.final_status == 403
        await peer.wait(10)
    finally:
        await dialer.close()


async def test_no_credentials_means_an_error_of_ours_not_a_loop(sipp) -> None:
    peer = await sipp("auth.xml")
    dialer, leg, result = await dial(peer.port)
    try:
        assert result is RingResult.ERROR and leg.final_status == 401
    finally:
        await dialer.close()


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_bye_from_the_far_end_ends_the_leg(sipp, transport: str) -> None:
    peer = await sipp("bye.xml", transport="u1" if transport == "udp" else "t1")
    dialer, leg, result = await dial(peer.port, transport=transport)
    try:
        assert result is RingResult.ANSWERED
        assert await leg.wait_ended(10)
        assert leg.ended_by_remote
        assert await peer.wait(10) == 0, peer.messages()  # it got our 200 for its BYE
        await leg.hangup()  # safe after the far end hung up: sends nothing
        await leg.play(Audio(b"\0\0" * 800))  # returns at once on an ended leg
    finally:
        await dialer.close()


async def test_503_from_the_trunk_is_unavailable(sipp) -> None:
    peer = await sipp("unavailable.xml")
    dialer, leg, result = await dial(peer.port)
    try:
        assert result is RingResult.UNAVAILABLE and leg.final_status == 503
        assert await peer.wait(10) == 0, peer.messages()
    finally:
        await dialer.close()


async def test_malformed_responses_are_dropped_and_the_call_ends_unavailable(sipp) -> None:
    peer = await sipp("malformed.xml")
    dialer, leg, result = await dial(peer.port)
    try:
        assert result is RingResult.UNAVAILABLE and leg.final_status == 503
        assert dialer.dropped >= 5  # every piece of junk was counted and dropped, none crashed us
        assert await peer.wait(10) == 0, peer.messages()
    finally:
        await dialer.close()


async def test_silent_trunk_is_unavailable_not_no_answer() -> None:
    # Nothing listens on this port: no provisional ever comes, so no CANCEL may be sent (§9.1).
    from .conftest import free_port

    dialer, leg, result = await dial(free_port(), timeout=1.0)
    try:
        assert result is RingResult.UNAVAILABLE
    finally:
        await dialer.close()
