"""Faults on servers of the test's own (a PostgreSQL cluster, a redis-server): stopped under API processes
and started again; the machine's shared ones are never touched."""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from support import ADMIN_TOKEN, start_server, stop_server

from .deploy_support import start_redis
from .faults_support import ThrowawayPostgres, pg_bin

pytestmark = pytest.mark.e2e
ALWAYS = {"utcTimezone": "UTC+00:00", "hours": [{"dayOfWeek": d, "hour": h} for d in range(1, 8) for h in range(24)]}


@pytest.fixture
def postgres() -> Iterator[ThrowawayPostgres]:
    if pg_bin("initdb") is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    # Not under pytest's tmp_path: its parents are private to us, and the server may run as postgres.
    cluster = ThrowawayPostgres(Path(tempfile.mkdtemp(prefix="perezvon-pg-"))).init()
    yield cluster
    cluster.destroy()


@pytest.mark.postgres
def test_api_processes_answer_promptly_during_an_outage_and_recover_by_themselves(postgres, tmp_path) -> None:  # type: ignore[no-untyped-def]
    # Two API processes: "busy" is asked during the outage, "idle" is not (its pool holds dead connections).
    busy, idle = (start_server(postgres.url, tmp_path, env={"PEREZVON_RUN_WORKER": "false"}) for _ in range(2))
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    try:
        with (
            httpx.Client(base_url=busy.base_url, timeout=10) as b,
            httpx.Client(base_url=idle.base_url, timeout=10) as i,
        ):
            site = b.post("/api/admin/v1/sites", headers=admin, json={"name": "Shop"}).json()
            b.post(
                f"/api/admin/v1/sites/{site['id']}/widgets",
                headers=admin,
                json={"routeKey": "my_form_1", "schedule": ALWAYS},
            )
            body = {"site": site["siteKey"], "routeKey": "my_form_1", "phone": "79001234567"}
            for client in (b, i):  # both pools warm
                assert client.post("/api/widget/v1/requests", json=body).status_code == 200

            postgres.stop("immediate")
            # While it is down: a prompt server_error (the client's 10 s timeout would raise), never a hang.
            down = b.post("/api/widget/v1/requests", json=body)
            assert down.status_code == 500 and down.json()["type"] == "server_error"
            ready = b.get("/readyz")
            assert ready.status_code == 503 and ready.json()["checks"]["database"] != "ok"

            postgres.start()
            for client in (i, b):  # the idle one first: no failure taught its pool that the server restarted
                again = client.post("/api/widget/v1/requests", json=body)
                assert again.status_code == 200, again.text
                assert client.get("/readyz").json() == {"status": "ok", "checks": {"database": "ok"}}
            assert b.get("/api/admin/v1/requests", headers=admin).json()["total"] == 4
    finally:
        stop_server(busy)
        stop_server(idle)


