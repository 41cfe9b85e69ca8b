"""Public API throughput: getRouteKeyData and createRequest against a real ``perezvon serve`` on SQLite,
beside a bare Starlette JSON endpoint (bench/baseline_app.py) measured in the same run.

These machines are noisy, so absolute req/s mean little; what we track is the ratio perezvon / baseline,
each the median of alternating runs (baseline, perezvon, baseline, perezvon, ...). Goals (issue #2 item 9):
getRouteKeyData >= 0.5, createRequest (durable commit, limiter, points and throttles in the path) >= 0.3.

Load comes from ``wrk`` (Debian: ``apt-get install -y wrk``): a C generator steals far less CPU from the
server than a Python client would on a 2-core machine. Nothing is installed at run time.

    .venv/bin/python bench/api_throughput.py                 # API only and API + worker, 12 s runs
    .venv/bin/python bench/api_throughput.py --worker off --duration 15 --rounds 3
    .venv/bin/python bench/api_throughput.py --pg-admin-url postgresql://postgres@127.0.0.1:5432/postgres \
        --processes 1 2 4 --redis-url redis://127.0.0.1:6379/0     # createRequest's scaling curve

With ``--pg-admin-url`` the database is PostgreSQL (a fresh one per process count, dropped afterwards) and
``--processes`` runs ``perezvon serve --workers N`` (API only) beside the baseline with as many processes,
for each N in the same run: the ratio at each N, and each side's req/s relative to its own 1-process
figure (the scaling curve). ``--redis-url`` shares limits between the processes as a deployment of several
does (a key namespace of its own, removed afterwards).

Every server (each run its own process, started fresh and stopped afterwards so that an idle or busy
server never shares the CPU with the one being measured) listens on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
VENV_BIN = Path(sys.executable).parent
ADMIN_TOKEN = "bench-admin-token-0123456789abcdef"
ROUTE_KEY = "bench"
CONNECTIONS = 32
GOALS = {"getRouteKeyData": 0.5, "createRequest": 0.3}
PATHS = {"getRouteKeyData": "/api/widget/v1/route-key-data", "createRequest": "/api/widget/v1/requests"}

# wrk runs this Lua: a fixed body for getRouteKeyData; for createRequest a new phone per request (so the
# per-phone throttle counts distinct keys as real traffic does). done() prints one machine-readable line
# with wrk's own HdrHistogram percentiles.
LUA_TEMPLATE = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local site = "@SITE@"
local endpoint = "@ENDPOINT@"
local offset = @OFFSET@
local counter = 0
if endpoint == "getRouteKeyData" then
  wrk.body = '{"site":"' .. site .. '","routeKey":"@ROUTE@"}'
else
  request = function()
    counter = counter + 1
    local phone = string.format("7900%07d", (offset + counter) % 10000000)
    local body = '{"site":"' .. site .. '","routeKey":"@ROUTE@","phone":"' .. phone ..
      '","fields":[{"name":"Name","value":"Ivan"}],"tags":["bench"]}'
    return wrk.format(nil, nil, nil, body)
  end
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"status":%d,"connect":%d,"read":%d,"write":%d,"timeout":%d}\\n',
    summary.requests, summary.duration, latency:percentile(50.0), latency:percentile(99.0), latency.max,
    e.status, e.connect, e.read, e.write, e.timeout))
end
"""


@dataclass
class RunResult:
    endpoint: str
    server: str
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: dict[str, int]
    cpu_ms: float = 0.0  # the server's CPU time (all its processes) per answered request


# -- processes ------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_listening(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode} before listening; see {log}:\n{log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"server did not listen on {port} within {timeout} s; see {log}")


