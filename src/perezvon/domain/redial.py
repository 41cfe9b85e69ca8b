"""When to call again after an attempt (DESIGN §4): pure arithmetic over the widget's redial settings.

A request gets ``1 + redialAttempts`` attempts in all. A failed attempt is retried
``redialIntervalSeconds`` later, moved to the next working hour when that falls outside the widget's
schedule — unless the request itself was due outside working hours (then the schedule does not bind
it, e.g. a time the admin set by hand or a schedule changed after the request was accepted). An
``interrupted`` attempt (our crash or shutdown, not the visitor's doing) is retried at once, but still
counts as an attempt, so a request can never loop forever.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from .callback import COMPLETED, CONNECTED, FAILED, INTERRUPTED, PENDING
from .schedule import WeeklySchedule


@dataclass(frozen=True)
class RedialPolicy:
    redial_attempts: int = 2
    interval_seconds: int = 60

    @property
    def max_attempts(self) -> int:
        return 1 + max(0, self.redial_attempts)

    @classmethod
    def from_widget(cls, callback: dict[str, object] | None) -> RedialPolicy:
        """From a widget's camelCase ``callback`` settings (missing keys take the documented defaults)."""
        settings = callback or {}
        return cls(
            redial_attempts=int(settings.get("redialAttempts", 2)),  # type: ignore[call-overload]
            interval_seconds=int(settings.get("redialIntervalSeconds", 60)),  # type: ignore[call-overload]
        )


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
) -> Decision:
    """What follows an attempt that ended with ``outcome``; ``attempts_made`` counts that attempt."""
    if outcome == CONNECTED:
        return Decision(COMPLETED)
    if attempts_made >= policy.max_attempts:
        return Decision(FAILED)
    wanted = now if outcome == INTERRUPTED else now + timedelta(seconds=policy.interval_seconds)
    if schedule is not None and keep_to_schedule:
        due = schedule.due_at(wanted)
        if due is None:  # the schedule has no working hour left at all: nothing to wait for
            return Decision(FAILED)
        wanted = due
    return Decision(PENDING, wanted)
