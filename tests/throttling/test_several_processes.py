"""Limits stay exact across processes: ``serve --workers 4`` and two ``perezvon worker`` on one PostgreSQL,
sharing the Redis at 127.0.0.1:6379 (a key namespace of their own, so parallel suites never meet).

Each burst goes out at once over connections already open to known API processes: every connection is
matched to the process that accepted it (``/proc``), and a burst takes connections from all four, so
"exactly N pass" is a statement about counts shared between processes, not about one process's memory.
The workers then dial what was accepted: every answered id is in the journal and is called exactly once.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from perezvon.store.db import Database
from perezvon.store.tables import call_attempts, callback_requests
from perezvon.throttling import Guard
from support import ADMIN_TOKEN, LiveServer, pg_exec, pg_url, redis_unreachable, start_server, stop_server

pytestmark = pytest.mark.e2e

REDIS_URL = "redis://127.0.0.1:6379/0"
API_PROCESSES = 4
# Numbers ending in 01 or 02 never answer or are busy on the simulated line: every number here ends in 55.
ALWAYS = {"utcTimezone": "UTC+00:00", "hours": [{"dayOfWeek": d, "hour": h} for d in range(1, 8) for h in range(24)]}
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


# -- a raw HTTP/1.1 connection: we need its local port to know which process serves it ------------------


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.local_port: int = writer.get_extra_info("sockname")[1]

    async def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        data = b"" if body is None else json.dumps(body).encode()
        head = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(data)}"]
        head += ["Content-Type: application/json"] if body is not None else []
        head += [f"{name}: {value}" for name, value in (headers or {}).items()]
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + data)
        status_line = await asyncio.wait_for(self.reader.readline(), 15)
        if not status_line:
            raise ConnectionError("the server closed the connection")
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        payload = await self.reader.readexactly(length) if length else b""
        return int(status_line.split()[1]), json.loads(payload) if payload else None

    def close(self) -> None:
        self.writer.close()


def _descendants(pid: int) -> list[int]:
    found: list[int] = []
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        found += [int(child), *_descendants(int(child))]
    return found


def _socket_inode(server_port: int, client_port: int) -> str | None:
    """The inode of the server side of the loopback connection ``client_port`` → ``server_port``."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, remote = fields[1].rsplit(":", 1)[1], fields[2].rsplit(":", 1)[1]
            if int(local, 16) == server_port and int(remote, 16) == client_port:
                return fields[9]
    return None


def serving_process(server: LiveServer, port: int, connection: Connection) -> int | None:
    """Which of ``serve``'s processes holds the accepted end of ``connection``."""
    inode = _socket_inode(port, connection.local_port)
    for pid in _descendants(server.process.pid):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]":
                    return pid
            except OSError:
                continue
    return None


# -- the deployment ----------------------------------------------------------------------------------------


