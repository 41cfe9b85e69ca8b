"""Digest authentication against the RFCs' own worked examples and a captured sipp challenge."""

from __future__ import annotations

from pathlib import Path

import pytest

from perezvon.calls.dialer.sip.digest import (
    Challenge,
    authorization,
    compute_response,
    parse_challenge,
    verify,
)
from perezvon.calls.dialer.sip.message import SipParseError, parse_message

DATA = Path(__file__).parent / "data"


def test_rfc2617_md5_qop_auth_example() -> None:
    challenge = Challenge("testrealm@host.com", "dcd98b7102dd2f0e8b11d0f600bfb0c093", qop=("auth",),
                          opaque="5ccc069c403ebaf9f0171e9517f40e41")
    response = compute_response(challenge, method="GET", uri="/dir/index.html", username="Mufasa",
                                password="Circle Of Life", nc=1, cnonce="0a4f113b")
    assert response == "6629fae49393a05397450978507c4ef1"


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ],
)
def test_rfc7616_examples(algorithm: str, expected: str) -> None:
    challenge = Challenge("http-auth@example.org", "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
                          algorithm=algorithm, qop=("auth",))
    response = compute_response(challenge, method="GET", uri="/dir/index.html", username="Mufasa",
                                password="Circle of Life", nc=1,
                                cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ")
    assert response == expected


def test_captured_sipp_challenge_parses() -> None:
    msg = parse_message((DATA / "sipp_401_qop_auth.sip").read_bytes())
    challenge = parse_challenge(msg.need("WWW-Authenticate"))
    assert challenge == Challenge("perezvon.test", "15647n1c0ffee", "MD5", ("auth",), "op4que")
    assert challenge.supported


def test_quoted_commas_and_qop_lists() -> None:
    c = parse_challenge('Digest realm="a, b", nonce="n=1,2", qop="auth-int,auth", algorithm=SHA-256, stale=TRUE')
    assert (c.realm, c.nonce, c.qop, c.algorithm, c.stale) == ("a, b", "n=1,2", ("auth-int", "auth"), "SHA-256",
                                                               True)


def test_authorization_header_verifies_and_wrong_password_does_not() -> None:
    challenge = parse_challenge('Digest realm="pbx", nonce="abc", qop="auth", opaque="o"')
    header = authorization(challenge, method="INVITE", uri="sip:7900@pbx", username="site1", password="pw",
                           cnonce="c1")
    assert header.startswith("Digest ") and 'opaque="o"' in header and "nc=00000001" in header
    assert verify(header, method="INVITE", password="pw")
    assert not verify(header, method="INVITE", password="other")
    assert not verify(header, method="BYE", password="pw")


def test_no_qop_uses_the_rfc2069_form() -> None:
    challenge = parse_challenge('Digest realm="pbx", nonce="abc"')
    header = authorization(challenge, method="INVITE", uri="sip:1@pbx", username="u", password="p")
    assert "qop" not in header and "cnonce" not in header
    assert verify(header, method="INVITE", password="p")


def test_unsupported_or_broken_challenges() -> None:
    with pytest.raises(ValueError, match="unsupported"):
        authorization(parse_challenge('Digest realm="r", nonce="n", algorithm=MD5-sess, qop="auth-int"'),
                      method="INVITE", uri="sip:x", username="u", password="p")
    for bad in ('Basic realm="r"', 'Digest realm="r"', 'Digest realm="r, nonce="n'):
        with pytest.raises(SipParseError):
            parse_challenge(bad)
