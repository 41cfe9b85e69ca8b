"""`OutboundCall` on a fake clock: `now` is a number, no sockets, nothing sleeps.

Each test plays the trunk by hand: it feeds the call responses and requests, and reads back what the
call would put on the wire (`messages_to_send`), what it tells its user (`next_event`) and when it
wants to be woken (`get_timer`).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perezvon.calls.dialer.base import RingResult
from perezvon.calls.dialer.sip.call import (
    BYE_WAIT_S,
    CANCEL_GRACE_S,
    LINGER_S,
    AckReceived,
    Answered,
    CallEvent,
    CallState,
    Credentials,
    NotAnswered,
    OutboundCall,
    Provisional,
    RequestReceived,
    Terminated,
)
from perezvon.calls.dialer.sip.dialog import new_invite
from perezvon.calls.dialer.sip.digest import verify
from perezvon.calls.dialer.sip.message import Headers, SipRequest, SipResponse, make_response
from perezvon.calls.dialer.sip.transactions import Transmit

TRUNK = ("192.0.2.10", 5060)
PHONE = ("192.0.2.20", 5070)  # the far end's Contact: in-dialog requests go there
SDP = b"v=0\r\no=- 1 1 IN IP4 192.0.2.20\r\ns=-\r\nc=IN IP4 192.0.2.20\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"


def new_call(*, credentials: Credentials | None = None, transport: str = "UDP") -> OutboundCall:
    invite = new_invite(
        target_uri="sip:79001234567@192.0.2.10",
        from_uri="sip:74950000000@192.0.2.10",
        from_display="",
        contact_uri="sip:perezvon@192.0.2.1:5060",
        transport=transport,
        local_host="192.0.2.1",
        local_port=5060,
        body=b"v=0\r\n",
    )
    return OutboundCall(invite, TRUNK, transport=transport, credentials=credentials)


def reply(
    req: SipRequest, status: int, *, body: bytes = b"", extra: list[tuple[str, str]] | None = None, tag: str = "callee"
) -> SipResponse:
    extra = list(extra or [])
    if 200 <= status < 300 and req.method == "INVITE":
        extra.append(("Contact", f"<sip:phone@{PHONE[0]}:{PHONE[1]}>"))
    return make_response(req, status, to_tag=tag, body=body, extra=extra)


def sent(call: OutboundCall) -> list[Transmit]:
    return call.messages_to_send()


def methods(out: list[Transmit]) -> list[str]:
    return [t.message.method if isinstance(t.message, SipRequest) else str(t.message.status) for t in out]


def events(call: OutboundCall) -> list[CallEvent]:
    out = []
    while (ev := call.next_event()) is not None:
        out.append(ev)
    return out


def run_until(call: OutboundCall, end: float) -> list[tuple[float, str]]:
    """Fire the call's deadlines as they come due up to `end`: (when, what was sent)."""
    log: list[tuple[float, str]] = []
    while (at := call.get_timer()) is not None and at <= end:
        call.handle_timer(at)
        log += [(round(at, 3), m) for m in methods(sent(call))]
    return log


def ringing(**kwargs: object) -> tuple[OutboundCall, SipRequest]:
    call = new_call(**kwargs)  # type: ignore[arg-type]
    call.ring(0.0, timeout=30.0)
    (invite,) = sent(call)
    assert invite.dest == TRUNK and isinstance(invite.message, SipRequest)
    return call, invite.message


def answered() -> tuple[OutboundCall, SipRequest]:
    call, invite = ringing()
    call.receive_response(reply(invite, 180), 0.1)
    call.receive_response(reply(invite, 200, body=SDP), 1.0)
    sent(call)
    events(call)
    assert call.state is CallState.CONFIRMED
    return call, invite


def from_phone(call: OutboundCall, method: str, cseq: int, *, body: bytes = b"", branch: str = "") -> SipRequest:
    """An in-dialog request from the far end."""
    assert call.dialog is not None
    headers = Headers(
        [
            ("Via", f"SIP/2.0/UDP {PHONE[0]}:{PHONE[1]};branch=z9hG4bK{branch or method}{cseq}"),
            ("From", f"<sip:79001234567@192.0.2.10>;tag={call.dialog.remote_tag}"),
            ("To", f"<sip:74950000000@192.0.2.10>;tag={call.dialog.local_tag}"),
            ("Call-ID", call.call_id),
            ("CSeq", f"{cseq} {method}"),
            ("Contact", f"<sip:phone@{PHONE[0]}:{PHONE[1]}>"),
        ]
    )
    return SipRequest(method, "sip:perezvon@192.0.2.1:5060", headers, body)


