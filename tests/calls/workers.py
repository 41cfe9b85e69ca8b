"""Helpers for tests that run real ``perezvon worker`` processes against a shared database."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert

from perezvon.domain.schedule import ALL_HOURS
from perezvon.store.db import Database
from perezvon.store.tables import callback_requests, sites, widgets
from support import ROOT

READY = "callback worker"


@dataclass
class WorkerProcess:
    process: asyncio.subprocess.Process
    lines: list[str] = field(default_factory=list)
    reader: asyncio.Task[None] | None = None

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.process.send_signal(signal.SIGTERM)

    async def wait(self, timeout: float = 30) -> int:
        code = await asyncio.wait_for(self.process.wait(), timeout)
        if self.reader is not None:
            await self.reader
        return code


async def start_worker(database_url: str, **env: str) -> WorkerProcess:
    """Start ``perezvon worker`` and return once it says it is running (its log line is the event)."""
    environment = {
        **os.environ,
        "PEREZVON_DATABASE_URL": database_url,
        "PEREZVON_SIM_RING_S": "0.01",
        "PEREZVON_SIM_TALK_S": "0.01",
        "PEREZVON_LOG_LEVEL": "info",
        **env,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "perezvon.cli", "worker",
        cwd=ROOT, env=environment, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    worker = WorkerProcess(process)
    assert process.stdout is not None
    while True:
        line = await asyncio.wait_for(process.stdout.readline(), 30)
        if not line:
            raise RuntimeError(f"worker exited early:\n{worker.output}")
        worker.lines.append(line.decode(errors="replace").rstrip())
        if READY in worker.lines[-1]:
            break

    async def drain() -> None:  # keep reading so a chatty worker never blocks on a full pipe
        assert process.stdout is not None
        async for raw in process.stdout:
            worker.lines.append(raw.decode(errors="replace").rstrip())

    worker.reader = asyncio.create_task(drain())
    return worker


async def seed(db: Database, n: int, *, phone: str = "79001234567", announcement: bool = False,
               redial_attempts: int = 2, due: datetime | None = None, talk_phone_suffix: str | None = None
               ) -> tuple[int, list[int]]:
    """A site with a round-the-clock widget and ``n`` requests due now, written straight to the database."""
    now = datetime.now(UTC)
    async with db.write() as conn:
        site_id = (await conn.execute(insert(sites).values(
            name="Load", site_key=f"load{now.timestamp()}", allowed_origins=[], timezone="UTC",
            minutes_balance=1_000_000, callback_active=True, api_points_per_day=10**9, api_point_costs={},
            non_working_policy="finish", record_calls=False, webhook_urls=[], webhook_secret="x" * 32,
            created_at=now))).inserted_primary_key[0]
        widget_id = (await conn.execute(insert(widgets).values(
            site_id=site_id, route_key="load", name="", enabled=True, operator_phones=["79990000010"],
            schedule_timezone="UTC+00:00", schedule_hours=sorted(ALL_HOURS), collect_non_working=True,
            throttle_user_timeout_s=0, throttle_max_per_phone=0, throttle_period_s=3600,
            callback={"announcement": announcement, "operatorConfirm": False, "ringTimeoutSeconds": 30,
                      "redialAttempts": redial_attempts, "redialIntervalSeconds": 10, "language": "en"},
            created_at=now))).inserted_primary_key[0]
    ids = await add_requests(db, site_id, widget_id, n, phone=phone, due=due)
    return site_id, ids


async def add_requests(db: Database, site_id: int, widget_id: int, n: int, *, phone: str = "79001234567",
                       due: datetime | None = None, chunk: int = 5000) -> list[int]:
    now = datetime.now(UTC)
    due = due or now
    ids: list[int] = []
    rows: list[dict[str, Any]] = [
        dict(site_id=site_id, widget_id=widget_id, route_key="load", phone=phone, fields=[], custom_fields=[],
             tags=[], due_at=due, next_attempt_at=due, source="api", utm={}, status="pending", attempts_made=0,
             created_at=now, updated_at=now)
        for _ in range(n)
    ]
    for start in range(0, n, chunk):
        async with db.write() as conn:
            result = await conn.execute(insert(callback_requests).returning(callback_requests.c.id),
                                        rows[start:start + chunk])
            ids.extend(result.scalars())
    return ids
