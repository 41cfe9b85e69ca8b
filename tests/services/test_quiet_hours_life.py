"""Where quiet hours and outcome rules meet a request's life: the redial decision and a collected request."""

from __future__ import annotations

from datetime import UTC, datetime

from perezvon.domain import callback as cb
from perezvon.domain.request_rules import RequestInput
from perezvon.domain.schedule import WeeklySchedule
from perezvon.services.intake import Intake
from perezvon.services.requests import RequestLife

MOSCOW_LANDLINE = "74951234567"
NIGHT = {"start": "21:00", "end": "09:00"}


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_a_redial_in_the_visitors_night_waits_for_their_morning() -> None:
    request = {"attempts_made": 1, "due_at": utc(2026, 12, 1, 17), "phone": MOSCOW_LANDLINE}
    widget = {"callback": {"redialIntervalSeconds": 600}, "quiet_hours": NIGHT}
    at_2055_msk = utc(2026, 12, 1, 17, 55)
    decision = RequestLife.decide(cb.CLIENT_NO_ANSWER, request, None, widget, at_2055_msk)
    assert decision.status == cb.PENDING and decision.next_attempt_at == utc(2026, 12, 2, 6)  # 09:00 MSK
    off = RequestLife.decide(cb.CLIENT_NO_ANSWER, request, None, {**widget, "quiet_hours": None}, at_2055_msk)
    assert off.next_attempt_at == utc(2026, 12, 1, 18, 5)
    assert RequestLife.decide(cb.CLIENT_REJECTED, request, None, widget, at_2055_msk).status == cb.FAILED


def _input(schedule_time: str | None = None) -> RequestInput:
    return RequestInput("form", MOSCOW_LANDLINE, [], schedule_time, [], None, [])


def test_a_collected_request_waits_for_the_morning_a_live_one_does_not() -> None:
    early = WeeklySchedule.build("UTC+03:00", [(d, h) for d in range(1, 8) for h in range(6, 23)])  # 06-23 MSK
    widget = {"collect_non_working": True, "quiet_hours": NIGHT}
    # Sent at 02:00 MSK: collected for 06:00, the first working hour, held until 09:00 in Moscow.
    assert Intake._due_at(widget, early, _input(), utc(2026, 12, 1, 23)) == utc(2026, 12, 2, 6)
    # Sent at 22:00 MSK while the widget works: called at once, whatever the hour for the visitor.
    now = utc(2026, 12, 1, 19)
    assert Intake._due_at(widget, early, _input(), now) == now
    # Without quiet hours the collected one is due when the working day starts.
    assert Intake._due_at({**widget, "quiet_hours": None}, early, _input(), utc(2026, 12, 1, 23)) == utc(2026, 12, 2, 3)
