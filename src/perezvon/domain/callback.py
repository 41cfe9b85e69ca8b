"""The callback state machine (DESIGN §4, §5): pure, no I/O, time and call results passed in.

One *attempt* walks: ring an operator phone → (ask to press 1) → read the request out → ring the
visitor → bridge → hang-up. The attempt runner (``calls/attempts.py``) performs each ``Action`` this module
returns and feeds what happened back as an ``Event``; every decision lives here so it can be tested
step by step without a line.

A *request* walks ``pending → dialing → completed | failed | cancelled``: ``request_transition``
guards those moves, and ``reschedule_transition`` the one admin move out of a final status (calling a
finished request again). ``services/requests.py`` makes every status change through them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace

# -- request statuses and attempt outcomes (fixed: DESIGN §5) ----------------------------------------------

PENDING = "pending"
DIALING = "dialing"
COMPLETED = "completed"
FAILED = "failed"
CANCELLED = "cancelled"
STATUSES = (PENDING, DIALING, COMPLETED, FAILED, CANCELLED)
FINAL_STATUSES = frozenset({COMPLETED, FAILED, CANCELLED})

CONNECTED = "connected"
OPERATOR_NO_ANSWER = "operator_no_answer"
OPERATOR_BUSY = "operator_busy"
CLIENT_NO_ANSWER = "client_no_answer"
CLIENT_BUSY = "client_busy"
# An answering machine picked up the visitor's phone (DESIGN §7): never bridged, redialled like no answer.
CLIENT_VOICEMAIL = "client_voicemail"
CLIENT_REJECTED = "client_rejected"  # the visitor's side declined (403, 603): not called again
CLIENT_INVALID_NUMBER = "client_invalid_number"  # no such number (404, 484, 604): not called again
INTERRUPTED = "interrupted"
ERROR = "error"
OUTCOMES = (
    CONNECTED,
    OPERATOR_NO_ANSWER,
    OPERATOR_BUSY,
    CLIENT_NO_ANSWER,
    CLIENT_BUSY,
    CLIENT_VOICEMAIL,
    CLIENT_REJECTED,
    CLIENT_INVALID_NUMBER,
    INTERRUPTED,
    ERROR,
)

# The one table of a request's moves in the course of its calls (admin cancel included).
_MOVES = {
    PENDING: frozenset({DIALING, CANCELLED}),
    # dialing → pending: an attempt ended without success and a redial is planned.
    DIALING: frozenset({PENDING, COMPLETED, FAILED}),
}
# An admin's reschedule (DESIGN §7): a pending request gets a new due time, a finished one is called
# again. Only an explicit admin action leaves a final status; the calls themselves never do.
RESCHEDULABLE = frozenset({PENDING, *FINAL_STATUSES})


# A claim undone before any leg rang (DESIGN §7): the number was blacklisted or is no longer allowed
# (cancelled), or the site cannot pay a first minute (cancelled, or pending again on a "defer" site).
# Kept apart from _MOVES: an admin still cannot cancel a request being dialled.
WITHDRAWALS = {DIALING: frozenset({CANCELLED, PENDING})}


class TransitionError(ValueError):
    """A status change the request's life cycle does not allow."""


def request_transition(current: str, new: str) -> str:
    """``new`` if a request in ``current`` may move there, else TransitionError (final states are final)."""
    if new not in _MOVES.get(current, frozenset()):
        raise TransitionError(f"a request cannot go from {current!r} to {new!r}")
    return new


def withdraw_transition(current: str, new: str) -> str:
    """``new`` if a claim in ``current`` may be withdrawn to it before dialling, else TransitionError."""
    if new not in WITHDRAWALS.get(current, frozenset()):
        raise TransitionError(f"a claimed request cannot be withdrawn from {current!r} to {new!r}")
    return new


def sources_of(new: str) -> frozenset[str]:
    """Every status a request may move to ``new`` from (the WHERE of a conditional UPDATE)."""
    return frozenset(current for current, targets in _MOVES.items() if new in targets)


def reschedule_transition(current: str) -> str:
    """``pending`` if an admin may reschedule a request in ``current``; a call in progress cannot be."""
    if current not in RESCHEDULABLE:
        raise TransitionError(f"a request that is {current!r} cannot be rescheduled")
    return PENDING


# -- one attempt -------------------------------------------------------------------------------------------

CONFIRM_DIGIT = "1"
CONFIRM_PROMPT = {"en": "Press 1 to accept the call.", "ru": "Нажмите 1, чтобы принять звонок."}


