"""Running what deploy/ describes, for real: systemd units' commands, Debian's nginx with our site, a
throwaway redis-server. Every process here is the test's own, on free loopback ports."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from support import ROOT, free_port, wait_port

DEPLOY = ROOT / "deploy"
PEREZVON_BIN = Path(sys.executable).parent / "perezvon"


def unit_values(path: Path, key: str) -> list[str]:
    """Every ``key=value`` of a systemd unit, in order (Environment= may repeat)."""
    return [line.split("=", 1)[1].strip() for line in path.read_text().splitlines() if line.startswith(key + "=")]


@dataclass
class Started:
    process: subprocess.Popen
    port: int
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def run_unit(unit: Path, workdir: Path, env: dict[str, str], instance: str = "", port: int | None = None) -> Started:
    """Start a unit's ExecStart as systemd would (its Environment= lines over ``env``, ``%i`` = instance),
    with the installed ``perezvon`` in place of /opt/perezvon/bin/perezvon."""
    [command] = unit_values(unit, "ExecStart")
    argv = [
        PEREZVON_BIN.as_posix() if part == "/opt/perezvon/bin/perezvon" else part.replace("%i", instance)
        for part in command.split()
    ]
    environment = {**os.environ, **env}
    for assignment in unit_values(unit, "Environment"):
        name, _, value = assignment.partition("=")
        environment.setdefault(name, value)  # the test's own values (ports) win over the unit's defaults
    log_path = workdir / f"{unit.stem.rstrip('@')}{instance}.log"
    process = subprocess.Popen(argv, cwd=workdir, env=environment, stdout=log_path.open("wb"), stderr=subprocess.STDOUT)
    started = Started(process, port or int(instance), log_path)
    wait_port(started.port, process, log_path)
    return started


def start_redis(workdir: Path, port: int | None = None) -> Started:
    port = port or free_port()
    log_path = workdir / "redis.log"
    process = subprocess.Popen(
        [
            shutil.which("redis-server") or "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
    )
    started = Started(process, port, log_path)
    wait_port(port, process, log_path)
    return started


def nginx_site(upstream_ports: list[int], listen_port: int) -> str:
    """deploy/nginx/perezvon.conf with the test's ports in place of the documented ones."""
    site = (DEPLOY / "nginx" / "perezvon.conf").read_text()
    servers = re.findall(r"^\s*server 127\.0\.0\.1:\d+;\n", site, flags=re.M)
    assert len(servers) == len(upstream_ports), servers
    for line, port in zip(servers, upstream_ports, strict=True):
        site = site.replace(line, re.sub(r":\d+;", f":{port};", line), 1)
    assert "    listen 80;\n" in site
    return site.replace("    listen 80;\n", f"    listen 127.0.0.1:{listen_port};\n")


def start_nginx(workdir: Path, upstream_ports: list[int]) -> Started:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    port = free_port()
    (workdir / "perezvon.conf").write_text(nginx_site(upstream_ports, port))
    temp = {name: workdir / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    for path in temp.values():
        path.mkdir(exist_ok=True)
    (workdir / "nginx.conf").write_text(f"""
daemon off;
master_process off;
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/nginx-error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {temp["body"]};
    proxy_temp_path {temp["proxy"]};
    fastcgi_temp_path {temp["fastcgi"]};
    uwsgi_temp_path {temp["uwsgi"]};
    scgi_temp_path {temp["scgi"]};
    include {workdir}/perezvon.conf;
}}
""")
    log_path = workdir / "nginx.log"
    process = subprocess.Popen(
        [nginx, "-p", str(workdir), "-c", str(workdir / "nginx.conf")],
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
    )
    started = Started(process, port, log_path)
    wait_port(port, process, log_path)
    return started
