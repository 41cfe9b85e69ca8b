"""Fuzz every JSON endpoint with schemathesis against a real ``perezvon serve`` (DESIGN §7 "Bad input").

Reads the served OpenAPI document (public widget API, server-side create, admin API) and sends what
schemathesis generates from it, valid and invalid, through its coverage, fuzzing and stateful phases;
every answer is checked for: no 5xx, a documented status code, a body matching the documented schema,
the documented content type. Prints the figures for docs/benchmarks.md: inputs sent, operations,
failures by kind, time. No ratio here: the figure of merit is the failure count, which must be 0.

    .venv/bin/python bench/api_fuzz.py                       # ≥ 10 000 inputs on a SQLite file (~5 min)
    .venv/bin/python bench/api_fuzz.py --max-examples 40     # a quick look
    .venv/bin/python bench/api_fuzz.py --database-url postgresql://postgres@127.0.0.1:5432/pzv_fuzz

The PostgreSQL database must exist and be empty (it is migrated here). Loopback only; the temporary
directory (SQLite file, server log, report) is removed afterwards; bounded by --timeout.
Needs the dev extras (``pip install -e '.[dev]'``: schemathesis).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ADMIN_TOKEN = "fuzz-admin-token-0123456789abcdef"
CHECKS = "not_a_server_error,status_code_conformance,response_schema_conformance,content_type_conformance"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, deadline_s: float = 30) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("perezvon serve exited early; see its log")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("perezvon serve did not start")


def run(
    database_url: str, workdir: Path, max_examples: int, timeout_s: float, seed: str | None, workers: int = 2
) -> dict:
    """Serve, fuzz, stop; returns the figures parsed from schemathesis' summary."""
    bin_dir = Path(sys.executable).parent
    schemathesis = bin_dir / "schemathesis"
    if not schemathesis.exists():
        raise SystemExit("schemathesis is not installed: .venv/bin/pip install -e '.[dev]'")
    port = free_port()
    env = {
        **os.environ,
        "PEREZVON_DATABASE_URL": database_url,
        "PEREZVON_ADMIN_TOKEN": ADMIN_TOKEN,
        "PEREZVON_IP_RATE_LIMIT": "0",
        "PEREZVON_RUN_WORKER": "false",
        # Fuzzed webhook URLs name random hosts: allowing private receivers skips their DNS look-ups, so
        # no query leaves the machine (the refusal itself is covered by tests/calls/test_webhook_addresses.py).
        "PEREZVON_WEBHOOK_ALLOW_PRIVATE": "true",
        "PEREZVON_LOG_LEVEL": "warning",
    }
    log_path = workdir / "server.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [str(bin_dir / "perezvon"), "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(port, server)
        command = [
            str(schemathesis),
            "run",
            f"http://127.0.0.1:{port}/api/openapi.json",
            "-H",
            f"Authorization: Bearer {ADMIN_TOKEN}",
            "-H",
            f"Access-Token: {ADMIN_TOKEN}",
            "--max-examples",
            str(max_examples),
            "--checks",
            CHECKS,
            "--workers",
            "2",
            "--suppress-health-check",
            "all",
            # Calltouch's request export authenticates by a query parameter (clientApiId) that the generator
            # cannot know, so every case would be a 401; tests/api/test_calltouch_export.py covers it.
            "--exclude-path-regex",
            "^/calls-service/",
            "--no-color",
        ]
        if seed:
            command += ["--seed", seed]
        began = time.monotonic()
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, env={**os.environ})
        elapsed = time.monotonic() - began
    finally:
        server.terminate()
        server.wait(15)
    output = done.stdout + done.stderr
    (workdir / "schemathesis.log").write_text(output)
    figures = parse_summary(output)
    figures.update(
        elapsed_s=round(elapsed, 1),
        exit_code=done.returncode,
        server_errors_logged=log_path.read_text(errors="replace").count("Traceback"),
    )
    return figures


def parse_summary(output: str) -> dict:
    """'3334 generated, 3334 passed' / '…, 2 found 4 unique failures', 'Tested: 28', failure kinds."""
    figures: dict = {"generated": 0, "operations": 0, "failures": {}}
    generated = re.search(r"(\d+) generated", output)
    if generated:
        figures["generated"] = int(generated.group(1))
    tested = re.search(r"Tested:\s+(\d+)", output)
    if tested:
        figures["operations"] = int(tested.group(1))
    for kind, count in re.findall(r"(ST\d+ [A-Za-z ]+?): (\d+)", output):
        figures["failures"][kind.strip()] = int(count)
    figures["seed"] = (re.search(r"Seed: (\d+)", output) or [None, None])[1]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=400, help="per operation and phase (default 400)")
    parser.add_argument("--database-url", default="", help="an empty PostgreSQL database (default: a SQLite file)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds for the whole fuzz run")
    parser.add_argument("--seed", default=None, help="schemathesis' seed, to replay a run")
    parser.add_argument("--workers", type=int, default=2, help="schemathesis' concurrent workers (default 2)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="perezvon-fuzz-"))
    try:
        url = args.database_url or f"sqlite:///{workdir / 'perezvon.db'}"
        figures = run(url, workdir, args.max_examples, args.timeout, args.seed, args.workers)
        print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
        print(f"database: {'PostgreSQL' if args.database_url else 'SQLite file'}; max examples {args.max_examples}")
        print(
            f"inputs sent: {figures['generated']} over {figures['operations']} operations in {figures['elapsed_s']} s"
        )
        print(
            f"failures: {figures['failures'] or 'none'}; tracebacks in the server log: "
            f"{figures['server_errors_logged']}; seed {figures['seed']}"
        )
        if figures["exit_code"] != 0:
            print("--- schemathesis output (tail) ---")
            print("\n".join((workdir / "schemathesis.log").read_text().splitlines()[-60:]))
            print(f"kept for a look: {workdir} (schemathesis.log, server.log)")
            raise SystemExit(1)
        shutil.rmtree(workdir, ignore_errors=True)
    except BaseException:
        if not any(workdir.glob("*.log")):
            shutil.rmtree(workdir, ignore_errors=True)
        raise


if __name__ == "__main__":
    main()