class Ring(enum.Enum):
    """How ringing a leg ended (mirrors the dialer's RingResult without importing it)."""

    ANSWERED = "answered"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    REJECTED = "rejected"
    INVALID_NUMBER = "invalid_number"
    UNAVAILABLE = "unavailable"
    ERROR = "error"


class Phase(enum.Enum):
    RING_OPERATOR = "ring_operator"
    ANNOUNCE = "announce"
    CONFIRM = "confirm"
    RING_CLIENT = "ring_client"
    SCREEN = "screen"
    BRIDGED = "bridged"
    DONE = "done"


# Actions: what the engine must do next.
@dataclass(frozen=True)
class RingOperator:
    phone: str


@dataclass(frozen=True)
class Announce:
    """Play the request's text to the operator (and the confirm prompt when ``confirm``)."""

    confirm: bool


@dataclass(frozen=True)
class AwaitDigit:
    pass


@dataclass(frozen=True)
class DropOperator:
    """Hang up the current operator leg (declined or hung up) before ringing the next phone."""

    next_phone: str | None


@dataclass(frozen=True)
class RingClient:
    pass


@dataclass(frozen=True)
class Screen:
    """Listen to the visitor's side before bridging: a person, or an answering machine (DESIGN §7)?"""


@dataclass(frozen=True)
class Bridge:
    pass


@dataclass(frozen=True)
class Finish:
    """The attempt is over: hang up whatever is still up and record ``outcome``."""

    outcome: str


Action = RingOperator | Announce | AwaitDigit | DropOperator | RingClient | Screen | Bridge | Finish


# Events: what happened.
@dataclass(frozen=True)
class OperatorRang:
    result: Ring


@dataclass(frozen=True)
class Announced:
    """The announcement has been played; ``operator_left`` if the operator hung up meanwhile."""

    operator_left: bool = False


@dataclass(frozen=True)
class DigitRead:
    digit: str | None  # None: timed out or the operator hung up


@dataclass(frozen=True)
class Dropped:
    pass


@dataclass(frozen=True)
class ClientRang:
    result: Ring
    operator_left: bool = False  # the operator hung up while the visitor's phone rang


@dataclass(frozen=True)
class Screened:
    machine: bool  # an answering machine picked up
    operator_left: bool = False


@dataclass(frozen=True)
class BridgeEnded:
    pass


Event = OperatorRang | Announced | DigitRead | Dropped | ClientRang | Screened | BridgeEnded


@dataclass(frozen=True)
class AttemptPlan:
    """What one attempt needs to know: whom to call and how."""

    operator_phones: tuple[str, ...]
    announcement: bool = True
    operator_confirm: bool = False
    voicemail_detection: bool = False  # the widget's voicemailDetection, where the line can hear audio


@dataclass(frozen=True)
class AttemptState:
    plan: AttemptPlan
    phase: Phase
    phone_index: int = 0
    # Why each operator phone tried so far did not take the call (decides the final outcome).
    operator_misses: tuple[str, ...] = field(default_factory=tuple)
    outcome: str | None = None

    @property
    def current_phone(self) -> str | None:
        phones = self.plan.operator_phones
        return phones[self.phone_index] if self.phone_index < len(phones) else None


class StepError(ValueError):
    """An event that cannot happen in the attempt's current phase (an engine bug)."""


def start(plan: AttemptPlan) -> tuple[AttemptState, Action]:
    """The first step: ring the first operator phone (an attempt with no phone at all is an error)."""
    if not plan.operator_phones:
        return _finish(AttemptState(plan, Phase.DONE), ERROR)
    return AttemptState(plan, Phase.RING_OPERATOR), RingOperator(plan.operator_phones[0])