@dataclass
class Deployment:
    server: LiveServer
    port: int
    database_url: str
    site_id: int = 0
    site_key: str = ""

    async def connect(self) -> Connection:
        return Connection(*await asyncio.open_connection("127.0.0.1", self.port))

    async def admin(self, method: str, path: str, body: Any = None) -> Any:
        connection = await self.connect()
        try:
            status, answer = await connection.request(method, f"/api/admin/v1{path}", body, ADMIN)
        finally:
            connection.close()
        assert status in (200, 201), (status, answer)
        return answer

    async def warm(self, connection: Connection) -> None:
        """An admin read (it counts toward no limit): the serving process has accepted the connection, and
        its keep-alive clock starts again."""
        status, _ = await connection.request("GET", f"/api/admin/v1/sites/{self.site_id}", headers=ADMIN)
        assert status == 200

    async def open_warm(self) -> Connection:
        connection = await self.connect()
        await self.warm(connection)
        return connection

    async def spread_connections(self, count: int) -> list[Connection]:
        """``count`` open connections taken in turn from every API process.

        Opened in concurrent rounds, the kept ones renewed every round, so none reaches uvicorn's
        keep-alive timeout (5 s) before the burst on a slow box."""
        by_process: dict[int, list[Connection]] = defaultdict(list)
        per_process = -(-count // API_PROCESSES)
        for _ in range(30):
            if len(by_process) == API_PROCESSES and all(len(c) >= per_process for c in by_process.values()):
                break
            kept = [c for conns in by_process.values() for c in conns]
            fresh = await asyncio.gather(*(self.open_warm() for _ in range(count)), *(self.warm(c) for c in kept))
            for connection in fresh[:count]:
                pid = serving_process(self.server, self.port, connection)
                if pid is None or len(by_process[pid]) >= per_process:
                    connection.close()
                else:
                    by_process[pid].append(connection)
        assert len(by_process) == API_PROCESSES, f"connections reached only {len(by_process)} processes"
        chosen = [conns[i] for i in range(per_process) for conns in by_process.values() if i < len(conns)][:count]
        for connection in {c for conns in by_process.values() for c in conns} - set(chosen):
            connection.close()
        return chosen

    async def burst(self, route_key: str, calls: list[tuple[str, str]]) -> list[str]:
        """``(phone, client ip)`` pairs sent at once, one per connection over all processes; their answers'
        types (``ok`` for an accepted request), in order."""
        connections = await self.spread_connections(len(calls))
        try:
            # Renew every connection's keep-alive just before the burst, then send all at once.
            await asyncio.gather(*(self.warm(c) for c in connections))
            answers = await asyncio.gather(
                *(
                    c.request(
                        "POST",
                        "/api/widget/v1/requests",
                        {"site": self.site_key, "routeKey": route_key, "phone": phone},
                        {"X-Forwarded-For": ip},
                    )
                    for c, (phone, ip) in zip(connections, calls, strict=True)
                )
            )
        finally:
            for connection in connections:
                connection.close()
        return [body.get("type", "ok") if status != 200 else "ok" for status, body in answers]


def _pg_database(template: str) -> Iterator[str]:
    name = f"pzv_t_{uuid.uuid4().hex[:12]}"
    asyncio.run(pg_exec(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    try:
        yield pg_url(name)
    finally:
        asyncio.run(pg_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _start_worker(database_url: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "perezvon.cli", "worker"],
        env={**os.environ, "PEREZVON_DATABASE_URL": database_url, "PEREZVON_LOG_LEVEL": "info", **env},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


@pytest.fixture(scope="module")
def deployment(pg_template: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    reason = redis_unreachable()
    if reason:
        pytest.skip(reason)
    workdir = tmp_path_factory.mktemp("several")
    namespace = f"t{uuid.uuid4().hex}"
    env = {
        "PEREZVON_REDIS_URL": REDIS_URL,
        "PEREZVON_REDIS_NAMESPACE": namespace,
        "PEREZVON_IP_RATE_LIMIT": "5",
        "PEREZVON_TRUSTED_PROXIES": "127.0.0.1",  # each burst names its client IP in X-Forwarded-For
        "PEREZVON_RUN_WORKER": "false",
        "PEREZVON_SIM_RING_S": "0.01",
        "PEREZVON_SIM_TALK_S": "0.01",
    }
    for database_url in _pg_database(pg_template):
        server = start_server(database_url, workdir, args=("serve", "--workers", str(API_PROCESSES)), env=env)
        workers = [_start_worker(database_url, env, workdir / f"worker-{i}.log") for i in range(2)]
        try:
            yield Deployment(server, int(server.base_url.rsplit(":", 1)[1]), database_url)
        finally:
            for worker in workers:
                worker.terminate()
            stop_server(server)
            for worker in workers:
                try:
                    worker.wait(15)
                except subprocess.TimeoutExpired:
                    worker.kill()
            asyncio.run(Guard(redis_url=REDIS_URL, namespace=namespace).reset())


@pytest.fixture
async def site(deployment: Deployment) -> AsyncIterator[Deployment]:
    """A new site per test (its own points budget), with a widget per limit under test."""
    made = await deployment.admin("POST", "/sites", {"name": "Several", "apiPointsPerDay": 1000})
    deployment.site_id, deployment.site_key = made["id"], made["siteKey"]
    for route_key, throttle in (
        ("by_ip", {}),
        ("by_phone", {"maxRequestsPerPhone": 3, "periodSeconds": 3600}),
        ("by_user", {"userTimeoutSeconds": 600}),
    ):
        await deployment.admin(
            "POST",
            f"/sites/{made['id']}/widgets",
            {
                "routeKey": route_key,
                "schedule": ALWAYS,
                "throttle": throttle,
                "operatorPhones": ["79990000010"],
                "callback": {"announcement": False},
            },
        )
    yield deployment


async def dialled_once(deployment: Deployment, expected: int) -> None:
    """The workers call every accepted request of the site exactly once, and nothing else is stored."""
    db = Database(deployment.database_url)
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while True:
            async with db.read() as conn:
                statuses = Counter(
                    dict(
                        (
                            await conn.execute(
                                select(callback_requests.c.status, func.count())
                                .where(callback_requests.c.site_id == deployment.site_id)
                                .group_by(callback_requests.c.status)
                            )
                        ).all()
                    )
                )
            if statuses["completed"] == expected or loop.time() > deadline:
                break
            await asyncio.sleep(0.1)  # other processes' progress: nothing to await but the journal
        assert statuses == Counter({"completed": expected}), statuses
        async with db.read() as conn:
            per_request = (
                await conn.execute(
                    select(call_attempts.c.request_id, func.count())
                    .join(callback_requests, callback_requests.c.id == call_attempts.c.request_id)
                    .where(callback_requests.c.site_id == deployment.site_id)
                    .group_by(call_attempts.c.request_id)
                )
            ).all()
        assert len(per_request) == expected and all(count == 1 for _, count in per_request), per_request
    finally:
        await db.dispose()


async def test_of_eleven_requests_from_one_ip_in_a_second_exactly_five_pass(site: Deployment) -> None:
    answers = await site.burst("by_ip", [(f"790010{i:03d}55", "198.51.100.1") for i in range(11)])
    assert Counter(answers) == Counter({"ok": 5, "request_throttle_count": 6}), answers
    await dialled_once(site, 5)


async def test_per_phone_count_is_exact_across_processes(site: Deployment) -> None:
    answers = await site.burst("by_phone", [("79002000055", f"198.51.100.{10 + i}") for i in range(8)])
    assert Counter(answers) == Counter({"ok": 3, "request_throttle_count": 5}), answers
    await dialled_once(site, 3)


async def test_user_cooldown_lets_exactly_one_through_across_processes(site: Deployment) -> None:
    # No tracking session: the user is the client IP. Four calls stay under that IP's 5 per second.
    answers = await site.burst("by_user", [(f"790030{i:03d}55", "198.51.100.50") for i in range(4)])
    assert Counter(answers) == Counter({"ok": 1, "request_throttle_timeout": 3}), answers
    await dialled_once(site, 1)


async def test_api_points_are_spent_exactly_once_across_processes(site: Deployment) -> None:
    await site.admin("PATCH", f"/sites/{site.site_id}", {"apiPointsPerDay": 4})
    answers = await site.burst("by_ip", [(f"790040{i:03d}55", f"198.51.101.{i}") for i in range(12)])
    assert Counter(answers) == Counter({"ok": 4, "api_points_exhausted": 8}), answers
    assert (await site.admin("GET", f"/sites/{site.site_id}"))["apiPointsSpentToday"] == 4
    await dialled_once(site, 4)