# --- ringing and answer ---------------------------------------------------------------------------------


def test_provisional_then_200_is_acked_by_the_dialog() -> None:
    call, invite = ringing()
    assert call.state is CallState.CALLING
    call.receive_response(reply(invite, 180), 0.1)
    assert call.state is CallState.EARLY and sent(call) == []
    assert [type(e) for e in events(call)] == [Provisional]
    ok = reply(invite, 200, body=SDP)
    call.receive_response(ok, 1.0)
    (ack,) = sent(call)
    assert isinstance(ack.message, SipRequest) and ack.message.method == "ACK"
    assert ack.message.cseq == (1, "ACK") and ack.message.to_addr.tag == "callee"
    assert ack.message.top_via.branch != invite.top_via.branch  # a 2xx's ACK is its own transaction
    assert ack.dest == PHONE
    assert events(call) == [Answered(ok)] and call.state is CallState.CONFIRMED
    assert call.get_timer() is None  # the ring deadline is gone with the answer


def test_183_with_sdp_reaches_the_user_with_its_body() -> None:
    call, invite = ringing()
    call.receive_response(reply(invite, 183, body=SDP, extra=[("Content-Type", "application/sdp")]), 0.2)
    (ev,) = events(call)
    assert isinstance(ev, Provisional) and ev.response.body == SDP


def test_invite_is_retransmitted_over_udp_until_a_provisional() -> None:
    call, invite = ringing()
    assert run_until(call, 2.0) == [(0.5, "INVITE"), (1.5, "INVITE")]  # timer A: T1, then doubling
    call.receive_response(reply(invite, 100), 2.0)
    assert run_until(call, 29.0) == []


def test_invite_over_tcp_is_sent_once() -> None:
    call, _ = ringing(transport="TCP")
    assert run_until(call, 29.0) == []


def test_a_retransmitted_200_gets_the_same_ack_again() -> None:
    call, invite = ringing()
    call.receive_response(reply(invite, 200, body=SDP), 0.5)
    (ack,) = sent(call)
    call.receive_response(reply(invite, 200, body=SDP), 1.0)  # our ACK was lost
    assert sent(call) == [ack]
    call.receive_response(reply(invite, 200, body=SDP, tag="fork2"), 1.2)  # another fork: not our dialog
    assert sent(call) == []


def test_a_2xx_without_contact_is_an_error() -> None:
    call, invite = ringing()
    call.receive_response(make_response(invite, 200, to_tag="callee"), 0.5)
    assert events(call) == [NotAnswered(RingResult.ERROR, 200), Terminated(False)]


# --- final responses and timeouts ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "result"),
    [(486, RingResult.BUSY), (603, RingResult.REJECTED), (404, RingResult.INVALID_NUMBER), (480, RingResult.NO_ANSWER)],
)
def test_a_final_refusal_is_acked_and_ends_the_call(status: int, result: RingResult) -> None:
    call, invite = ringing()
    call.receive_response(reply(invite, 180), 0.1)
    call.receive_response(reply(invite, status), 2.0)
    (ack,) = sent(call)
    assert ack.message.cseq == (1, "ACK") and ack.message.top_via.branch == invite.top_via.branch  # type: ignore[union-attr]
    assert events(call)[1:] == [NotAnswered(result, status), Terminated(False)]
    assert call.state is CallState.TERMINATED and call.final_status == status
    run_until(call, 2.0 + LINGER_S)
    assert call.finished


def test_no_answer_at_all_is_timer_b_and_unavailable() -> None:
    call = new_call()
    call.ring(0.0)  # no ring timeout: only the transaction's own
    sent(call)
    log = run_until(call, 40.0)
    assert [m for _, m in log] == ["INVITE"] * 6 and log[-1][0] == 31.5
    assert events(call) == [NotAnswered(RingResult.UNAVAILABLE, None), Terminated(False)]


