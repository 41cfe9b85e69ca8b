"""Parsing and serialising SIP messages, with captured wire bytes (data/*.sip) as fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

from perezvon.calls.dialer.sip.message import (
    Headers,
    NameAddr,
    SipParseError,
    SipRequest,
    SipResponse,
    SipUri,
    StreamFramer,
    Via,
    make_response,
    parse_message,
    split_header_list,
)

DATA = Path(__file__).parent / "data"
CAPTURED = sorted(DATA.glob("*.sip"))


@pytest.mark.parametrize("path", CAPTURED, ids=[p.stem for p in CAPTURED])
def test_captured_messages_round_trip_byte_for_byte(path: Path) -> None:
    raw = path.read_bytes()
    assert parse_message(raw).encode() == raw


def test_baresip_answer_through_kamailio_field_by_field() -> None:
    msg = parse_message((DATA / "baresip_200_answer_via_kamailio.sip").read_bytes())
    assert isinstance(msg, SipResponse)
    assert (msg.status, msg.reason) == (200, "Answering")
    assert msg.cseq == (1, "INVITE")
    assert msg.call_id == "4035f00e6abca3532996fff8@127.0.0.1"
    assert msg.to_addr.tag == "1700c642d8ecfe55"
    assert msg.from_addr.tag == "e27a56d86923"
    via = msg.top_via
    assert (via.transport, via.host, via.port, via.branch) == ("UDP", "127.0.0.1", 41630, "z9hG4bK776bd9fea715f078")
    assert via.params["received"] == "127.0.0.1"
    assert msg.headers.get_all("Record-Route") == ["<sip:127.0.0.1:25070;lr;ftag=e27a56d86923>"]
    assert msg.body.startswith(b"v=0\r\n") and len(msg.body) == 336
    assert "a=ptime:20" in msg.body.decode()


def test_our_invite_parses_as_a_request() -> None:
    msg = parse_message((DATA / "perezvon_invite.sip").read_bytes())
    assert isinstance(msg, SipRequest)
    assert (msg.method, msg.uri) == ("INVITE", "sip:79990000001@127.0.0.1:25070")
    assert msg.headers.get("content-type") == "application/sdp"


def test_compact_forms_folding_and_no_space_after_colon() -> None:
    raw = (b"INVITE sip:bob@example.com SIP/2.0\r\n"
           b"v:SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKabc\r\n"
           b"f: <sip:alice@example.com>;tag=1\r\n"
           b"t: <sip:bob@example.com>\r\n"
           b"i: call-1\r\n"
           b"CSeq: 7\r\n  INVITE\r\n"  # folded over two lines (RFC 3261 §7.3.1)
           b"Subject: a\r\n\tlong one\r\n"
           b"l: 0\r\n\r\n")
    msg = parse_message(raw)
    assert msg.cseq == (7, "INVITE")
    assert msg.headers.get("Subject") == "a long one"
    assert msg.headers.get("Via") == "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKabc"
    assert msg.call_id == "call-1"


def test_list_headers_split_but_not_inside_quotes_or_brackets() -> None:
    assert split_header_list('<sip:a@x;lr>, "B, b" <sip:b@y>,sip:c@z') == [
        "<sip:a@x;lr>", '"B, b" <sip:b@y>', "sip:c@z"]
    headers = Headers([("Via", "SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b;branch=z9hG4bK2"),
                       ("v", "SIP/2.0/UDP c;branch=z9hG4bK3")])
    assert [Via.parse(v).host for v in headers.get_all("via")] == ["a", "b", "c"]


def test_body_longer_than_content_length_is_cut_for_datagrams() -> None:
    raw = (DATA / "kamailio_100_trying.sip").read_bytes() + b"trailing junk"
    assert parse_message(raw).body == b""


def test_leading_keepalive_crlf_is_skipped() -> None:
    raw = (DATA / "kamailio_100_trying.sip").read_bytes()
    assert parse_message(b"\r\n\r\n" + raw).encode() == raw


@pytest.mark.parametrize(
    ("raw", "defect"),
    [
        (b"", "empty"),
        (b"SIP/2.0 200 OK\r\nVia: x\r\n", "no blank line"),
        (b"SIP/2.0 2OO OK\r\n\r\n", "bad status code"),
        (b"SIP/2.0 99 Low\r\n\r\n", "bad status code"),
        (b"HTTP/1.1 200 OK\r\n\r\n", "bad status code|unsupported version|bad start line"),
        (b"INVITE sip:a@b SIP/3.0\r\n\r\n", "unsupported version"),
        (b"INVITE nouri SIP/2.0\r\n\r\n", "bad request URI"),
        (b"SIP/2.0 200 OK\r\nno colon here\r\n\r\n", "bad header line"),
        (b"SIP/2.0 200 OK\r\n folded first\r\n\r\n", "continuation line"),
        (b"SIP/2.0 200 OK\r\nX: \xff\xfe\r\n\r\n", "not UTF-8"),
        (b"SIP/2.0 200 OK\r\nContent-Length: 10\r\n\r\nabc", "Content-Length says 10"),
        (b"SIP/2.0 200 OK\r\nContent-Length: ten\r\n\r\n", "bad Content-Length"),
        (b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n", "missing Via"),
    ],
)
def test_defects_raise_sip_parse_error_naming_them(raw: bytes, defect: str) -> None:
    with pytest.raises(SipParseError, match=defect):
        parse_message(raw)


def test_missing_cseq_number_is_a_parse_error() -> None:
    raw = (DATA / "kamailio_100_trying.sip").read_bytes().replace(b"CSeq: 1 INVITE", b"CSeq: INVITE")
    with pytest.raises(SipParseError, match="bad CSeq"):
        parse_message(raw)


def test_encode_fixes_content_length_to_the_body() -> None:
    req = SipRequest("OPTIONS", "sip:a@b", Headers([("Content-Length", "99")]), b"abc")
    assert b"Content-Length: 3\r\n\r\nabc" in req.encode()


def test_stream_framer_cuts_messages_and_keeps_partial_ones() -> None:
    one = (DATA / "baresip_200_answer_via_kamailio.sip").read_bytes()
    two = (DATA / "kamailio_100_trying.sip").read_bytes()
    stream = b"\r\n\r\n" + one + two
    framer = StreamFramer()
    out: list[bytes] = []
    for i in range(0, len(stream), 7):  # arbitrary chunking, as TCP may deliver
        out += framer.feed(stream[i : i + 7])
    assert out == [one, two]


def test_stream_framer_refuses_a_message_without_length() -> None:
    with pytest.raises(SipParseError, match="Content-Length"):
        StreamFramer().feed(b"SIP/2.0 200 OK\r\nVia: x\r\n\r\n")


def test_name_addr_and_uri() -> None:
    addr = NameAddr.parse('"Operator, Sales" <sip:79001234567@trunk.example:5070;user=phone>;tag=abc')
    assert (addr.display, addr.uri, addr.tag) == ("Operator, Sales", "sip:79001234567@trunk.example:5070;user=phone",
                                                  "abc")
    uri = SipUri.parse(addr.uri)
    assert (uri.user, uri.host, uri.port, uri.params) == ("79001234567", "trunk.example", 5070, {"user": "phone"})
    assert SipUri.parse("sip:[2001:db8::1]:5062").host == "2001:db8::1"
    with pytest.raises(SipParseError):
        SipUri.parse("tel:+79001234567")
    with pytest.raises(SipParseError):
        NameAddr.parse("<sip:unclosed")


def test_make_response_echoes_the_transaction_headers_and_adds_our_tag() -> None:
    req = parse_message((DATA / "perezvon_bye.sip").read_bytes())
    assert isinstance(req, SipRequest)
    resp = make_response(req, 200)
    again = parse_message(resp.encode())
    assert isinstance(again, SipResponse)
    assert again.status == 200 and again.reason == "OK"
    assert again.top_via.branch == req.top_via.branch
    assert again.cseq == (req.cseq[0], "BYE")
    options = parse_message(
        b"OPTIONS sip:x@y SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKq\r\nFrom: <sip:a@b>;tag=1\r\n"
        b"To: <sip:x@y>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")
    assert isinstance(options, SipRequest)
    assert make_response(options, 200, to_tag="ours").to_addr.tag == "ours"


TORTURE = DATA / "torture"  # RFC 4475 messages (Content-Length fitted where the body was retyped)


def test_rfc4475_wsinv_whitespace_and_folding_everywhere() -> None:
    msg = parse_message((TORTURE / "valid_wsinv.sip").read_bytes())
    assert isinstance(msg, SipRequest)
    assert msg.cseq == (9, "INVITE")
    assert msg.to_addr.tag == "1918181833n"
    assert msg.from_addr.tag == "98asjd8"
    assert (msg.top_via.transport, msg.top_via.host, msg.top_via.branch) == ("UDP", "192.0.2.2", "390skdjuw")
    vias = [Via.parse(v) for v in msg.headers.get_all("Via")]
    assert [(v.transport, v.host, v.branch) for v in vias] == [
        ("UDP", "192.0.2.2", "390skdjuw"), ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", "z9hG4bK30239")]
    assert msg.headers.get("NewFangledHeader") == "newfangled value continued newfangled value"
    assert msg.body.startswith(b"v=0") and msg.body.endswith(b"a=rtpmap:31 LPC\r\n")
    assert parse_message(msg.encode()).cseq == (9, "INVITE")  # what we write back parses the same


@pytest.mark.parametrize(
    ("name", "defect"),
    [("invalid_ncl", "bad Content-Length"), ("invalid_badvers", "unsupported version"),
     ("invalid_insuf", "missing Call-ID"), ("invalid_clerr", "Content-Length says 9999")],
)
def test_rfc4475_invalid_messages_are_refused(name: str, defect: str) -> None:
    with pytest.raises(SipParseError, match=defect):
        parse_message((TORTURE / f"{name}.sip").read_bytes())