def test_while_redis_is_away_public_calls_answer_server_error_and_recover_by_themselves(sqlite_url, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The documented choice: limits stay exact (shared in Redis) or the call is refused; no silent
    per-process fallback that would let a visitor through N times the limit."""
    redis = start_redis(tmp_path)
    server = start_server(
        sqlite_url,
        tmp_path,
        env={
            "PEREZVON_RUN_WORKER": "false",
            "PEREZVON_IP_RATE_LIMIT": "5",
            "PEREZVON_REDIS_URL": f"redis://127.0.0.1:{redis.port}/0",
        },
    )
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    try:
        with httpx.Client(base_url=server.base_url, timeout=10) as client:
            site = client.post("/api/admin/v1/sites", headers=admin, json={"name": "Shop"}).json()
            client.post(
                f"/api/admin/v1/sites/{site['id']}/widgets",
                headers=admin,
                json={"routeKey": "my_form_1", "schedule": ALWAYS},
            )
            body = {"site": site["siteKey"], "routeKey": "my_form_1", "phone": "79001234567"}
            assert client.post("/api/widget/v1/requests", json=body).status_code == 200

            redis.stop()
            down = client.post("/api/widget/v1/requests", json=body)
            assert down.status_code == 500 and down.json()["type"] == "server_error"
            ready = client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["checks"]["database"] == "ok" and ready.json()["checks"]["redis"] != "ok"

            redis = start_redis(tmp_path, redis.port)
            again = client.post("/api/widget/v1/requests", json={**body, "phone": "79001234568"})
            assert again.status_code == 200, again.text
            assert client.get("/readyz").status_code == 200
            assert client.get("/api/admin/v1/requests", headers=admin).json()["total"] == 2
    finally:
        stop_server(server)
        redis.stop()


async def test_a_call_in_progress_outlives_a_database_outage_shorter_than_its_lease(postgres) -> None:  # type: ignore[no-untyped-def]
    """Its final write waits for the database and is recorded once: not cut, not redialled."""
    from calls.workers import seed, start_worker
    from perezvon.store.db import Database

    worker = await start_worker(
        postgres.url, PEREZVON_SIM_RING_S="0.1", PEREZVON_SIM_TALK_S="1.5", PEREZVON_WORKER_LEASE_S="20"
    )
    try:
        db = Database(postgres.url)
        try:
            _, [request_id] = await seed(db, 1)
        finally:
            await db.dispose()
        await wait_for_line(worker, f"request {request_id} attempt 1 (7900***4567): calling")
        await wait_until_talking(postgres.url, request_id)
        postgres.stop("immediate")  # mid-call: it ends (and tries to record itself) while the server is down
        await wait_for_line(worker, f"request {request_id}: recording attempt 1: the database is unreachable")
        postgres.start()
        await wait_for_line(worker, f"request {request_id} attempt 1 (7900***4567): connected")
    finally:
        worker.terminate()
        await worker.wait()
    db = Database(postgres.url)
    try:
        async with db.read() as conn:
            from sqlalchemy import text

            status = (
                await conn.execute(text(f"SELECT status FROM callback_requests WHERE id = {request_id}"))
            ).scalar()
            attempts = (
                await conn.execute(
                    text(f"SELECT outcome, billed_seconds FROM call_attempts WHERE request_id = {request_id}")
                )
            ).all()
    finally:
        await db.dispose()
    assert status == "completed", worker.output
    assert [(outcome, billed >= 1) for outcome, billed in attempts] == [("connected", True)], worker.output


async def wait_for_line(worker, text: str, timeout: float = 30) -> None:  # type: ignore[no-untyped-def]
    """The worker's log is the event: wait (bounded) until a line contains ``text``."""
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not any(text in line for line in worker.lines):
        assert loop.time() < deadline, f"no {text!r} in:\n{worker.output}"
        await asyncio.sleep(0.02)


async def wait_until_talking(url: str, request_id: int, timeout: float = 30) -> None:
    """The live journal is the event: the visitor answered (the worker wrote it while the call runs)."""
    import asyncio

    from sqlalchemy import text

    from perezvon.store.db import Database

    db = Database(url)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    query = text(f"SELECT client_answered_at FROM call_attempts WHERE request_id = {request_id}")
    try:
        while True:
            async with db.read() as conn:
                if (await conn.execute(query)).scalar() is not None:
                    return
            assert loop.time() < deadline, "the visitor never answered"
            await asyncio.sleep(0.02)
    finally:
        await db.dispose()


@pytest.mark.postgres
async def test_a_database_outage_under_load_loses_no_answered_id_and_dials_no_one_twice(postgres, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """20 requests/s at two API processes and a worker; PostgreSQL stopped (-m immediate) for a while."""
    import asyncio
    import time

    from calls.workers import start_worker

    env = {"PEREZVON_RUN_WORKER": "false", "PEREZVON_IP_RATE_LIMIT": "0"}
    apis = [start_server(postgres.url, tmp_path, env=env) for _ in range(2)]
    worker = await start_worker(
        postgres.url, PEREZVON_SIM_RING_S="0.1", PEREZVON_SIM_TALK_S="0.5", PEREZVON_WORKER_LEASE_S="20"
    )
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    answers: list[tuple[float, float, int, dict]] = []  # sent at, took, status, body
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            base = apis[0].base_url
            site = (
                await client.post(
                    f"{base}/api/admin/v1/sites", headers=admin, json={"name": "Load", "minutesBalance": 10_000}
                )
            ).json()
            await client.post(
                f"{base}/api/admin/v1/sites/{site['id']}/widgets",
                headers=admin,
                json={
                    "routeKey": "my_form_1",
                    "operatorPhones": ["79990000010"],
                    "schedule": ALWAYS,
                    "callback": {"announcement": False},
                },
            )

            async def one(n: int) -> None:
                body = {
                    "site": site["siteKey"],
                    "routeKey": "my_form_1",
                    "phone": f"7900{n:05d}55",
                }  # 01/02 endings: no answer/busy
                sent = time.monotonic()
                response = await client.post(f"{apis[n % 2].base_url}/api/widget/v1/requests", json=body)
                answers.append((sent, time.monotonic() - sent, response.status_code, response.json()))

            async def load(seconds: float, start: int) -> int:
                tasks = []
                for n in range(start, start + int(seconds * 20)):
                    tasks.append(asyncio.create_task(one(n)))
                    await asyncio.sleep(0.05)  # the load's own pace: 20 requests per second
                await asyncio.gather(*tasks)
                return start + len(tasks)

            n = await load(2, 0)
            stopped = time.monotonic()
            postgres.stop("immediate")
            n = await load(3, n)
            postgres.start()
            started = time.monotonic()
            await load(3, n)
        accepted = {body["callbackRequestId"] for _, _, status, body in answers if status == 200}
        during = [(took, status, body) for sent, took, status, body in answers if stopped < sent < started]
        recovered = min(sent for sent, _, status, _ in answers if status == 200 and sent > started) - started
        await wait_all_finished(postgres.url, accepted)
    finally:
        worker.terminate()
        await worker.wait()
        for api in apis:
            stop_server(api)
    rows = await attempts_of(postgres.url)
    sys.stderr.write(
        f"\n{len(answers)} answers, {len(accepted)} accepted; during the outage {len(during)}, all "
        f"{sorted({s for _, s, _ in during})}, longest {max(t for t, _, _ in during):.2f} s; "
        f"longest answer overall {max(a[1] for a in answers):.2f} s; first 200 {recovered:.2f} s after the restart\n"
    )
    assert during and all(status >= 500 and body["type"] == "server_error" for _, status, body in during)
    assert accepted <= set(rows), "an answered id is missing from the journal"
    twice = {rid: outcomes for rid, outcomes in rows.items() if rid in accepted and outcomes != ["connected"]}
    assert not twice, twice


async def wait_all_finished(url: str, ids: set[int], timeout: float = 40) -> None:
    import asyncio

    from sqlalchemy import text

    from perezvon.store.db import Database

    db = Database(url)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        while True:
            async with db.read() as conn:
                query = "SELECT id, status, attempts_made, claimed_until, next_attempt_at FROM callback_requests"
                left = (await conn.execute(text(query + " WHERE status IN ('pending', 'dialing')"))).all()
            if not left:
                return
            assert loop.time() < deadline, f"requests never finished: {left}"
            await asyncio.sleep(0.1)
    finally:
        await db.dispose()


async def attempts_of(url: str) -> dict[int, list[str]]:
    """Each request's attempt outcomes, in order."""
    from sqlalchemy import text

    from perezvon.store.db import Database

    db = Database(url)
    try:
        async with db.read() as conn:
            rows = (
                await conn.execute(
                    text(
                        "SELECT r.id, a.outcome FROM callback_requests r"
                        " LEFT JOIN call_attempts a ON a.request_id = r.id ORDER BY r.id, a.number"
                    )
                )
            ).all()
    finally:
        await db.dispose()
    found: dict[int, list[str]] = {}
    for rid, outcome in rows:
        found.setdefault(rid, []).append(outcome)
    return found


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_worker_killed_mid_call_loses_nothing_and_no_attempts_overlap(database_url: str) -> None:
    """kill -9 of one of two workers: its calls are taken over after their lease, never while it could
    still be on the line, and every request ends."""
    from sqlalchemy import text

    from calls.workers import seed, start_worker
    from perezvon.store.db import Database

    env = {"PEREZVON_SIM_RING_S": "0.1", "PEREZVON_SIM_TALK_S": "3", "PEREZVON_WORKER_LEASE_S": "3"}
    doomed = await start_worker(database_url, **env)
    db = Database(database_url)
    try:
        _, ids = await seed(db, 6, phone="79001234555")
        await wait_for_line(doomed, "attempt 1 (7900***4555): calling")
        doomed.kill()  # on the line: its calls talk for 3 s
        await doomed.wait()
        survivor = await start_worker(database_url, **env)
        try:
            await wait_all_finished(database_url, set(ids))
        finally:
            survivor.terminate()
            await survivor.wait()
        async with db.read() as conn:
            rows = (
                await conn.execute(
                    text(
                        "SELECT request_id, number, started_at, ended_at, outcome, worker FROM call_attempts"
                        " ORDER BY request_id, number"
                    )
                )
            ).all()
            statuses = set((await conn.execute(text("SELECT status FROM callback_requests"))).scalars())
    finally:
        await db.dispose()
    assert statuses == {"completed"}
    taken_over = 0
    for rid in ids:
        attempts = [r for r in rows if r.request_id == rid]
        assert attempts[-1].outcome == "connected", attempts
        for before, after in zip(attempts, attempts[1:], strict=False):
            assert before.outcome == "interrupted" and before.ended_at <= after.started_at, attempts
            taken_over += 1
    assert taken_over >= 1  # the killed worker had calls in hand


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_kill_9_of_an_api_process_under_load_loses_no_answered_id(database_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """``serve --workers 2`` at 20 requests/s, one of its processes killed: what the dead one had not
    answered was never promised, and every id that was answered is in the journal."""
    import asyncio
    import os
    import signal

    from sqlalchemy import text

    from perezvon.store.db import Database

    server = start_server(
        database_url,
        tmp_path,
        args=("serve", "--workers", "2"),
        env={"PEREZVON_RUN_WORKER": "false", "PEREZVON_IP_RATE_LIMIT": "0"},
    )
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    accepted: set[int] = set()
    failed = 0
    try:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
            site = (await client.post("/api/admin/v1/sites", headers=admin, json={"name": "Load"})).json()
            await client.post(
                f"/api/admin/v1/sites/{site['id']}/widgets",
                headers=admin,
                json={"routeKey": "my_form_1", "schedule": ALWAYS},
            )
        children = [
            int(pid)
            for pid in Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children").read_text().split()
        ]

        async def one(n: int) -> None:
            nonlocal failed
            try:
                async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as fresh:
                    answer = await fresh.post(
                        "/api/widget/v1/requests",
                        json={"site": site["siteKey"], "routeKey": "my_form_1", "phone": f"7900{n:05d}55"},
                    )
                if answer.status_code == 200:
                    accepted.add(answer.json()["callbackRequestId"])
            except httpx.TransportError:
                failed += 1  # the connection died with its process: no answer, so no promise made

        tasks = []
        for n in range(80):
            if n == 30:
                os.kill(children[0], signal.SIGKILL)
            tasks.append(asyncio.create_task(one(n)))
            await asyncio.sleep(0.05)  # the load's own pace
        await asyncio.gather(*tasks)
    finally:
        stop_server(server)
    db = Database(database_url)
    try:
        async with db.read() as conn:
            journal = set((await conn.execute(text("SELECT id FROM callback_requests"))).scalars())
    finally:
        await db.dispose()
    assert accepted <= journal
    assert len(accepted) >= 40, (len(accepted), failed)  # the other process (and the new one) kept answering