def test_ring_timeout_after_a_provisional_cancels_and_waits_the_grace() -> None:
    call, invite = ringing()
    call.receive_response(reply(invite, 180), 0.1)
    events(call)
    assert call.get_timer() == 30.0
    assert run_until(call, 30.0) == [(30.0, "CANCEL")]
    assert call.state is CallState.CANCELLING and events(call) == []
    run_until(call, 30.0 + CANCEL_GRACE_S)  # no 487 came
    assert events(call) == [NotAnswered(RingResult.NO_ANSWER, None), Terminated(False)]


def test_ring_timeout_with_nothing_heard_sends_no_cancel_and_is_unavailable() -> None:
    call = new_call()
    call.ring(0.0, timeout=5.0)
    sent(call)
    log = run_until(call, 5.0 + CANCEL_GRACE_S)
    assert "CANCEL" not in [m for _, m in log]  # RFC 3261 §9.1
    assert events(call) == [NotAnswered(RingResult.UNAVAILABLE, None), Terminated(False)]


# --- CANCEL (§9.1) ---------------------------------------------------------------------------------------


def test_cancel_before_a_provisional_waits_for_one() -> None:
    call, invite = ringing()
    call.cancel(0.2)
    assert call.state is CallState.CANCELLING and sent(call) == []
    call.receive_response(reply(invite, 100), 0.3)
    (cancel,) = sent(call)
    assert cancel.message.method == "CANCEL" and cancel.message.cseq == (1, "CANCEL")  # type: ignore[union-attr]
    assert cancel.message.top_via.branch == invite.top_via.branch and cancel.dest == TRUNK
    call.receive_response(reply(invite, 180), 0.35)
    assert sent(call) == []  # one CANCEL, however many provisionals
    call.receive_response(reply(cancel.message, 200), 0.4)  # type: ignore[arg-type]
    call.receive_response(reply(invite, 487), 0.5)
    assert methods(sent(call)) == ["ACK"]
    assert events(call) == [NotAnswered(RingResult.NO_ANSWER, 487), Terminated(False)]
    assert call.final_status == 487


def test_cancel_after_a_provisional_goes_at_once() -> None:
    call, invite = ringing()
    call.receive_response(reply(invite, 180), 0.1)
    call.hangup(0.2)  # hanging up a ringing call is cancelling it
    assert methods(sent(call)) == ["CANCEL"]
    call.cancel(0.3)
    assert sent(call) == []


def test_a_200_racing_the_cancel_is_acked_then_byed() -> None:
    call, invite = ringing()
    call.receive_response(reply(invite, 180), 0.1)
    call.cancel(1.0)
    sent(call)
    call.receive_response(reply(invite, 200, body=SDP), 1.1)
    out = sent(call)
    assert methods(out) == ["ACK", "BYE"] and all(t.dest == PHONE for t in out)
    assert call.state is CallState.TERMINATING
    assert events(call)[1:] == [NotAnswered(RingResult.NO_ANSWER, 200)]
    call.receive_response(reply(out[1].message, 200), 1.2)  # type: ignore[arg-type]
    assert events(call) == [Terminated(False)]


def test_a_200_after_giving_up_is_still_acked_and_byed() -> None:
    call, invite = ringing()
    call.receive_response(reply(invite, 180), 0.1)
    call.cancel(1.0)
    run_until(call, 1.0 + CANCEL_GRACE_S)
    assert call.state is CallState.TERMINATED
    sent(call)
    call.receive_response(reply(invite, 200, body=SDP), 5.0)
    assert methods(sent(call)) == ["ACK", "BYE"]


# --- digest authentication -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "challenge", "answer"),
    [(401, "WWW-Authenticate", "Authorization"), (407, "Proxy-Authenticate", "Proxy-Authorization")],
)
def test_a_challenge_is_answered_once_with_a_new_transaction(status: int, challenge: str, answer: str) -> None:
    call, invite = ringing(credentials=Credentials("site1", "pw"))
    call.receive_response(reply(invite, status, extra=[(challenge, 'Digest realm="r", nonce="n1"')]), 0.1)
    ack, retry = sent(call)
    assert ack.message.method == "ACK" and ack.message.top_via.branch == invite.top_via.branch  # type: ignore[union-attr]
    again = retry.message
    assert isinstance(again, SipRequest) and again.method == "INVITE" and again.cseq == (2, "INVITE")
    assert again.call_id == invite.call_id and again.top_via.branch != invite.top_via.branch
    assert verify(again.need(answer), method="INVITE", password="pw")
    assert call.state is CallState.CALLING and events(call) == []
    call.receive_response(reply(again, status, extra=[(challenge, 'Digest realm="r", nonce="n2"')]), 0.2)
    assert methods(sent(call)) == ["ACK"]  # refused twice: no third try
    assert events(call) == [NotAnswered(RingResult.ERROR, status), Terminated(False)]  # our credentials


