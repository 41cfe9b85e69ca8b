"""One claimed attempt on the line: performs the state machine's actions on a dialer.

``domain/callback.py`` decides every step; ``AttemptRunner`` only does the I/O (ring, play, read a
digit, bridge) and feeds back what happened. When the attempt ends, ``services/requests.py`` closes it
in one transaction (attempt row, request status or redial, minutes, ``request.finished`` webhooks), so
nothing is half-recorded. While it runs, who answered when is shown in the live journal.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..clock import SYSTEM_CLOCK, Clock
from ..domain import callback as cb
from ..domain.announcement import announcement_text
from ..domain.billing import billed_seconds
from ..domain.phone import region_of
from ..domain.redial import Decision
from ..ops import metrics
from ..ops.logs import attempt_context, mask_phones
from ..services.requests import AttemptFacts, RequestLife, status_event
from ..store.db import retry_transient
from ..store.due_queue import Claim
from ..store.snapshots import SiteSnapshot
from .dialer.base import CallLeg, Dialer, RingResult, Trunk
from .events import EventBus
from .media.voicemail import MACHINE
from .screening import screen
from .speech import Speaker, silent_speaker
from .trunks import trunk_of_site

log = logging.getLogger(__name__)

CONFIRM_TIMEOUT_S = 10.0  # how long the operator has to press 1
PROGRESS_DELAY_S = 0.2  # live journal updates lag at most this much behind the call


@dataclass
class AttemptRecord(AttemptFacts):
    """What one attempt saw, written when it ends (and partly while it runs, for the live journal)."""

    bridged_s: float = 0.0
    # Live journal updates not yet written, and the timer that will write them (see _progress).
    unsaved: dict[str, Any] = field(default_factory=dict)
    timer: asyncio.TimerHandle | None = None
    closed: bool = False


WITHDRAWN = "withdrawn"  # run_attempt's answer for a claim undone before dialling (not an attempt outcome)


async def _first_hangup(a: CallLeg, b: CallLeg, bridging: asyncio.Future[None]) -> None:
    """Return when either leg has ended, or the bridge itself returned (whichever comes first)."""
    waits = [asyncio.ensure_future(a.wait_ended()), asyncio.ensure_future(b.wait_ended())]
    try:
        await asyncio.wait([*waits, bridging], return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()


@dataclass(frozen=True)
class CallContext:
    """The request's site, widget and unit, from the in-memory snapshot (fresh within seconds)."""

    snapshot: SiteSnapshot | None
    widget: dict[str, Any] | None
    unit: dict[str, Any] | None

    @property
    def site(self) -> dict[str, Any] | None:
        return self.snapshot.site if self.snapshot is not None else None

    @property
    def callback(self) -> dict[str, Any]:
        return (self.widget or {}).get("callback") or {}


@dataclass
class _Call:
    """One attempt in progress: its claim, what it saw so far, and its legs."""

    claim: Claim
    record: AttemptRecord
    context: CallContext | None = None
    trunk: Trunk | None = None
    op_leg: CallLeg | None = None
    client_leg: CallLeg | None = None

    @property
    def ring_timeout(self) -> float:
        return float(self.context.callback.get("ringTimeoutSeconds", 30)) if self.context else 30.0

    @property
    def language(self) -> str:
        return self.context.callback.get("language", "ru") if self.context else "ru"


def plan_for(widget: dict[str, Any] | None, unit: dict[str, Any] | None) -> cb.AttemptPlan:
    settings = (widget or {}).get("callback") or {}
    # A chosen department is called on its own phone; otherwise the widget's phones, in order.
    phones = (unit["phone"],) if unit is not None else tuple((widget or {}).get("operator_phones") or ())
    return cb.AttemptPlan(
        operator_phones=phones,
        announcement=bool(settings.get("announcement", True)),
        operator_confirm=bool(settings.get("operatorConfirm", False)),
        voicemail_detection=bool((widget or {}).get("voicemail_detection", True)),
    )


