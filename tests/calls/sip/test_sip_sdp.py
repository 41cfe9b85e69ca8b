"""SDP offer/answer with real bodies named after their sender."""

from __future__ import annotations

from pathlib import Path

import pytest

from perezvon.calls.dialer.sip.message import SipParseError, parse_message
from perezvon.calls.dialer.sip.sdp import PCMA, PCMU, answer_direction, build_sdp, negotiate, parse_sdp

DATA = Path(__file__).parent / "data"

SIPP_PCMA = b"""v=0\r
o=sipp 53655765 2353687637 IN IP4 127.0.0.1\r
s=-\r
c=IN IP4 127.0.0.1\r
t=0 0\r
m=audio 6000 RTP/AVP 8 101\r
a=rtpmap:8 PCMA/8000\r
a=rtpmap:101 telephone-event/8000\r
"""

ASTERISK_HOLD = b"""v=0\r
o=- 1 2 IN IP4 198.51.100.7\r
s=Asterisk\r
c=IN IP4 198.51.100.7\r
t=0 0\r
m=audio 14000 RTP/AVP 0 8 3 96\r
a=rtpmap:0 PCMU/8000\r
a=rtpmap:8 PCMA/8000\r
a=rtpmap:3 GSM/8000\r
a=rtpmap:96 telephone-event/8000\r
a=sendonly\r
"""


def test_baresip_answer() -> None:
    body = parse_message((DATA / "baresip_200_answer_via_kamailio.sip").read_bytes()).body
    media = parse_sdp(body)
    assert (media.address, media.port, media.payload_types, media.direction) == (
        "127.0.0.1", 20020, [0, 8, 101], "sendrecv")
    neg = negotiate(media)
    assert (neg.codec, neg.dtmf_pt, neg.wants_ours, neg.sends_to_us) == (PCMU, 101, True, True)


def test_sipp_answer_picks_pcma() -> None:
    neg = negotiate(parse_sdp(SIPP_PCMA))
    assert (neg.address, neg.port, neg.codec, neg.dtmf_pt) == ("127.0.0.1", 6000, PCMA, 101)


def test_hold_by_sendonly_and_by_zero_address() -> None:
    media = parse_sdp(ASTERISK_HOLD)
    assert media.direction == "sendonly" and negotiate(media).dtmf_pt == 96
    assert answer_direction(media.direction) == "recvonly"
    old_style = parse_sdp(ASTERISK_HOLD.replace(b"a=sendonly\r\n", b"").replace(b"198.51.100.7", b"0.0.0.0"))
    assert old_style.direction == "inactive"


def test_our_offer_round_trips_through_the_parser() -> None:
    body = build_sdp("192.0.2.1", 40000, session_id=7, version=1)
    media = parse_sdp(body)
    assert media.payload_types == [PCMU, PCMA, 101]
    assert media.encoding(101) == "telephone-event/8000"
    assert b"a=ptime:20" in body
    answer = parse_sdp(build_sdp("192.0.2.1", 40000, session_id=7, version=2, codecs=(PCMA,), direction="recvonly"))
    assert answer.payload_types == [PCMA, 101] and answer.direction == "recvonly"


def test_no_common_codec_or_no_audio_is_a_parse_error() -> None:
    with pytest.raises(SipParseError, match="no common codec"):
        negotiate(parse_sdp(b"v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 5 RTP/AVP 3\r\na=rtpmap:3 GSM/8000\r\n"))
    with pytest.raises(SipParseError, match="no audio"):
        parse_sdp(b"v=0\r\nc=IN IP4 1.2.3.4\r\nm=video 5 RTP/AVP 96\r\n")
    with pytest.raises(SipParseError, match="connection address"):
        parse_sdp(b"v=0\r\nm=audio 5 RTP/AVP 0\r\n")
    with pytest.raises(SipParseError):
        parse_sdp(b"\xff\xfe")
