"""Our own in-dialog requests on a fake clock: the re-INVITE (what direct media is made of) and the OPTIONS ping.

The call is answered as in test_sip_call.py; then the test plays the far end of the re-INVITE.
"""

from __future__ import annotations

import pytest

from calls.sip.test_sip_call import PHONE, SDP, answered, events, from_phone, methods, new_call, reply, run_until, sent
from perezvon.calls.dialer.sip.call import CallState, Credentials, PingFailed, ReinviteAnswered, ReinviteFailed
from perezvon.calls.dialer.sip.message import SipRequest, make_response
from perezvon.calls.dialer.sip.transaction import T1

OFFER = (
    b"v=0\r\no=perezvon 7 2 IN IP4 198.51.100.5\r\ns=-\r\nc=IN IP4 198.51.100.5\r\nt=0 0\r\nm=audio 6000 RTP/AVP 8\r\n"
)


def reinvited(now: float = 5.0):  # type: ignore[no-untyped-def]
    call, invite = answered()
    call.reinvite(now, OFFER)
    (tx,) = sent(call)
    assert isinstance(tx.message, SipRequest)
    return call, invite, tx


def test_the_reinvite_carries_the_offer_in_the_dialog_to_the_far_end() -> None:
    call, invite, tx = reinvited()
    msg = tx.message
    assert isinstance(msg, SipRequest) and msg.method == "INVITE"
    assert tx.dest == PHONE  # the remote target, not the trunk
    assert msg.body == OFFER and msg.headers.get("Content-Type") == "application/sdp"
    assert msg.call_id == invite.call_id and msg.cseq == (invite.cseq[0] + 1, "INVITE")
    assert msg.to_addr.tag == call.dialog.remote_tag  # type: ignore[union-attr]
    assert msg.top_via.branch != invite.top_via.branch and msg.headers.get("Contact")


def test_its_200_is_acked_with_its_cseq_and_reaches_the_user() -> None:
    call, invite, tx = reinvited()
    assert isinstance(tx.message, SipRequest)
    answer = SDP.replace(b"4000", b"4002")
    call.receive_response(reply(tx.message, 200, body=answer), 5.1)
    (ack,) = sent(call)
    assert isinstance(ack.message, SipRequest) and ack.message.method == "ACK"
    assert ack.message.cseq == (tx.message.cseq[0], "ACK") and ack.dest == PHONE
    (news,) = events(call)
    assert isinstance(news, ReinviteAnswered) and news.response.body == answer
    assert call.state is CallState.CONFIRMED
    # A retransmitted 200 (our ACK was lost) gets the same ACK again, not the first INVITE's.
    call.receive_response(reply(tx.message, 200, body=answer), 5.6)
    (again,) = sent(call)
    assert again.message is ack.message and not events(call)


def test_it_is_retransmitted_over_udp_until_answered() -> None:
    call, _, tx = reinvited(5.0)
    assert [m for _, m in run_until(call, 5.0 + 3.5 * T1 * 2)] == ["INVITE", "INVITE", "INVITE"]


@pytest.mark.parametrize("status", [488, 491, 403, 500, 408])
def test_a_refusal_is_acked_and_leaves_the_call_up(status: int) -> None:
    call, _, tx = reinvited()
    assert isinstance(tx.message, SipRequest)
    call.receive_response(reply(tx.message, 100), 5.05)
    call.receive_response(reply(tx.message, status), 5.1)
    assert methods(sent(call)) == ["ACK"]  # the transaction's own ACK of a non-2xx
    (news,) = events(call)
    assert isinstance(news, ReinviteFailed) and news.status == status
    assert call.state is CallState.CONFIRMED
    call.reinvite(6.0, OFFER)  # and a later offer may go
    assert methods(sent(call)) == ["INVITE"]


def test_no_answer_at_all_is_a_timeout_and_the_call_stays_up() -> None:
    call, _, _ = reinvited(5.0)
    run_until(call, 5.0 + 64 * T1)
    (news,) = events(call)
    assert isinstance(news, ReinviteFailed) and news.status is None
    assert call.state is CallState.CONFIRMED


def test_glare_their_reinvite_while_ours_is_pending_gets_491() -> None:
    call, _, tx = reinvited()
    theirs = from_phone(call, "INVITE", 2, body=SDP)
    call.receive_request(theirs, PHONE, "UDP", 5.05)
    (answer,) = sent(call)
    assert answer.message.status == 491 and not events(call)  # type: ignore[union-attr]
    # ...and ours meets theirs: a 491 for us too is a failure the user falls back from.
    assert isinstance(tx.message, SipRequest)
    call.receive_response(reply(tx.message, 491), 5.1)
    assert isinstance(events(call)[-1], ReinviteFailed)


def test_no_reinvite_while_theirs_is_unanswered_or_before_the_answer() -> None:
    call, _ = answered()
    call.receive_request(from_phone(call, "INVITE", 2, body=SDP), PHONE, "UDP", 5.0)
    (request_news,) = events(call)
    call.reinvite(5.1, OFFER)
    assert not sent(call)
    (news,) = events(call)
    assert isinstance(news, ReinviteFailed) and news.status == 491
    call.respond(request_news.request, make_response(request_news.request, 488), 5.2)  # type: ignore[attr-defined]
    sent(call)
    call.hangup(6.0)
    sent(call)
    call.reinvite(6.1, OFFER)
    (news,) = events(call)
    assert isinstance(news, ReinviteFailed) and news.status is None


def test_a_challenged_reinvite_is_sent_again_with_credentials() -> None:
    call = new_call(credentials=Credentials("alice", "secret"))
    call.ring(0.0)
    (inv,) = sent(call)
    assert isinstance(inv.message, SipRequest)
    call.receive_response(reply(inv.message, 200, body=SDP), 0.5)
    sent(call)
    events(call)
    call.reinvite(1.0, OFFER)
    (tx,) = sent(call)
    assert isinstance(tx.message, SipRequest)
    challenge = [("WWW-Authenticate", 'Digest realm="t", nonce="n1"')]
    call.receive_response(reply(tx.message, 401, extra=challenge), 1.1)
    out = sent(call)
    assert methods(out) == ["ACK", "INVITE"]
    retry = out[1].message
    assert isinstance(retry, SipRequest) and retry.headers.get("Authorization") and retry.body == OFFER
    assert retry.cseq[0] == tx.message.cseq[0] + 1 and not events(call)


@pytest.mark.parametrize(("status", "gone"), [(200, False), (405, False), (481, True), (408, True)])
def test_a_ping_is_an_in_dialog_options_and_only_481_or_408_says_the_dialog_is_gone(status: int, gone: bool) -> None:
    call, _ = answered()
    call.ping(5.0)
    (tx,) = sent(call)
    assert isinstance(tx.message, SipRequest) and tx.message.method == "OPTIONS" and tx.dest == PHONE
    assert tx.message.to_addr.tag == call.dialog.remote_tag  # type: ignore[union-attr]
    call.receive_response(reply(tx.message, status), 5.1)
    news = events(call)
    assert [type(n) for n in news] == ([PingFailed] if gone else [])
    assert call.state is CallState.CONFIRMED  # the user decides to hang up


def test_an_unanswered_ping_says_the_dialog_is_gone() -> None:
    call, _ = answered()
    call.ping(5.0)
    sent(call)
    run_until(call, 5.0 + 64 * T1)
    assert [type(n) for n in events(call)] == [PingFailed]
