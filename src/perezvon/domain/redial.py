"""When to call again after an attempt (DESIGN §4): pure arithmetic over the widget's redial settings.

A request gets ``1 + redialAttempts`` attempts in all. A failed attempt is retried
``redialIntervalSeconds`` later, moved to the next working hour when that falls outside the widget's
schedule — unless the request itself was due outside working hours (then the schedule does not bind
it, e.g. a time the admin set by hand or a schedule changed after the request was accepted). An
``interrupted`` attempt (our crash or shutdown, not the visitor's doing) is retried at once, but still
counts as an attempt, so a request can never loop forever.

By outcome (DESIGN §7): a visitor who declined (``client_rejected``) or a number that does not exist
(``client_invalid_number``) is not called again, the request ends ``failed``; a busy line waits
``redialBusyIntervalSeconds`` and no answer ``redialNoAnswerIntervalSeconds`` (both default to
``redialIntervalSeconds``; an answering machine counts as no answer). A redial that would land in
the visitor's quiet hours waits for their morning (``hold``, see ``quiet_hours``), then for the next
working hour, whichever is later.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from .callback import (
    CLIENT_BUSY,
    CLIENT_INVALID_NUMBER,
    CLIENT_NO_ANSWER,
    CLIENT_REJECTED,
    CLIENT_VOICEMAIL,
    COMPLETED,
    CONNECTED,
    FAILED,
    INTERRUPTED,
    OPERATOR_BUSY,
    OPERATOR_NO_ANSWER,
    PENDING,
)
from .schedule import WeeklySchedule

NOT_REDIALLED = frozenset({CLIENT_REJECTED, CLIENT_INVALID_NUMBER})
BUSY = frozenset({OPERATOR_BUSY, CLIENT_BUSY})
NO_ANSWER = frozenset({OPERATOR_NO_ANSWER, CLIENT_NO_ANSWER, CLIENT_VOICEMAIL})  # a machine: nobody answered


@dataclass(frozen=True)
class RedialPolicy:
    redial_attempts: int = 2
    interval_seconds: int = 60
    busy_interval_seconds: int | None = None  # None: interval_seconds
    no_answer_interval_seconds: int | None = None

    @property
    def max_attempts(self) -> int:
        return 1 + max(0, self.redial_attempts)

    @classmethod
    def from_widget(cls, callback: dict[str, object] | None) -> RedialPolicy:
        """From a widget's camelCase ``callback`` settings (missing keys take the documented defaults)."""
        settings = callback or {}
        busy, no_answer = settings.get("redialBusyIntervalSeconds"), settings.get("redialNoAnswerIntervalSeconds")
        return cls(
            redial_attempts=int(settings.get("redialAttempts", 2)),  # type: ignore[call-overload]
            interval_seconds=int(settings.get("redialIntervalSeconds", 60)),  # type: ignore[call-overload]
            busy_interval_seconds=None if busy is None else int(busy),  # type: ignore[call-overload]
            no_answer_interval_seconds=None if no_answer is None else int(no_answer),  # type: ignore[call-overload]
        )

    def interval_after(self, outcome: str) -> int:
        """Seconds to wait before calling again after `outcome`."""
        if outcome in BUSY and self.busy_interval_seconds is not None:
            return self.busy_interval_seconds
        if outcome in NO_ANSWER and self.no_answer_interval_seconds is not None:
            return self.no_answer_interval_seconds
        return self.interval_seconds


@dataclass(frozen=True)
class Decision:
    """The request's status after an attempt, and when it is due again (only when ``pending``)."""

    status: str
    next_attempt_at: datetime | None = None


def bound_by_schedule(due_at: datetime, schedule: WeeklySchedule | None) -> bool:
    """Redials keep to working hours only if the request's first call was due in working hours."""
    return schedule is not None and schedule.is_working(due_at)


def after_attempt(
    outcome: str,
    attempts_made: int,
    policy: RedialPolicy,
    now: datetime,
    schedule: WeeklySchedule | None = None,
    *,
    keep_to_schedule: bool = True,
    hold: Callable[[datetime], datetime] | None = None,
) -> Decision:
    """What follows an attempt that ended with ``outcome``; ``attempts_made`` counts that attempt.

    ``hold`` moves a time out of the visitor's quiet hours (None: the widget has none)."""
    if outcome == CONNECTED:
        return Decision(COMPLETED)
    if outcome in NOT_REDIALLED or attempts_made >= policy.max_attempts:
        return Decision(FAILED)
    wanted = now if outcome == INTERRUPTED else now + timedelta(seconds=policy.interval_after(outcome))
    due = allowed_time(wanted, schedule if keep_to_schedule else None, hold)
    if due is None:  # the schedule has no working hour left at all: nothing to wait for
        return Decision(FAILED)
    return Decision(PENDING, due)


def allowed_time(
    wanted: datetime, schedule: WeeklySchedule | None, hold: Callable[[datetime], datetime] | None
) -> datetime | None:
    """The first time from `wanted` that is in working hours (if `schedule`) and out of quiet hours
    (if `hold`); None if the schedule has no working hour at all. A week of alternating moves at most:
    working hours that never meet the visitor's day give the last working hour found."""
    due = wanted
    for _ in range(8):
        moved = due if schedule is None else schedule.due_at(due)
        if moved is None:
            return None
        due = moved if hold is None else hold(moved)
        if due == moved:
            break
    return moved