class AttemptRunner:
    def __init__(
        self,
        life: RequestLife,
        dialer: Dialer,
        *,
        bus: EventBus | None = None,
        speaker: Speaker = silent_speaker,
        recordings_dir: str = "",
        clock: Clock = SYSTEM_CLOCK,
        write_retry_s: float = 30.0,
    ) -> None:
        self.life = life
        # How long an attempt's final write waits out a database outage: the lease, past which the
        # request may be another worker's (and recovery records the attempt instead).
        self.write_retry_s = write_retry_s
        self.snapshots = life.snapshots
        self.dialer = dialer
        self.bus = bus or EventBus()
        self.speaker = speaker
        self.recordings_dir = Path(recordings_dir) if recordings_dir else None
        self.clock = clock
        self.closing: set[int] = set()  # requests whose attempt is being recorded (not "lost" meanwhile)
        self._site_locks: dict[int, asyncio.Lock] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._steps: dict[type, Callable[[_Call, Any], Awaitable[cb.Event]]] = {
            cb.RingOperator: self._ring_operator,
            cb.Announce: self._announce,
            cb.AwaitDigit: self._await_digit,
            cb.DropOperator: self._drop_operator,
            cb.RingClient: self._ring_client,
            cb.Screen: self._screen,
            cb.Bridge: self._bridge,
        }

    async def context(self, request: dict[str, Any]) -> CallContext:
        # One load per site at a time: when the cached snapshot expires, fifty calls must not all
        # reload it at once (each waiting for a pooled connection).
        lock = self._site_locks.setdefault(request["site_id"], asyncio.Lock())
        async with lock:
            snapshot = await self.snapshots.by_id(request["site_id"])
        if snapshot is None:
            return CallContext(None, None, None)
        unit = snapshot.units.get(request["unit_id"]) if request["unit_id"] is not None else None
        return CallContext(snapshot, snapshot.widget_by_id(request["widget_id"]), unit)

    # -- one attempt ----------------------------------------------------------------------------------------

    async def run_attempt(self, claim: Claim) -> str:
        """Make the claimed attempt and record it; returns the outcome. Cancelling it records ``interrupted``.

        Every log line written meanwhile (in this task) names the request and the attempt; one INFO line
        says the attempt started and one how it ended; the metrics count it (ops/metrics.py). A request that
        may no longer be called (blacklisted, a number not allowed now, no minutes for a first one) is
        withdrawn before anything rings: it returns ``withdrawn``, with no attempt and nothing counted."""
        try:
            if await self.life.admit(claim.request, claim.attempt_id) is not None:
                return WITHDRAWN
            admitted = True
        except Exception:  # could not check (the database is away): nothing is dialled, the attempt is an error
            log.exception("request %s: could not check it may be called", claim.request_id)
            admitted = False
        with attempt_context(claim.request_id, claim.attempt_id):
            due = claim.request.get("next_attempt_at")
            metrics.attempt_started((claim.started_at - due).total_seconds() if due is not None else 0.0)
            phone = mask_phones(str(claim.request.get("phone", "")))
            log.info("request %s attempt %s (%s): calling", claim.request_id, claim.attempt_number, phone)
            outcome, billed = cb.ERROR, 0
            try:
                outcome, billed = await self._run_attempt(claim, admitted)
            finally:
                metrics.attempt_finished(outcome, billed)
                log.info("request %s attempt %s (%s): %s, %d s billed", claim.request_id, claim.attempt_number,
                         phone, outcome, billed)
            return outcome

    async def _run_attempt(self, claim: Claim, admitted: bool = True) -> tuple[str, int]:
        self._publish(claim, cb.DIALING)
        call = _Call(claim, AttemptRecord())
        try:
            call.context = await retry_transient(  # a short outage delays the call; it does not fail it
                lambda: self.context(claim.request),
                give_up_after=self.write_retry_s,
                what=f"request {claim.request_id}: loading its site",
            )
            call.trunk = trunk_of_site(call.context.site)
            outcome = await self._walk(call) if admitted else cb.ERROR
        except asyncio.CancelledError:
            # Our side stopped the call (forced shutdown, lost lease): record it, do not propagate —
            # the caller cancelled us precisely so that the attempt gets closed properly.
            outcome = cb.INTERRUPTED
        except Exception:
            log.exception("attempt %s of request %s failed on our side", claim.attempt_number, claim.request_id)
            outcome = cb.ERROR
        finally:
            for leg in (call.client_leg, call.op_leg):
                if leg is not None and not leg.is_ended:
                    with contextlib.suppress(Exception):
                        await asyncio.shield(leg.hangup())
        call.record.closed = True  # no live update after this: the final write has everything
        if call.record.timer is not None:
            call.record.timer.cancel()
        self.closing.add(claim.request_id)
        try:
            decision = await asyncio.shield(self._finish_despite_outages(claim, outcome, call))
        finally:
            self.closing.discard(claim.request_id)
        # What close_attempt charged: a connected call's bridged time, nothing when the claim was lost.
        billed = billed_seconds(call.record.bridged_s) if outcome == cb.CONNECTED and decision is not None else 0
        return outcome, billed

    async def _finish_despite_outages(self, claim: Claim, outcome: str, call: _Call) -> Decision | None:
        """``finish``, retried while the database is away (closing is conditional on still holding the
        claim, so a retry after a commit whose answer was lost changes nothing)."""
        try:
            return await retry_transient(
                lambda: self.finish(claim, outcome, call.record, call.context),
                give_up_after=self.write_retry_s,
                what=f"request {claim.request_id}: recording attempt {claim.attempt_number}",
            )
        except Exception:
            log.exception("request %s: attempt %s could not be recorded; it is recovered once its lease runs out",
                          claim.request_id, claim.attempt_number)
            return None

    async def _walk(self, call: _Call) -> str:
        assert call.context is not None
        state, action = cb.start(plan_for(call.context.widget, call.context.unit))
        while not isinstance(action, cb.Finish):
            step = self._steps.get(type(action))
            if step is None:  # pragma: no cover - the state machine has no other actions
                raise cb.StepError(f"unknown action {action!r}")
            state, action = cb.step(state, await step(call, action))
        return action.outcome

    async def finish(
        self, claim: Claim, outcome: str, record: AttemptRecord, context: CallContext | None = None
    ) -> Decision | None:
        """Close the attempt (see RequestLife.close_attempt); None if the claim was lost."""
        if context is None:
            context = await self.context(claim.request)
        return await self.life.close_attempt(
            claim.request,
            claim.attempt_id,
            claim.attempt_number,
            outcome,
            record,
            record.bridged_s,
            context.snapshot,
            context.widget,
        )

    # -- the steps: each performs one action and returns what happened ------------------------------------

    async def _ring_operator(self, call: _Call, action: cb.RingOperator) -> cb.Event:
        # The journal shows the phone being tried; an earlier phone's answer (then declined) must not
        # look like this one's.
        call.record.operator_phone, call.record.operator_answered_at = action.phone, None
        call.op_leg = self.dialer.leg(action.phone, call.trunk, calling_number=call.claim.request["phone"])
        result = await call.op_leg.ring(call.ring_timeout)
        if result is RingResult.ANSWERED:
            call.record.operator_answered_at = call.op_leg.answered_at or self.clock.now()
            self._progress(call, operator_phone=action.phone, operator_answered_at=call.record.operator_answered_at)
        return cb.OperatorRang(cb.Ring(result.value))

    async def _announce(self, call: _Call, action: cb.Announce) -> cb.Event:
        assert call.op_leg is not None and call.context is not None
        text = self._announcement(call.claim.request, call.context, call.language, action.confirm)
        await call.op_leg.play(await self.speaker(text, call.language))
        return cb.Announced(operator_left=call.op_leg.is_ended)

    async def _await_digit(self, call: _Call, action: cb.AwaitDigit) -> cb.Event:
        assert call.op_leg is not None
        return cb.DigitRead(await call.op_leg.read_digit(CONFIRM_TIMEOUT_S))

    async def _drop_operator(self, call: _Call, action: cb.DropOperator) -> cb.Event:
        assert call.op_leg is not None
        await call.op_leg.hangup()
        return cb.Dropped()

    async def _ring_client(self, call: _Call, action: cb.RingClient) -> cb.Event:
        assert call.op_leg is not None
        call.client_leg = self.dialer.leg(call.claim.request["phone"], call.trunk)
        # The operator hears the visitor's phone ring, in the ringback of the operator's country.
        country = region_of(call.record.operator_phone or "")
        result = await call.client_leg.ring(call.ring_timeout, ringback_to=call.op_leg, country=country)
        if result is RingResult.ANSWERED:
            call.record.client_answered_at = call.client_leg.answered_at or self.clock.now()
            self._progress(call, client_answered_at=call.record.client_answered_at)
        return cb.ClientRang(cb.Ring(result.value), operator_left=call.op_leg.is_ended)

    async def _screen(self, call: _Call, action: cb.Screen) -> cb.Event:
        assert call.op_leg is not None and call.client_leg is not None
        verdict = await screen(call.client_leg)
        log.info("attempt %s of request %s: the visitor's side is a %s (%s, at %.1f s)", call.claim.attempt_number,
                 call.claim.request_id, verdict.kind, verdict.reason, verdict.at or 0)
        return cb.Screened(verdict.kind == MACHINE, operator_left=call.op_leg.is_ended)

    async def _bridge(self, call: _Call, action: cb.Bridge) -> cb.Event:
        assert call.op_leg is not None and call.client_leg is not None
        record_to = self._recording_path(call)
        began = self.clock.monotonic()
        bridging = asyncio.ensure_future(self.dialer.bridge(call.op_leg, call.client_leg, record_to))
        try:
            # Billed from the bridge to the first hang-up: not the BYE to the other side, not the WAV write.
            await _first_hangup(call.op_leg, call.client_leg, bridging)
            call.record.bridged_s = self.clock.monotonic() - began
            await bridging
        finally:
            bridging.cancel()
        if record_to is not None and record_to.exists():
            call.record.recording_path = str(record_to)
        return cb.BridgeEnded()

    @staticmethod
    def _announcement(request: dict[str, Any], context: CallContext, language: str, confirm: bool) -> str:
        fields = [(str(f.get("name", "")), str(f.get("value", ""))) for f in request["fields"] or []]
        text = announcement_text(
            fields,
            language=language,
            site_name=(context.site or {}).get("name"),  # type: ignore[arg-type]
            unit_name=(context.unit or {}).get("name"),
        )
        if confirm:
            text = f"{text} {cb.CONFIRM_PROMPT.get(language, cb.CONFIRM_PROMPT['en'])}"
        return text

    def _recording_path(self, call: _Call) -> Path | None:
        if self.recordings_dir is None or not (call.context and (call.context.site or {}).get("record_calls")):
            return None
        folder = self.recordings_dir / str(call.claim.request["site_id"])
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{call.claim.request_id}-{call.claim.attempt_number}.wav"

    # -- the live journal -----------------------------------------------------------------------------------

    def _progress(self, call: _Call, **values: Any) -> None:
        """Show what just happened in the journal: published at once, written PROGRESS_DELAY_S later.

        The delay coalesces a call's quick steps and skips the write entirely for steps that the
        attempt's final write (which carries the same facts) overtakes — on a fast line that is most
        of them, and each saved write is a saved commit.
        """
        call.record.unsaved.update(values)
        self._publish(call.claim, cb.DIALING)
        if call.record.timer is None:
            call.record.timer = asyncio.get_running_loop().call_later(PROGRESS_DELAY_S, self._write_progress, call)

    def _write_progress(self, call: _Call) -> None:
        record = call.record
        record.timer = None
        values, record.unsaved = record.unsaved, {}
        if not values or record.closed:
            return

        async def write() -> None:
            try:
                await self.life.record_progress(call.claim.attempt_id, values)
            except Exception:  # the final write carries the same facts; a live update may be lost
                log.warning("could not record progress of attempt %s", call.claim.attempt_id, exc_info=True)

        task = asyncio.get_running_loop().create_task(write())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _publish(self, claim: Claim, status: str) -> None:
        self.bus.publish(status_event(claim.request, status, claim.attempt_number))