class Server:
    """One server process for one run; logs (uvicorn access log included) go to a file, not the terminal."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], workdir: Path, port: int) -> None:
        self.name, self.port = name, port
        self.log = workdir / f"{name}-{port}.log"
        self._log_file = self.log.open("wb")
        self.proc = subprocess.Popen(argv, env=env, cwd=workdir, stdout=self._log_file, stderr=subprocess.STDOUT)
        wait_listening(port, self.proc, self.log)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()  # uvicorn shuts down gracefully on SIGTERM (lifespan closes the DB)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log_file.close()


def perezvon_env(db_url: str, worker: bool, redis_url: str = "", namespace: str = "") -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "PEREZVON_DATABASE_URL": db_url,
            "PEREZVON_ADMIN_TOKEN": ADMIN_TOKEN,
            "PEREZVON_IP_RATE_LIMIT": "0",  # DESIGN §5: 0 = off, for benchmarks (one client IP here)
            "PEREZVON_RUN_WORKER": "true" if worker else "false",
            "PEREZVON_DIALER": "simulated",
        }
    )
    if redis_url:
        env.update({"PEREZVON_REDIS_URL": redis_url, "PEREZVON_REDIS_NAMESPACE": namespace})
    return env


def start_perezvon(
    workdir: Path, db_url: str, worker: bool, processes: int = 1, redis: tuple[str, str] = ("", "")
) -> Server:
    port = free_port()
    argv = [str(VENV_BIN / "perezvon"), "serve", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--workers", str(processes)] if processes > 1 else []
    return Server("perezvon", argv, perezvon_env(db_url, worker, *redis), workdir, port)


def start_baseline(workdir: Path, processes: int = 1) -> Server:
    port = free_port()
    argv = [sys.executable, str(BENCH_DIR / "baseline_app.py"), "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--workers", str(processes)] if processes > 1 else []
    return Server("baseline", argv, dict(os.environ), workdir, port)


# -- HTTP helpers (setup and sanity checks only; never on the measured path) ------------------------------


def http_json(method: str, url: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def provision(base: str) -> str:
    """A site with a budget no run can spend, and a widget whose per-phone throttle stays in the path."""
    status, site = http_json(
        "POST", f"{base}/api/admin/v1/sites", {"name": "Bench", "apiPointsPerDay": 100_000_000}, ADMIN_TOKEN
    )
    if status != 201:
        raise SystemExit(f"creating the site answered {status}: {site}")
    widget_body = {
        "routeKey": ROUTE_KEY,
        "throttle": {"userTimeoutSeconds": 0, "maxRequestsPerPhone": 1_000_000, "periodSeconds": 60},
    }
    status, widget = http_json("POST", f"{base}/api/admin/v1/sites/{site['id']}/widgets", widget_body, ADMIN_TOKEN)
    if status != 201:
        raise SystemExit(f"creating the widget answered {status}: {widget}")
    return str(site["siteKey"])


def sanity_check(base: str, site_key: str) -> None:
    """One request of each kind must succeed before we time thousands of them."""
    status, answer = http_json("POST", base + PATHS["getRouteKeyData"], {"site": site_key, "routeKey": ROUTE_KEY})
    if status != 200 or not answer.get("widgetFound"):
        raise SystemExit(f"getRouteKeyData answered {status}: {answer}")
    body = {
        "site": site_key,
        "routeKey": ROUTE_KEY,
        "phone": "79009999999",
        "fields": [{"name": "Name", "value": "Ivan"}],
        "tags": ["bench"],
    }
    status, answer = http_json("POST", base + PATHS["createRequest"], body)
    if status != 200 or "callbackRequestId" not in answer:
        raise SystemExit(f"createRequest answered {status}: {answer}")


# -- load ---------------------------------------------------------------------------------------------------


def write_lua(workdir: Path, endpoint: str, site_key: str, offset: int) -> Path:
    script = (
        LUA_TEMPLATE.replace("@SITE@", site_key)
        .replace("@ENDPOINT@", endpoint)
        .replace("@ROUTE@", ROUTE_KEY)
        .replace("@OFFSET@", str(offset))
    )
    path = workdir / f"{endpoint}-{offset}.lua"
    path.write_text(script)
    return path


def wrk(url: str, lua: Path, seconds: float) -> dict[str, int]:
    argv = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{max(1, round(seconds))}s", "--latency", "-s", str(lua), url]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
    for line in out.splitlines():
        if line.startswith("WRKJSON "):
            return json.loads(line[len("WRKJSON ") :])
    raise SystemExit(f"wrk printed no summary:\n{out}")


def measure(server: Server, endpoint: str, lua: Path, seconds: float, warmup: float) -> RunResult:
    url = f"http://127.0.0.1:{server.port}{PATHS[endpoint]}"
    if warmup > 0:  # first requests open pooled connections and load the site snapshot: not steady state
        wrk(url, lua, warmup)
    cpu_before = cpu_seconds(server.proc.pid)
    stats = wrk(url, lua, seconds)
    cpu = cpu_seconds(server.proc.pid) - cpu_before
    errors = {k: stats[k] for k in ("status", "connect", "read", "write", "timeout") if stats[k]}
    return RunResult(
        endpoint=endpoint,
        server=server.name,
        rps=stats["requests"] / (stats["duration_us"] / 1e6),
        p50_ms=stats["p50_us"] / 1000,
        p99_ms=stats["p99_us"] / 1000,
        requests=stats["requests"],
        errors=errors,
        cpu_ms=1000 * cpu / max(1, stats["requests"]),
    )


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children (uvicorn's worker processes), from /proc.

    CPU per request is the figure a busy shared box disturbs least: req/s falls when other work takes the
    cores, the CPU each request costs hardly moves."""
    total = 0.0
    pids = [pid]
    while pids:
        current = pids.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            pids += [int(c) for c in Path(f"/proc/{current}/task/{current}/children").read_text().split()]
        except OSError:
            continue
    return total


