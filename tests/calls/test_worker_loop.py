"""The worker loop's steps on their own: lease renewal must never hang up a call it should keep."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from perezvon.calls.worker import Worker


class FakeQueue:
    worker_id = "me"

    def __init__(self, worker: Worker | None = None, kept: set[int] | None = None, swap: bool = False) -> None:
        self.worker = worker
        self.kept = kept or set()
        self.swap = swap

    async def renew(self, ids: list[int]) -> set[int]:
        if self.swap and self.worker is not None:
            # While the renewal ran, request 1's call ended and the request was claimed again (a redial
            # due at once): a new task now stands under the same id, claimed after this UPDATE ran.
            old, claim = self.worker._tasks[1]
            old.cancel()
            self.worker._tasks[1] = (asyncio.create_task(asyncio.sleep(30)), claim)
        return self.kept


def make_worker(queue: FakeQueue) -> Worker:
    engine = SimpleNamespace(closing=set(), on_due=None)
    worker = Worker(engine, queue, concurrency=5, lease_s=30)  # type: ignore[arg-type]
    queue.worker = worker
    return worker


async def test_a_call_whose_lease_is_not_renewed_is_hung_up() -> None:
    worker = make_worker(FakeQueue(kept={2}))
    calls = {rid: asyncio.create_task(asyncio.sleep(30)) for rid in (1, 2)}
    worker._tasks.update({rid: (task, None) for rid, task in calls.items()})  # type: ignore[misc]
    assert await worker.heartbeat_once() == 1
    await asyncio.sleep(0)
    assert calls[1].cancelled() and not calls[2].done()
    calls[2].cancel()


async def test_a_new_claim_of_the_same_request_during_renewal_is_kept() -> None:
    queue = FakeQueue(swap=True)
    worker = make_worker(queue)
    worker._tasks[1] = (asyncio.create_task(asyncio.sleep(30)), None)  # type: ignore[assignment]
    assert await worker.heartbeat_once() == 0
    new_task = worker._tasks[1][0]
    await asyncio.sleep(0)
    assert not new_task.done()
    new_task.cancel()


async def test_a_finished_tasks_callback_does_not_untrack_a_newer_claim() -> None:
    worker = make_worker(FakeQueue())
    old = asyncio.create_task(asyncio.sleep(0))
    worker._tasks[1] = (old, None)  # type: ignore[assignment]
    newer = asyncio.create_task(asyncio.sleep(30))
    worker._tasks[1] = (newer, None)  # type: ignore[assignment]
    worker._done(1, old)
    assert worker._tasks[1][0] is newer
    worker._done(1, newer)
    assert 1 not in worker._tasks
    newer.cancel()


async def test_a_call_being_recorded_is_not_taken_for_lost() -> None:
    worker = make_worker(FakeQueue())
    call = asyncio.create_task(asyncio.sleep(30))
    worker._tasks[1] = (call, None)  # type: ignore[assignment]
    worker.engine.closing.add(1)
    assert await worker.heartbeat_once() == 0 and not call.cancelled()
    call.cancel()


class FailingLife:
    """Recovery that fails for request 1 (a bad row) and works for the others."""

    def __init__(self) -> None:
        self.recovered: list[int] = []
        self.postponed: list[int] = []

    async def recover(self, row: dict) -> object:
        if row["id"] == 1:
            raise ValueError("bad row")
        self.recovered.append(row["id"])
        return object()

    async def postpone_recovery(self, row: dict, until: object) -> bool:
        self.postponed.append(row["id"])
        return True


async def test_one_failing_recovery_does_not_block_the_others() -> None:
    class ExpiredQueue(FakeQueue):
        async def expired(self) -> list[dict]:
            return [{"id": 1}, {"id": 2}, {"id": 3}]

    life = FailingLife()
    worker = Worker(SimpleNamespace(closing=set(), life=life), ExpiredQueue(), lease_s=30)  # type: ignore[arg-type]
    assert await worker.recover_once() == 2
    assert life.recovered == [2, 3] and life.postponed == [1]  # looked at again a lease later


class FakeClock:
    """Time that moves only when the test says so."""

    def __init__(self) -> None:
        self.at = 1000.0
        self.start = datetime(2026, 12, 1, tzinfo=UTC)

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.at - 1000.0)

    def monotonic(self) -> float:
        return self.at

    async def sleep(self, seconds: float) -> None:
        self.at += seconds
        await asyncio.sleep(0)


async def test_calls_are_hung_up_when_renewals_fail_for_most_of_the_lease() -> None:
    class DownQueue(FakeQueue):
        async def renew(self, ids: list[int]) -> set[int]:
            raise ConnectionError("database unreachable")

    clock = FakeClock()
    worker = Worker(SimpleNamespace(closing=set()), DownQueue(), lease_s=30, clock=clock)  # type: ignore[arg-type]
    call = asyncio.create_task(asyncio.sleep(3600))
    worker._tasks[1] = (call, None)  # type: ignore[assignment]
    clock.at += 20  # two thirds of the lease without a renewal: keep the call
    assert await worker.heartbeat_once() == 0 and not call.cancelled()
    clock.at += 5  # past 80 %: another worker may take it over, so hang up rather than dial twice
    await worker.heartbeat_once()
    await asyncio.sleep(0)
    assert call.cancelled()
