"""Test helpers importable from any test (``from support import ...``): servers, ports, admin client."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import httpx

from perezvon.settings import Settings

PG_ADMIN_URL = os.environ.get("PEREZVON_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
ADMIN_TOKEN = "test-bootstrap-token-0123456789"
ROOT = Path(__file__).resolve().parent.parent


def redis_unreachable() -> str | None:
    """Why the shared Redis at 127.0.0.1:6379 cannot be used (a reason to skip), or None."""
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return None
    except OSError as exc:
        return f"Redis is not reachable at 127.0.0.1:6379 ({exc})"


async def pg_exec(sql: str) -> None:
    """One statement on the PostgreSQL server as its admin (CREATE / DROP DATABASE)."""
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def pg_url(name: str) -> str:
    """The URL of database ``name`` on the test PostgreSQL server."""
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_settings(database_url: str, **overrides: object) -> Settings:
    base = Settings(
        database_url=database_url,
        admin_token=ADMIN_TOKEN,
        ip_rate_limit=0,
        run_worker=False,
        sim_ring_s=0.05,
        sim_talk_s=0.1,
    )
    return replace(base, **overrides)  # type: ignore[arg-type]


class Admin:
    """A thin admin-API client for provisioning in tests."""

    def __init__(self, client: httpx.AsyncClient, token: str = ADMIN_TOKEN) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"}

    async def post(self, path: str, body: dict) -> dict:
        response = await self.client.post(f"/api/admin/v1{path}", json=body, headers=self.headers)
        assert response.status_code == 201, response.text
        return response.json()

    async def patch(self, path: str, body: dict) -> dict:
        response = await self.client.patch(f"/api/admin/v1{path}", json=body, headers=self.headers)
        assert response.status_code == 200, response.text
        return response.json()

    async def get(self, path: str, **params: object) -> dict:
        response = await self.client.get(f"/api/admin/v1{path}", params=params, headers=self.headers)
        assert response.status_code == 200, response.text
        return response.json()

    async def site_with_widget(self, route_key: str = "my_form_1", **widget: object) -> tuple[dict, dict]:
        site = await self.post("/sites", {"name": "Test site", "timezone": "Europe/Moscow"})
        made = await self.post(f"/sites/{site['id']}/widgets", {"routeKey": route_key, **widget})
        return site, made


class LiveServer:
    def __init__(self, base_url: str, process: subprocess.Popen, database_url: str, log_path: Path) -> None:
        self.base_url = base_url
        self.process = process
        self.database_url = database_url
        self.log_path = log_path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_server(
    database_url: str, workdir: Path, *, args: tuple[str, ...] = ("serve",), env: dict[str, str] | None = None
) -> LiveServer:
    """``perezvon serve`` (or ``demo``) as a real process; returns once it answers HTTP."""
    port = free_port()
    environment = {
        **os.environ,
        "PEREZVON_DATABASE_URL": database_url,
        "PEREZVON_ADMIN_TOKEN": ADMIN_TOKEN,
        "PEREZVON_SIM_RING_S": "0.2",
        "PEREZVON_SIM_TALK_S": "0.5",
        **(env or {}),
    }
    log_path = workdir / f"server-{port}.log"
    log_file = log_path.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "perezvon.cli", *args, "--host", "127.0.0.1", "--port", str(port)],
        cwd=workdir,
        env=environment,
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    wait_port(port, process, log_path)
    return LiveServer(f"http://127.0.0.1:{port}", process, database_url, log_path)


def wait_port(port: int, process: subprocess.Popen, log_path: Path, timeout: float = 30) -> None:
    """Return once ``process`` listens on ``port``; fail with its log if it exits or never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited early:\n{log_path.read_text(errors='replace')}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)  # polling a port that has no event to await
    process.kill()
    raise RuntimeError(f"{process.args} did not listen on {port}:\n{log_path.read_text(errors='replace')}")


def stop_server(server: LiveServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(10)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()