def committed_requests(db_path: Path) -> int:
    with sqlite3.connect(db_path) as conn:
        return int(conn.execute("SELECT count(*) FROM callback_requests").fetchone()[0])


# -- one mode (worker off or on) -------------------------------------------------------------------------------


def run_mode(worker: bool, args: argparse.Namespace, root: Path) -> list[RunResult]:
    workdir = root / ("worker-on" if worker else "worker-off")
    workdir.mkdir()
    db_path = workdir / "perezvon.db"  # a fresh database per mode: no backlog carried between modes
    db_url = f"sqlite:///{db_path}"  # an absolute path, hence four slashes (DESIGN §5)

    server = start_perezvon(workdir, db_url, worker)
    try:
        base = f"http://127.0.0.1:{server.port}"
        site_key = provision(base)
        sanity_check(base, site_key)
    finally:
        server.stop()

    results: list[RunResult] = []
    offset = 0
    for endpoint in args.endpoints:
        answered = 0
        for _ in range(args.rounds):
            for name in ("baseline", "perezvon"):
                offset += 1_000_000  # fresh phones for every run
                lua = write_lua(workdir, endpoint, site_key, offset)
                srv = start_baseline(workdir) if name == "baseline" else start_perezvon(workdir, db_url, worker)
                try:
                    result = measure(srv, endpoint, lua, args.duration, args.warmup)
                finally:
                    srv.stop()
                results.append(result)
                if name == "perezvon" and endpoint == "createRequest":
                    answered += result.requests
                print(
                    f"  {endpoint:<16} {name:<9} {result.rps:9.0f} req/s  p50 {result.p50_ms:7.2f} ms"
                    f"  p99 {result.p99_ms:7.2f} ms  cpu {result.cpu_ms:.3f} ms/req"
                    + (f"  ERRORS {result.errors}" if result.errors else ""),
                    flush=True,
                )
        if endpoint == "createRequest":
            # Durability sanity check: every answered id must be a committed row (in-flight requests cut off
            # at the end of a run may add rows whose answers wrk never counted, hence >=).
            rows = committed_requests(db_path)
            state = "ok" if rows >= answered else "MISSING ROWS"
            print(f"  committed callback_requests rows: {rows} (answered by timed runs: {answered}) {state}")
    return results


# -- PostgreSQL: createRequest with 1, 2, 4... API processes -------------------------------------------------


def pg_admin(admin_url: str, sql: str, query: str = "") -> Any:
    import asyncio

    import asyncpg

    async def run() -> Any:
        conn = await asyncpg.connect(admin_url)
        try:
            await conn.execute(sql) if sql else None
            return await conn.fetchval(query) if query else None
        finally:
            await conn.close()

    return asyncio.run(run())


def pg_url(admin_url: str, name: str) -> str:
    return admin_url.rsplit("/", 1)[0] + "/" + name


def forget_redis_namespace(redis_url: str, namespace: str) -> None:
    from redis import Redis

    client = Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{namespace}*", count=1000))
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start : start + 1000])
    finally:
        client.close()