def test_a_stale_nonce_earns_one_more_try_and_no_credentials_none() -> None:
    call, invite = ringing(credentials=Credentials("site1", "pw"))
    call.receive_response(reply(invite, 401, extra=[("WWW-Authenticate", 'Digest realm="r", nonce="n1"')]), 0.1)
    again = sent(call)[1].message
    stale = 'Digest realm="r", nonce="n2", stale=true'
    call.receive_response(reply(again, 401, extra=[("WWW-Authenticate", stale)]), 0.2)  # type: ignore[arg-type]
    assert methods(sent(call)) == ["ACK", "INVITE"]
    bare, invite = ringing()
    bare.receive_response(reply(invite, 401, extra=[("WWW-Authenticate", 'Digest realm="r", nonce="n"')]), 0.1)
    assert events(bare) == [NotAnswered(RingResult.ERROR, 401), Terminated(False)]


def test_cancel_after_a_challenge_cancels_the_retried_invite() -> None:
    call, invite = ringing(credentials=Credentials("site1", "pw"))
    call.receive_response(reply(invite, 407, extra=[("Proxy-Authenticate", 'Digest realm="r", nonce="n"')]), 0.1)
    again = sent(call)[1].message
    call.cancel(0.2)
    assert sent(call) == []  # the retried INVITE has not been answered provisionally yet
    call.receive_response(reply(again, 180), 0.3)  # type: ignore[arg-type]
    (cancel,) = sent(call)
    assert cancel.message.cseq == (2, "CANCEL") and cancel.message.top_via.branch == again.top_via.branch  # type: ignore[union-attr]


# --- BYE both ways, in-dialog requests ----------------------------------------------------------------------


def test_our_bye_is_retransmitted_then_answered() -> None:
    call, _ = answered()
    call.hangup(5.0)
    (bye,) = sent(call)
    assert bye.message.method == "BYE" and bye.dest == PHONE and call.state is CallState.TERMINATING  # type: ignore[union-attr]
    assert run_until(call, 6.6) == [(5.5, "BYE"), (6.5, "BYE")]  # timer E
    call.receive_response(reply(bye.message, 200), 6.7)  # type: ignore[arg-type]
    assert events(call) == [Terminated(False)] and call.state is CallState.TERMINATED
    call.hangup(7.0)
    assert sent(call) == []  # once


def test_an_unanswered_bye_ends_the_call_after_the_wait_and_goes_on_alone() -> None:
    call, _ = answered()
    call.hangup(5.0)
    sent(call)
    run_until(call, 5.0 + BYE_WAIT_S)
    assert events(call) == [Terminated(False)]
    assert not call.finished  # the BYE transaction still retransmits until timer F
    run_until(call, 5.0 + 32.0 + LINGER_S)
    assert call.finished


def test_a_challenged_bye_is_sent_again_with_credentials() -> None:
    call, invite = ringing(credentials=Credentials("site1", "pw"))
    call.receive_response(reply(invite, 200, body=SDP), 0.5)
    sent(call)
    call.hangup(5.0)
    (bye,) = sent(call)
    call.receive_response(reply(bye.message, 401, extra=[("WWW-Authenticate", 'Digest realm="r", nonce="b"')]), 5.1)  # type: ignore[arg-type]
    (again,) = sent(call)
    assert again.message.cseq[0] == bye.message.cseq[0] + 1
    assert verify(again.message.need("Authorization"), method="BYE", password="pw")


def test_their_bye_is_answered_and_its_retransmission_too() -> None:
    call, _ = answered()
    bye = from_phone(call, "BYE", 2)
    call.receive_request(bye, PHONE, "UDP", 9.0)
    (ok,) = sent(call)
    assert isinstance(ok.message, SipResponse) and ok.message.status == 200 and ok.dest == PHONE
    assert events(call) == [Terminated(True)] and call.state is CallState.TERMINATED
    call.receive_request(bye, PHONE, "UDP", 9.5)
    assert sent(call) == [ok]