def step(state: AttemptState, event: Event) -> tuple[AttemptState, Action]:
    """Feed one event; get the new state and the next action."""
    phase = state.phase
    if phase is Phase.RING_OPERATOR and isinstance(event, OperatorRang):
        if event.result is Ring.ANSWERED:
            if state.plan.announcement or state.plan.operator_confirm:
                return replace(state, phase=Phase.ANNOUNCE), Announce(confirm=state.plan.operator_confirm)
            return replace(state, phase=Phase.RING_CLIENT), RingClient()
        # This phone did not pick up: remember why and try the next one (its leg has already ended).
        return _next_operator(state, _miss(event.result), hang_up_first=False)
    if phase is Phase.ANNOUNCE and isinstance(event, Announced):
        if event.operator_left:
            return _next_operator(state, "declined", hang_up_first=True)
        if state.plan.operator_confirm:
            return replace(state, phase=Phase.CONFIRM), AwaitDigit()
        return replace(state, phase=Phase.RING_CLIENT), RingClient()
    if phase is Phase.CONFIRM and isinstance(event, DigitRead):
        if event.digit == CONFIRM_DIGIT:
            return replace(state, phase=Phase.RING_CLIENT), RingClient()
        # Anything but "1" (or silence) declines: the next operator phone gets the call.
        return _next_operator(state, "declined", hang_up_first=True)
    if phase is Phase.RING_OPERATOR and isinstance(event, Dropped):
        # The declined leg is down; ring the next phone (_next_operator already chose it).
        phone = state.current_phone
        if phone is None:  # pragma: no cover - _next_operator finishes instead
            raise StepError("no operator phone left to ring")
        return state, RingOperator(phone)
    if phase is Phase.RING_CLIENT and isinstance(event, ClientRang):
        if event.result is Ring.ANSWERED:
            if event.operator_left:
                # Nobody left to talk to the visitor: counts against the operator side, so it is redialled.
                return _finish(state, OPERATOR_NO_ANSWER)
            if state.plan.voicemail_detection:
                return replace(state, phase=Phase.SCREEN), Screen()
            return replace(state, phase=Phase.BRIDGED), Bridge()
        return _finish(state, _CLIENT_MISSES.get(event.result, CLIENT_NO_ANSWER))
    if phase is Phase.SCREEN and isinstance(event, Screened):
        if event.machine:  # never bridged: the operator hears neither the greeting nor the beep
            return _finish(state, CLIENT_VOICEMAIL)
        if event.operator_left:
            return _finish(state, OPERATOR_NO_ANSWER)
        return replace(state, phase=Phase.BRIDGED), Bridge()
    if phase is Phase.BRIDGED and isinstance(event, BridgeEnded):
        return _finish(state, CONNECTED)
    raise StepError(f"event {type(event).__name__} cannot happen in phase {phase.value}")


def interrupt(state: AttemptState) -> tuple[AttemptState, Action]:
    """The attempt was cut short on our side (shutdown, lost lease): hang up, outcome ``interrupted``."""
    return _finish(state, INTERRUPTED)


def fail(state: AttemptState) -> tuple[AttemptState, Action]:
    """Something on our side broke (dialer exception): hang up, outcome ``error``."""
    return _finish(state, ERROR)


# How the visitor's phone not taking the call ends the attempt; anything else (no answer, unavailable):
# client_no_answer.
_CLIENT_MISSES = {
    Ring.BUSY: CLIENT_BUSY,
    Ring.REJECTED: CLIENT_REJECTED,
    Ring.INVALID_NUMBER: CLIENT_INVALID_NUMBER,
    Ring.ERROR: ERROR,
}


def _miss(result: Ring) -> str:
    """Why an operator phone did not take the call: a declined one (403/603) passes to the next phone."""
    if result is Ring.BUSY:
        return "busy"
    if result in (Ring.ERROR, Ring.INVALID_NUMBER):
        return "error"  # a wrong operator number or our own failure: not the operator's doing
    if result is Ring.REJECTED:
        return "declined"
    return "no_answer"  # NO_ANSWER, UNAVAILABLE: the phone did not take the call


def _next_operator(state: AttemptState, miss: str, *, hang_up_first: bool) -> tuple[AttemptState, Action]:
    misses = (*state.operator_misses, miss)
    index = state.phone_index + 1
    nxt = replace(state, phase=Phase.RING_OPERATOR, phone_index=index, operator_misses=misses)
    if index >= len(state.plan.operator_phones):
        return _finish(nxt, operator_outcome(misses))
    phone = state.plan.operator_phones[index]
    return nxt, (DropOperator(phone) if hang_up_first else RingOperator(phone))


def operator_outcome(misses: tuple[str, ...]) -> str:
    """Every operator phone failed: no answer wins over busy (someone could have answered), busy over error."""
    if any(m in ("no_answer", "declined") for m in misses):
        return OPERATOR_NO_ANSWER
    if any(m == "busy" for m in misses):
        return OPERATOR_BUSY
    return ERROR


def _finish(state: AttemptState, outcome: str) -> tuple[AttemptState, Action]:
    return replace(state, phase=Phase.DONE, outcome=outcome), Finish(outcome)