def run_scaling(args: argparse.Namespace, root: Path) -> tuple[list[str], bool]:
    """For each process count: a fresh PostgreSQL database, then alternating baseline / perezvon runs."""
    medians: dict[int, dict[str, float]] = {}
    failed = False
    for processes in args.processes:
        workdir = root / f"pg-{processes}"
        workdir.mkdir()
        name = f"pzv_bench_api_{os.getpid()}_{processes}"
        namespace = f"pzvbench{os.getpid()}x{processes}"
        pg_admin(args.pg_admin_url, f'CREATE DATABASE "{name}"')
        db_url = pg_url(args.pg_admin_url, name)
        redis = (args.redis_url, namespace)
        print(
            f"\n{processes} API process(es): perezvon serve --workers {processes} on PostgreSQL, "
            f"baseline with {processes} process(es); load average {os.getloadavg()[0]:.1f}",
            flush=True,
        )
        try:
            server = start_perezvon(workdir, db_url, False, processes, redis)
            try:
                base = f"http://127.0.0.1:{server.port}"
                site_key = provision(base)
                sanity_check(base, site_key)
            finally:
                server.stop()
            runs: list[RunResult] = []
            answered, offset = 0, processes * 100_000_000
            for _ in range(args.rounds):
                for who in ("baseline", "perezvon"):
                    offset += 1_000_000
                    lua = write_lua(workdir, "createRequest", site_key, offset)
                    srv = (
                        start_baseline(workdir, processes)
                        if who == "baseline"
                        else start_perezvon(workdir, db_url, False, processes, redis)
                    )
                    try:
                        result = measure(srv, "createRequest", lua, args.duration, args.warmup)
                    finally:
                        srv.stop()
                    runs.append(result)
                    failed = failed or bool(result.errors)
                    answered += result.requests if who == "perezvon" else 0
                    print(
                        f"  createRequest    {who:<9} {result.rps:9.0f} req/s  p50 {result.p50_ms:7.2f} ms"
                        f"  p99 {result.p99_ms:7.2f} ms  cpu {result.cpu_ms:.3f} ms/req"
                        + (f"  ERRORS {result.errors}" if result.errors else ""),
                        flush=True,
                    )
            rows = int(pg_admin(db_url, "", "SELECT count(*) FROM callback_requests"))
            print(
                f"  committed callback_requests rows: {rows} (answered by timed runs: {answered}) "
                f"{'ok' if rows >= answered else 'MISSING ROWS'}"
            )
            failed = failed or rows < answered
            medians[processes] = {
                who: statistics.median(r.rps for r in runs if r.server == who) for who in ("baseline", "perezvon")
            }
            medians[processes]["p99"] = statistics.median(r.p99_ms for r in runs if r.server == "perezvon")
            for who in ("baseline", "perezvon"):
                medians[processes][f"cpu_{who}"] = statistics.median(r.cpu_ms for r in runs if r.server == who)
        finally:
            pg_admin(args.pg_admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            if args.redis_url:
                forget_redis_namespace(args.redis_url, namespace)
    first = medians[args.processes[0]]
    lines = [
        f"createRequest on PostgreSQL, API processes only (PEREZVON_RUN_WORKER=false), "
        f"Redis {'on' if args.redis_url else 'off'}; load average now {os.getloadavg()[0]:.1f}",
        f"{'processes':>9} {'baseline':>9} {'perezvon':>9} {'pz p99 ms':>9} {'ratio':>6} "
        f"{'pz scaling':>10} {'base scaling':>12} {'cpu ms/req base/pz':>18} {'cpu ratio':>9}",
    ]
    for processes, m in medians.items():
        lines.append(
            f"{processes:>9} {m['baseline']:>9.0f} {m['perezvon']:>9.0f} {m['p99']:>9.1f} "
            f"{m['perezvon'] / m['baseline']:>6.2f} {m['perezvon'] / first['perezvon']:>10.2f} "
            f"{m['baseline'] / first['baseline']:>12.2f} "
            f"{m['cpu_baseline']:>8.3f} /{m['cpu_perezvon']:>7.3f} {m['cpu_baseline'] / m['cpu_perezvon']:>9.2f}"
        )
    return lines, failed


# -- report --------------------------------------------------------------------------------------------------


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.splitlines()
    return (
        f"nproc {os.cpu_count()}, {model}; Python {platform.python_version()}; "
        f"{wrk_version[0] if wrk_version else 'wrk'}; {platform.platform()}"
    )


def summarise(mode: str, results: list[RunResult], endpoints: list[str]) -> list[str]:
    """Medians per server; ``ratio`` is req/s perezvon / baseline, ``cpu ratio`` is CPU per request
    baseline / perezvon (the same question asked of CPU time, which a loaded box disturbs far less)."""
    lines = [
        f"{mode}",
        f"{'endpoint':<16} {'server':<9} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'cpu ms/req':>10} {'ratio':>6}"
        f" {'cpu ratio':>9}  goal",
    ]
    for endpoint in endpoints:
        medians: dict[str, tuple[float, float, float, float]] = {}
        for name in ("baseline", "perezvon"):
            runs = [r for r in results if r.endpoint == endpoint and r.server == name]
            medians[name] = (
                statistics.median(r.rps for r in runs),
                statistics.median(r.p50_ms for r in runs),
                statistics.median(r.p99_ms for r in runs),
                statistics.median(r.cpu_ms for r in runs),
            )
        ratio = medians["perezvon"][0] / medians["baseline"][0]
        cpu_ratio = medians["baseline"][3] / max(medians["perezvon"][3], 1e-9)
        goal = GOALS[endpoint]
        for name in ("baseline", "perezvon"):
            rps, p50, p99, cpu = medians[name]
            tail = (
                f"{ratio:6.2f} {cpu_ratio:9.2f}  >= {goal} {'met' if ratio >= goal else 'MISSED'}"
                if name == "perezvon"
                else ""
            )
            lines.append(f"{endpoint:<16} {name:<9} {rps:8.0f} {p50:8.2f} {p99:8.2f} {cpu:10.3f} {tail}")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description="perezvon public API throughput vs a bare Starlette endpoint")
    parser.add_argument("--duration", type=float, default=12.0, help="seconds per timed run (default 12)")
    parser.add_argument("--warmup", type=float, default=2.0, help="untimed seconds before each run (default 2)")
    parser.add_argument("--rounds", type=int, default=2, help="baseline/perezvon pairs per endpoint (default 2)")
    parser.add_argument("--worker", choices=("off", "on", "both"), default="both", help="PEREZVON_RUN_WORKER")
    parser.add_argument(
        "--endpoints", nargs="+", choices=tuple(PATHS), default=list(PATHS), help="which public endpoints to time"
    )
    parser.add_argument(
        "--pg-admin-url",
        default="",
        help="PostgreSQL mode: a URL whose user may create databases (one per process count)",
    )
    parser.add_argument(
        "--processes",
        type=int,
        nargs="+",
        default=[1, 2, 4],
        help="PostgreSQL mode: API process counts to run (default 1 2 4)",
    )
    parser.add_argument("--redis-url", default="", help="PostgreSQL mode: share limits through this Redis")
    args = parser.parse_args()

    missing = [tool for tool in ("wrk",) if shutil.which(tool) is None]
    if not (VENV_BIN / "perezvon").exists():
        missing.append(str(VENV_BIN / "perezvon"))
    if missing:
        print(f"missing: {', '.join(missing)}", file=sys.stderr)
        print("install wrk with: apt-get install -y wrk (Debian/Ubuntu); run with the project venv's python")
        return 2

    print(f"machine: {machine()}")
    print(
        f"wrk -t1 -c{CONNECTIONS} --latency, {args.duration:g} s timed runs after {args.warmup:g} s warm-up, "
        f"{args.rounds} alternating round(s); PEREZVON_IP_RATE_LIMIT=0; "
        + ("PostgreSQL" if args.pg_admin_url else "SQLite WAL, synchronous=FULL")
    )
    if args.pg_admin_url:
        with tempfile.TemporaryDirectory(prefix="perezvon-bench-") as tmp:
            lines, failed = run_scaling(args, Path(tmp))
        print("\n" + "\n".join(lines))
        return 1 if failed else 0
    modes = {"off": [False], "on": [True], "both": [False, True]}[args.worker]
    report: list[str] = []
    failed = False
    with tempfile.TemporaryDirectory(prefix="perezvon-bench-") as tmp:
        for worker in modes:
            mode = f"perezvon serve, PEREZVON_RUN_WORKER={'true' if worker else 'false'}"
            print(f"\n{mode}", flush=True)
            load_before = os.getloadavg()[0]
            results = run_mode(worker, args, Path(tmp))
            failed = failed or any(r.errors for r in results)
            # Other work on the box moves both servers' figures; say how busy it was, so a reader can judge.
            load = f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
            report += [""] + summarise(f"{mode} ({load})", results, args.endpoints)
    print("\n".join(report))
    if failed:
        print("\nsome runs had errors (non-2xx answers or socket errors): the figures above are not valid")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