def test_a_reinvite_is_the_users_to_answer_and_its_200_repeats_until_the_ack() -> None:
    call, _ = answered()
    reinvite = from_phone(call, "INVITE", 2, body=SDP)
    call.receive_request(reinvite, PHONE, "UDP", 3.0)
    assert sent(call) == [] and events(call) == [RequestReceived(reinvite)]
    call.respond(reinvite, make_response(reinvite, 200), 3.1)
    assert methods(sent(call)) == ["200"]
    assert run_until(call, 4.7) == [(3.6, "200"), (4.6, "200")]  # timer G: T1, then doubling
    ack = from_phone(call, "ACK", 2, body=SDP, branch="ack")
    call.receive_request(ack, PHONE, "UDP", 4.7)
    assert events(call) == [AckReceived(ack)]
    assert run_until(call, 10.0) == []


def test_options_old_cseq_and_foreign_tags_get_their_answers() -> None:
    call, _ = answered()
    call.receive_request(from_phone(call, "OPTIONS", 5), PHONE, "UDP", 2.0)
    call.receive_request(from_phone(call, "INFO", 4), PHONE, "UDP", 2.1)  # older than the OPTIONS
    foreign = from_phone(call, "BYE", 6)
    foreign.headers.set("To", "<sip:74950000000@192.0.2.10>;tag=someone-else")
    call.receive_request(foreign, PHONE, "UDP", 2.2)
    call.receive_request(from_phone(call, "MESSAGE", 7), PHONE, "UDP", 2.3)
    assert methods(sent(call)) == ["200", "500", "481", "405"]
    assert call.state is CallState.CONFIRMED


# --- any order of inputs ------------------------------------------------------------------------------------

STEP = st.one_of(
    st.tuples(st.just("invite"), st.sampled_from([100, 180, 183, 200, 401, 407, 486, 487, 503, 603])),
    st.tuples(st.just("last"), st.sampled_from([200, 401, 481, 500])),  # to the last request we sent
    st.tuples(st.sampled_from(["cancel", "hangup", "bye", "reinvite"]), st.just(0)),
    st.tuples(st.just("wait"), st.sampled_from([0.1, 1, 5, 40])),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(STEP, max_size=12))
def test_any_order_of_inputs_keeps_the_rules(steps: list[tuple[str, float]]) -> None:
    """One ring outcome at most, one Terminated at most, and every call ends and is forgotten."""
    call = new_call(credentials=Credentials("site1", "pw"))
    now = 0.0
    call.ring(now, timeout=30.0)
    seen: list[CallEvent] = []
    last: SipRequest = call.invite
    for kind, arg in steps:
        now += 0.01
        if kind == "invite":
            extra = [("WWW-Authenticate" if arg == 401 else "Proxy-Authenticate", 'Digest realm="r", nonce="n"')]
            call.receive_response(reply(call.invite, int(arg), body=SDP, extra=extra), now)
        elif kind == "last":
            call.receive_response(reply(last, int(arg)), now)
        elif kind in ("bye", "reinvite") and call.dialog is not None:
            method = "BYE" if kind == "bye" else "INVITE"
            call.receive_request(from_phone(call, method, len(seen) + 2), PHONE, "UDP", now)
        elif kind in ("cancel", "hangup"):
            getattr(call, kind)(now)
        elif kind == "wait":
            now += arg
            run_until(call, now)
        last = next((t.message for t in reversed(sent(call)) if isinstance(t.message, SipRequest)), last)
        seen += events(call)
    call.hangup(now)
    run_until(call, now + 200.0)
    seen += events(call)
    outcomes = [e for e in seen if isinstance(e, (Answered, NotAnswered))]
    assert len(outcomes) <= 1 and sum(isinstance(e, Terminated) for e in seen) == 1
    assert call.finished and call.get_timer() is None


def test_a_trunk_the_transport_cannot_reach_is_unavailable_at_once() -> None:
    call = new_call(transport="TLS")
    call.ring(0.0, timeout=30)
    assert [t.transport for t in call.messages_to_send()] == ["TLS"]
    call.transport_error(("192.0.2.99", 5061), 0.1)  # another address: nothing happens
    assert call.next_event() is None
    call.transport_error(TRUNK, 0.2)  # connection refused, or its certificate was
    assert call.next_event() == NotAnswered(RingResult.UNAVAILABLE, None)
    assert call.next_event() == Terminated(by_remote=False)
    assert call.messages_to_send() == []  # over TLS nothing is retransmitted
