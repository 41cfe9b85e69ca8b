"""Direct media over real SIP: Kamailio as the trunk, two baresip phones that record what they hear.

The trunk allows direct media and nothing records, so after the bridge starts both phones are
re-INVITEd, each with the other's media: each still hears the other's tone, and our relay forwards
(next to) nothing from then on. The visitor's tone file is short: its BYE ends the call as usual.
A far end that refuses the re-INVITE (sipp answering 488) leaves the call relayed and up.
"""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from perezvon.calls.dialer.base import RingResult
from perezvon.calls.dialer.sip import SipDialer, parse_trunk

from .sip_audio import tone_share, windows

pytestmark = pytest.mark.e2e

OPERATOR = "79990000001"
VISITOR = "79990000002"
IN_FLIGHT = 10  # packets that may still reach our relay while the re-INVITEs cross (20 ms each)
# After the switch each phone receives the other's own stream (a new SSRC, its own sequence numbers).
# baresip 1.0's jitter buffer keeps the old stream's next sequence number across an SSRC change and
# drops the new one as "too late" when its numbers happen to be lower: without one, it plays it.
NO_JITTER_BUFFER = "jitter_buffer_delay 0-0\n"


def direct_trunk(port: int):  # type: ignore[no-untyped-def]
    return parse_trunk(f"udp:127.0.0.1:{port}", direct_media=True)


async def test_both_phones_hear_each_other_and_our_relay_carries_nothing(kamailio, phones) -> None:
    operator = await phones(OPERATOR, 440, seconds=30, config=NO_JITTER_BUFFER)
    visitor = await phones(VISITOR, 880, seconds=6, config=NO_JITTER_BUFFER)  # hangs up when its tone ends
    router = await kamailio({OPERATOR: operator.sip_port, VISITOR: visitor.sip_port})
    dialer = SipDialer(direct_trunk(router.port))
    await dialer.start()
    try:
        op_leg = dialer.leg(OPERATOR)
        assert await op_leg.ring(10) is RingResult.ANSWERED
        await operator.wait_event("CALL_ESTABLISHED")
        vis_leg = dialer.leg(VISITOR)
        assert await vis_leg.ring(10) is RingResult.ANSWERED
        await visitor.wait_event("CALL_ESTABLISHED")
        ours = {leg: dataclasses.replace(leg.media) for leg in (op_leg, vis_leg)}  # type: ignore[type-var]
        await asyncio.wait_for(dialer.bridge(op_leg, vis_leg), 20)

        assert vis_leg.ended_by_remote and op_leg.is_ended and not op_leg.ended_by_remote
        for leg in (op_leg, vis_leg):
            assert leg.relayed_at_direct is not None, "the far ends were never pointed at each other"
            relayed = leg.packets_relayed - leg.relayed_at_direct
            assert relayed <= IN_FLIGHT, (leg.packets_relayed, leg.relayed_at_direct)
            assert leg.media is not None and leg.media.target == ours[leg].target  # its phone kept its port
        await operator.wait_event("CALL_CLOSED")
        await visitor.wait_event("CALL_CLOSED")
    finally:
        await dialer.close()
    operator.close()  # sndfile finishes its WAV headers when the phone stops
    visitor.close()

    for phone, freq in ((operator, 880), (visitor, 440)):
        heard = windows(phone.recording("dec")[8000:])  # after the first second (the switch)
        assert heard, f"{phone.number} heard nothing"
        shares = [tone_share(w, freq) for w in heard]
        assert sum(s > 0.8 for s in shares) >= len(shares) * 0.6, (phone.number, shares)


async def test_a_refused_reinvite_leaves_the_call_relayed_and_up(kamailio, phones, sipp) -> None:
    operator = await phones(OPERATOR, 440, seconds=30)
    refuser = await sipp("reinvite_488.xml")  # answers, refuses our re-INVITE with 488, BYEs after 3 s
    router = await kamailio({OPERATOR: operator.sip_port, VISITOR: refuser.port})
    dialer = SipDialer(direct_trunk(router.port))
    await dialer.start()
    try:
        op_leg = dialer.leg(OPERATOR)
        assert await op_leg.ring(10) is RingResult.ANSWERED
        await operator.wait_event("CALL_ESTABLISHED")
        vis_leg = dialer.leg(VISITOR)
        assert await vis_leg.ring(10) is RingResult.ANSWERED
        ours = op_leg.media
        await asyncio.wait_for(dialer.bridge(op_leg, vis_leg), 20)

        assert vis_leg.ended_by_remote, "the call did not stay up until the far end's BYE"
        assert op_leg.relayed_at_direct is None and vis_leg.relayed_at_direct is None
        # The operator's phone was pointed at the refuser, then back at us: it sent to us again.
        assert op_leg.media is not None and ours is not None and op_leg.media.target == ours.target
        assert await refuser.wait(10) == 0, refuser.messages()
        assert refuser.messages().count("488 Not Acceptable") >= 1
    finally:
        await dialer.close()
    operator.close()
