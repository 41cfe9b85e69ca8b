"""RFC 3261 §17 transactions on a fake clock: `now` is just a number, nothing sleeps."""

from __future__ import annotations

from perezvon.calls.dialer.sip.dialog import new_invite
from perezvon.calls.dialer.sip.message import Headers, SipRequest, SipResponse, make_response, parse_message
from perezvon.calls.dialer.sip.transaction import (
    T1,
    T2,
    ClientInviteTransaction,
    ClientNonInviteTransaction,
    ResponseEvent,
    ServerTransaction,
    State,
    TimeoutEvent,
)


def invite() -> SipRequest:
    return new_invite(target_uri="sip:79001234567@192.0.2.10", from_uri="sip:perezvon@192.0.2.10",
                      from_display="", contact_uri="sip:perezvon@192.0.2.1:5060", transport="UDP",
                      local_host="192.0.2.1", local_port=5060, body=b"v=0\r\n")


def reply(req: SipRequest, status: int, tag: str | None = "callee") -> SipResponse:
    return make_response(req, status, to_tag=tag)


def run_until(tx, end: float) -> list[float]:
    """Fire timers as they come due up to `end`; return the times something was sent."""
    tx.outbox.clear()
    sent: list[float] = []
    while (at := tx.get_timer()) is not None and at <= end:
        tx.handle_timer(at)
        if tx.outbox:
            sent.append(round(at, 3))
            tx.outbox.clear()
    return sent


def test_invite_retransmits_with_doubling_intervals_then_timer_b() -> None:
    tx = ClientInviteTransaction(invite(), now=0.0)
    assert tx.outbox and tx.state is State.CALLING
    sent = run_until(tx, 64 * T1)
    # Timer A: T1, 2T1, 4T1… after the first send; Timer B ends it at 64*T1 (32 s).
    assert sent == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert tx.terminated
    assert isinstance(tx.events[-1], TimeoutEvent)


def test_invite_over_tcp_is_never_retransmitted() -> None:
    tx = ClientInviteTransaction(invite(), now=0.0, reliable=True)
    assert run_until(tx, 31.0) == []
    tx.handle_timer(32.0)
    assert tx.terminated


def test_provisional_stops_retransmission_and_timer_b() -> None:
    req = invite()
    tx = ClientInviteTransaction(req, now=0.0)
    tx.receive_response(reply(req, 180), now=0.2)
    assert tx.state is State.PROCEEDING
    assert run_until(tx, 120.0) == []
    assert not tx.terminated  # ringing may last: only the TU's ring timeout (CANCEL) ends it
    assert [type(e) for e in tx.events] == [ResponseEvent]


def test_error_response_is_acked_by_the_transaction_on_the_same_branch() -> None:
    req = invite()
    tx = ClientInviteTransaction(req, now=0.0)
    tx.outbox.clear()
    busy = reply(req, 486)
    tx.receive_response(busy, now=1.0)
    assert tx.state is State.COMPLETED
    (ack,) = tx.outbox
    assert ack.method == "ACK" and ack.uri == req.uri
    assert ack.top_via.branch == req.top_via.branch  # §17.1.1.3: same transaction
    assert ack.cseq == (1, "ACK") and ack.to_addr.tag == "callee"
    # The 486 retransmitted (our ACK was lost): ACK again, without telling the TU twice.
    tx.outbox.clear()
    tx.receive_response(busy, now=1.5)
    assert len(tx.outbox) == 1 and len(tx.events) == 1
    tx.handle_timer(1.0 + 32.0)  # Timer D
    assert tx.terminated


def test_2xx_terminates_at_once_and_is_left_to_the_tu() -> None:
    req = invite()
    tx = ClientInviteTransaction(req, now=0.0)
    tx.outbox.clear()
    tx.receive_response(reply(req, 200), now=0.3)
    assert tx.terminated and tx.outbox == []
    assert tx.events[0].response.status == 200


def test_non_invite_retransmits_up_to_t2_then_timer_f() -> None:
    bye = parse_message(
        b"BYE sip:x@192.0.2.2 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKbye\r\n"
        b"From: <sip:a@b>;tag=1\r\nTo: <sip:x@y>;tag=2\r\nCall-ID: c\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n")
    assert isinstance(bye, SipRequest)
    tx = ClientNonInviteTransaction(bye, now=0.0)
    sent = run_until(tx, 64 * T1)
    intervals = [round(b - a, 3) for a, b in zip([0.0] + sent, sent, strict=False)]
    assert intervals[:4] == [0.5, 1.0, 2.0, 4.0]
    assert max(intervals) == T2  # capped at T2
    assert tx.terminated and isinstance(tx.events[-1], TimeoutEvent)


def test_non_invite_proceeding_retransmits_every_t2_and_final_absorbs_repeats() -> None:
    bye = parse_message(
        b"BYE sip:x@192.0.2.2 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKbye2\r\n"
        b"From: <sip:a@b>;tag=1\r\nTo: <sip:x@y>;tag=2\r\nCall-ID: c\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n")
    assert isinstance(bye, SipRequest)
    tx = ClientNonInviteTransaction(bye, now=0.0)
    tx.receive_response(reply(bye, 100, tag=None), now=0.1)
    assert tx.state is State.PROCEEDING
    sent = run_until(tx, 10.0)
    assert sent[1] - sent[0] == T2
    tx.receive_response(reply(bye, 200), now=10.0)
    tx.receive_response(reply(bye, 200), now=10.1)
    assert [e.response.status for e in tx.events] == [100, 200]
    tx.handle_timer(10.0 + 5.0)  # Timer K = T4
    assert tx.terminated


def test_server_invite_2xx_is_retransmitted_until_ack() -> None:
    req = invite()
    tx = ServerTransaction(req, now=0.0)
    tx.respond(reply(req, 200), now=0.0)
    tx.outbox.clear()
    assert run_until(tx, 2.0) == [0.5, 1.5]
    ack = SipRequest("ACK", req.uri, Headers(list(req.headers.items)))
    tx.receive_request(ack, now=2.0)
    assert tx.acked and tx.state is State.CONFIRMED
    assert run_until(tx, 10.0) == []
    assert tx.terminated


def test_server_non_invite_repeats_its_answer_to_a_retransmitted_request() -> None:
    req = invite()
    bye = SipRequest("BYE", req.uri, Headers(list(req.headers.items)))
    tx = ServerTransaction(bye, now=0.0)
    tx.respond(reply(bye, 200), now=0.0)
    tx.outbox.clear()
    tx.receive_request(bye, now=0.4)
    assert [r.status for r in tx.outbox] == [200]
    tx.handle_timer(32.0)  # Timer J
    assert tx.terminated
