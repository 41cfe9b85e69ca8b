"""The attempt state machine, step by step, and the request life cycle."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from perezvon.domain import callback as cb
from perezvon.domain.callback import Ring


def plan(*phones: str, announcement: bool = True, confirm: bool = False) -> cb.AttemptPlan:
    return cb.AttemptPlan(tuple(phones), announcement=announcement, operator_confirm=confirm)


def test_it_walks_the_happy_path_operator_announcement_visitor_bridge() -> None:
    state, action = cb.start(plan("79990000010"))
    assert action == cb.RingOperator("79990000010")
    state, action = cb.step(state, cb.OperatorRang(Ring.ANSWERED))
    assert action == cb.Announce(confirm=False)
    state, action = cb.step(state, cb.Announced())
    assert action == cb.RingClient()
    state, action = cb.step(state, cb.ClientRang(Ring.ANSWERED))
    assert action == cb.Bridge()
    state, action = cb.step(state, cb.BridgeEnded())
    assert action == cb.Finish(cb.CONNECTED) and state.phase is cb.Phase.DONE and state.outcome == cb.CONNECTED


def test_it_skips_the_announcement_when_switched_off() -> None:
    state, _ = cb.start(plan("79990000010", announcement=False))
    _, action = cb.step(state, cb.OperatorRang(Ring.ANSWERED))
    assert action == cb.RingClient()


def test_it_asks_for_a_key_and_goes_on_only_on_1() -> None:
    state, _ = cb.start(plan("79990000010", "79990000020", confirm=True))
    state, action = cb.step(state, cb.OperatorRang(Ring.ANSWERED))
    assert action == cb.Announce(confirm=True)
    state, action = cb.step(state, cb.Announced())
    assert action == cb.AwaitDigit()
    accepted, action = cb.step(state, cb.DigitRead("1"))
    assert action == cb.RingClient()
    declined, action = cb.step(state, cb.DigitRead("5"))
    assert action == cb.DropOperator("79990000020")
    declined, action = cb.step(declined, cb.Dropped())
    assert action == cb.RingOperator("79990000020")


def test_confirmation_works_even_with_the_announcement_off() -> None:
    state, _ = cb.start(plan("79990000010", announcement=False, confirm=True))
    _, action = cb.step(state, cb.OperatorRang(Ring.ANSWERED))
    assert action == cb.Announce(confirm=True)


def test_silence_from_the_last_operator_is_operator_no_answer() -> None:
    state, _ = cb.start(plan("79990000010", confirm=True))
    state, _ = cb.step(state, cb.OperatorRang(Ring.ANSWERED))
    state, _ = cb.step(state, cb.Announced())
    _, action = cb.step(state, cb.DigitRead(None))
    assert action == cb.Finish(cb.OPERATOR_NO_ANSWER)


def test_it_tries_operator_phones_in_order() -> None:
    state, action = cb.start(plan("a1", "a2", "a3"))
    assert action == cb.RingOperator("a1")
    state, action = cb.step(state, cb.OperatorRang(Ring.NO_ANSWER))
    assert action == cb.RingOperator("a2")
    state, action = cb.step(state, cb.OperatorRang(Ring.BUSY))
    assert action == cb.RingOperator("a3")
    state, action = cb.step(state, cb.OperatorRang(Ring.ANSWERED))
    assert action == cb.Announce(confirm=False) and state.current_phone == "a3"


@pytest.mark.parametrize(
    ("results", "outcome"),
    [
        ([Ring.BUSY], cb.OPERATOR_BUSY),
        ([Ring.BUSY, Ring.BUSY], cb.OPERATOR_BUSY),
        ([Ring.NO_ANSWER], cb.OPERATOR_NO_ANSWER),
        ([Ring.BUSY, Ring.NO_ANSWER], cb.OPERATOR_NO_ANSWER),
        ([Ring.REJECTED], cb.OPERATOR_NO_ANSWER),
        ([Ring.UNAVAILABLE, Ring.BUSY], cb.OPERATOR_NO_ANSWER),
        ([Ring.ERROR], cb.ERROR),
        ([Ring.ERROR, Ring.BUSY], cb.OPERATOR_BUSY),
    ],
)
def test_when_no_operator_takes_the_call_the_outcome_says_why(results: list[Ring], outcome: str) -> None:
    state, action = cb.start(plan(*(f"p{i}" for i in range(len(results)))))
    for result in results:
        assert isinstance(action, cb.RingOperator)
        state, action = cb.step(state, cb.OperatorRang(result))
    assert action == cb.Finish(outcome)


@pytest.mark.parametrize(
    ("result", "outcome"),
    [
        (Ring.BUSY, cb.CLIENT_BUSY),
        (Ring.NO_ANSWER, cb.CLIENT_NO_ANSWER),
        (Ring.REJECTED, cb.CLIENT_REJECTED),
        (Ring.INVALID_NUMBER, cb.CLIENT_INVALID_NUMBER),
        (Ring.UNAVAILABLE, cb.CLIENT_NO_ANSWER),
        (Ring.ERROR, cb.ERROR),
    ],
)
def test_a_visitor_who_does_not_answer_ends_the_attempt(result: Ring, outcome: str) -> None:
    state, _ = cb.start(plan("79990000010", announcement=False))
    state, _ = cb.step(state, cb.OperatorRang(Ring.ANSWERED))
    _, action = cb.step(state, cb.ClientRang(result))
    assert action == cb.Finish(outcome)


def test_an_operator_who_hangs_up_during_the_announcement_passes_to_the_next_phone() -> None:
    state, _ = cb.start(plan("a1", "a2"))
    state, _ = cb.step(state, cb.OperatorRang(Ring.ANSWERED))
    state, action = cb.step(state, cb.Announced(operator_left=True))
    assert action == cb.DropOperator("a2")


def test_an_operator_gone_when_the_visitor_answers_is_not_bridged() -> None:
    state, _ = cb.start(plan("a1", announcement=False))
    state, _ = cb.step(state, cb.OperatorRang(Ring.ANSWERED))
    _, action = cb.step(state, cb.ClientRang(Ring.ANSWERED, operator_left=True))
    assert action == cb.Finish(cb.OPERATOR_NO_ANSWER)


def screened_plan() -> cb.AttemptState:
    state, _ = cb.start(cb.AttemptPlan(("a1",), announcement=False, voicemail_detection=True))
    state, _ = cb.step(state, cb.OperatorRang(Ring.ANSWERED))
    state, action = cb.step(state, cb.ClientRang(Ring.ANSWERED))
    assert action == cb.Screen()  # listened to before anything is bridged
    return state


def test_an_answering_machine_is_never_bridged() -> None:
    state, action = cb.step(screened_plan(), cb.Screened(machine=True))
    assert action == cb.Finish(cb.CLIENT_VOICEMAIL) and state.outcome == cb.CLIENT_VOICEMAIL


def test_a_person_is_bridged_after_screening() -> None:
    _, action = cb.step(screened_plan(), cb.Screened(machine=False))
    assert action == cb.Bridge()
    _, action = cb.step(screened_plan(), cb.Screened(machine=False, operator_left=True))
    assert action == cb.Finish(cb.OPERATOR_NO_ANSWER)


def test_no_operator_phone_at_all_is_an_error_without_dialling() -> None:
    state, action = cb.start(plan())
    assert action == cb.Finish(cb.ERROR) and state.phase is cb.Phase.DONE


def test_interrupt_and_fail_end_any_phase() -> None:
    state, _ = cb.start(plan("a1"))
    state, _ = cb.step(state, cb.OperatorRang(Ring.ANSWERED))
    assert cb.interrupt(state)[1] == cb.Finish(cb.INTERRUPTED)
    assert cb.fail(state)[1] == cb.Finish(cb.ERROR)


def test_an_event_out_of_order_is_refused() -> None:
    state, _ = cb.start(plan("a1"))
    with pytest.raises(cb.StepError):
        cb.step(state, cb.BridgeEnded())
    with pytest.raises(cb.StepError):
        cb.step(state, cb.ClientRang(Ring.ANSWERED))


def test_outcomes_and_statuses_are_exactly_the_documented_ones() -> None:
    assert cb.STATUSES == ("pending", "dialing", "completed", "failed", "cancelled")
    assert set(cb.OUTCOMES) == {"connected", "operator_no_answer", "operator_busy", "client_no_answer",
                                "client_busy", "client_voicemail", "client_rejected", "client_invalid_number",
                                "interrupted", "error"}


@pytest.mark.parametrize(
    ("current", "new"),
    [("pending", "dialing"), ("pending", "cancelled"), ("dialing", "pending"), ("dialing", "completed"),
     ("dialing", "failed")],
)
def test_allowed_request_moves(current: str, new: str) -> None:
    assert cb.request_transition(current, new) == new


@pytest.mark.parametrize(
    ("current", "new"),
    [("pending", "completed"), ("dialing", "cancelled"), ("completed", "pending"), ("failed", "dialing"),
     ("cancelled", "pending"), ("completed", "failed")],
)
def test_final_statuses_are_final_and_no_step_is_skipped(current: str, new: str) -> None:
    with pytest.raises(cb.TransitionError):
        cb.request_transition(current, new)


rings = st.sampled_from(list(Ring))


@given(
    phones=st.integers(0, 4),
    announcement=st.booleans(),
    confirm=st.booleans(),
    operator_results=st.lists(rings, min_size=5, max_size=5),
    digits=st.lists(st.sampled_from(["1", "2", "*", None]), min_size=5, max_size=5),
    left=st.lists(st.booleans(), min_size=5, max_size=5),
    client=rings,
    client_operator_left=st.booleans(),
    screening=st.booleans(),
    machine=st.booleans(),
)
def test_any_run_ends_once_with_a_documented_outcome(
    phones, announcement, confirm, operator_results, digits, left, client, client_operator_left, screening, machine
) -> None:
    """Whatever the lines do, an attempt ends in one Finish, rings each phone at most once, and only
    a bridge can make it ``connected``."""
    state, action = cb.start(cb.AttemptPlan(tuple(f"p{i}" for i in range(phones)), announcement=announcement,
                                            operator_confirm=confirm, voicemail_detection=screening))
    rung: list[str] = []
    bridged = False
    for _ in range(50):
        if isinstance(action, cb.Finish):
            break
        if isinstance(action, cb.RingOperator):
            rung.append(action.phone)
            event: cb.Event = cb.OperatorRang(operator_results[len(rung) - 1])
        elif isinstance(action, cb.Announce):
            event = cb.Announced(operator_left=left[len(rung) - 1])
        elif isinstance(action, cb.AwaitDigit):
            event = cb.DigitRead(digits[len(rung) - 1])
        elif isinstance(action, cb.DropOperator):
            event = cb.Dropped()
        elif isinstance(action, cb.RingClient):
            event = cb.ClientRang(client, operator_left=client_operator_left)
        elif isinstance(action, cb.Screen):
            event = cb.Screened(machine=machine)
        else:
            assert isinstance(action, cb.Bridge)
            bridged = True
            event = cb.BridgeEnded()
        state, action = cb.step(state, event)
    assert isinstance(action, cb.Finish) and action.outcome in cb.OUTCOMES
    assert state.outcome == action.outcome and state.phase is cb.Phase.DONE
    assert rung == [f"p{i}" for i in range(len(rung))] and len(rung) <= phones
    assert (action.outcome == cb.CONNECTED) == bridged
    if phones == 0:
        assert action.outcome == cb.ERROR


def test_an_operator_phone_that_declines_passes_to_the_next_one() -> None:
    state, action = cb.start(plan("a1", "a2", announcement=False))
    state, action = cb.step(state, cb.OperatorRang(Ring.REJECTED))  # 603 from the first phone
    assert action == cb.RingOperator("a2") and state.operator_misses == ("declined",)
    state, action = cb.step(state, cb.OperatorRang(Ring.INVALID_NUMBER))  # a wrong operator number
    assert action == cb.Finish(cb.OPERATOR_NO_ANSWER)  # someone could have answered: redialled
