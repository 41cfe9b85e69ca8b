"""Real SIP peers for end-to-end tests: Kamailio as the trunk, baresip as phones, sipp as scripted UAS.

Everything binds 127.0.0.1 on ports probed free at run time (tests may run next to others), readiness
and call progress are awaited as events (a reply to OPTIONS, baresip's ctrl_tcp events, sipp's exit),
and every process started here is stopped in the fixture's teardown, phones before the router.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .sip_audio import read_wav

HOST = "127.0.0.1"
SCENARIOS = Path(__file__).parent / "scenarios"
KAMAILIO_MODULES = "/usr/lib/x86_64-linux-gnu/kamailio/modules"


def need(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        pytest.skip(f"{binary} is not installed (apt-get install sip-tester baresip espeak-ng sox kamailio)")
    return path


# --- ports -------------------------------------------------------------------------------------------


def _free(port: int, *, tcp: bool = True, udp: bool = True) -> bool:
    kinds = ([socket.SOCK_STREAM] if tcp else []) + ([socket.SOCK_DGRAM] if udp else [])
    for kind in kinds:
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind((HOST, port))
            except OSError:
                return False
    return True


def _below_ephemeral_range() -> tuple[int, int]:
    """Ports the kernel never hands out by itself. A peer's port probed free may otherwise be taken, before
    the peer binds it, by a socket bound to port 0 (our dialer's RTP sockets are): a flaky call setup."""
    try:
        first_ephemeral = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        first_ephemeral = 32768
    return 20000, max(20500, first_ephemeral - 1)


def free_port_block(size: int = 1) -> int:
    """A first port p with p..p+size-1 free for TCP and UDP (baresip also takes SIP port+1 for TLS)."""
    rng = random.Random()
    low, high = _below_ephemeral_range()
    for _ in range(200):
        base = rng.randrange(low, high - size)
        if all(_free(base + i) for i in range(size)):
            return base
    raise RuntimeError("no free port block on 127.0.0.1")


def free_port() -> int:
    return free_port_block(1)


async def wait_bound_udp(port: int, proc: asyncio.subprocess.Process | subprocess.Popen, timeout: float = 10.0) -> None:
    """Wait until something holds the UDP port (the peer is listening), or fail if it died."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while _free(port, tcp=False):
        code = proc.returncode if isinstance(proc, asyncio.subprocess.Process) else proc.poll()
        if code is not None:
            raise RuntimeError(f"peer exited with {code} before binding {port}")
        if loop.time() > deadline:
            raise TimeoutError(f"nothing bound UDP {port}")
        await asyncio.sleep(0.02)  # polling a bind: there is no event to await for another process's socket


def _stop(proc: subprocess.Popen, *, group: bool = False) -> None:
    if proc.poll() is not None:
        return
    send = (lambda sig: os.killpg(proc.pid, sig)) if group else proc.send_signal
    with contextlib.suppress(ProcessLookupError):
        send(signal.SIGTERM)
        try:
            proc.wait(3)
        except subprocess.TimeoutExpired:
            # An idle baresip may ignore the first SIGTERM (TELEPHONY-LAB); Kamailio's children too.
            send(signal.SIGKILL)
            proc.wait(3)


# --- Kamailio: one trunk address routing numbers to phones -------------------------------------------

KAMAILIO_CFG = """#!KAMAILIO
debug=1
log_stderror=yes
children=1
auto_aliases=no
listen=udp:{host}:{port}
{tls}
mpath="{modules}"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "siputils.so"
request_route {{
    if (!mf_process_maxfwd_header("10")) {{ sl_send_reply("483", "Too Many Hops"); exit; }}
    if (has_totag()) {{
        # In-dialog: follow Record-Route; relay anyway for peers that ignore it (baresip's BYE).
        if (loose_route()) {{ t_relay(); exit; }}
        if (is_method("ACK")) {{ if (t_check_trans()) {{ t_relay(); }} exit; }}
        t_relay();
        exit;
    }}
    if (is_method("CANCEL")) {{ if (t_check_trans()) {{ t_relay(); }} exit; }}
    if (is_method("OPTIONS") && $rU == $null) {{ sl_send_reply("200", "OK"); exit; }}
    if (is_method("INVITE")) {{ record_route(); }}
{routes}
    sl_send_reply("404", "Not Found");
}}
"""


# Kamailio's TLS module (Debian kamailio-tls-modules) on a second port; `tcp_accept_aliases` lets a
# client's Via `alias` (RFC 5923) carry requests back on the client's own connection.
KAMAILIO_TLS = """enable_tls=yes
tcp_accept_aliases=yes
listen=tls:{host}:{tls_port}
loadmodule "tls.so"
modparam("tls", "certificate", "{cert}")
modparam("tls", "private_key", "{key}")
modparam("tls", "verify_certificate", 0)
modparam("tls", "require_certificate", 0)
modparam("tls", "tls_method", "TLSv1.2+")
"""


def make_certificates(work: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1 / localhost signed by it: (ca, cert, key)."""
    need("openssl")
    ca_key, ca, key, csr, cert = (work / n for n in ("ca.key", "ca.pem", "server.key", "server.csr", "server.pem"))
    run = lambda *args: subprocess.run(["openssl", *args], check=True, capture_output=True)  # noqa: E731
    run(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        str(ca_key),
        "-out",
        str(ca),
        "-days",
        "2",
        "-subj",
        "/CN=perezvon test CA",
    )
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", "/CN=localhost")
    ext = work / "san.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run(
        "x509",
        "-req",
        "-in",
        str(csr),
        "-CA",
        str(ca),
        "-CAkey",
        str(ca_key),
        "-CAcreateserial",
        "-out",
        str(cert),
        "-days",
        "2",
        "-extfile",
        str(ext),
    )
    return ca, cert, key


@dataclass
class Router:
    port: int
    proc: subprocess.Popen
    tls_port: int = 0
    ca: Path | None = None  # the CA that signed its TLS certificate


async def _options_ping(port: int, timeout: float) -> None:
    """Send OPTIONS until a reply comes back: the router is up."""
    loop = asyncio.get_running_loop()
    got = loop.create_future()

    class Proto(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: tuple) -> None:
            if not got.done():
                got.set_result(data)

    transport, _ = await loop.create_datagram_endpoint(Proto, local_addr=(HOST, 0))
    me = transport.get_extra_info("sockname")[1]
    msg = (
        f"OPTIONS sip:{HOST}:{port} SIP/2.0\r\nVia: SIP/2.0/UDP {HOST}:{me};branch=z9hG4bKping{me}\r\n"
        f"Max-Forwards: 70\r\nFrom: <sip:ping@{HOST}>;tag=p\r\nTo: <sip:{HOST}:{port}>\r\n"
        f"Call-ID: ping{me}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    ).encode()
    try:
        deadline = loop.time() + timeout
        while not got.done():
            transport.sendto(msg, (HOST, port))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(got), 0.2)
            if loop.time() > deadline:
                raise TimeoutError(f"no reply to OPTIONS from {HOST}:{port}")
    finally:
        transport.close()


@pytest.fixture
async def kamailio(tmp_path: Path) -> AsyncIterator[object]:
    need("kamailio")
    routers: list[Router] = []

    async def start(routes: dict[str, int], *, tls: bool = False) -> Router:
        port = free_port()
        lines = "\n".join(
            f'    if ($rU == "{number}") {{ $du = "sip:{HOST}:{dest}"; t_relay(); exit; }}'
            for number, dest in routes.items()
        )
        work = tmp_path / f"kamailio-{port}"
        work.mkdir()
        tls_cfg, tls_port, ca = "", 0, None
        if tls:
            if not Path(KAMAILIO_MODULES, "tls.so").exists():
                pytest.skip("Kamailio's TLS module is not installed (apt-get install kamailio-tls-modules)")
            tls_port = free_port()
            ca, cert, key = make_certificates(work)
            tls_cfg = KAMAILIO_TLS.format(host=HOST, tls_port=tls_port, cert=cert, key=key)
        cfg = work / "kamailio.cfg"
        cfg.write_text(KAMAILIO_CFG.format(host=HOST, port=port, modules=KAMAILIO_MODULES, routes=lines, tls=tls_cfg))
        log = (work / "log").open("wb")
        # -DD: stay in the foreground (its children in our process group, stopped together).
        proc = subprocess.Popen(
            ["kamailio", "-DD", "-E", "-f", str(cfg), "-Y", str(work), "-w", str(work)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        router = Router(port, proc, tls_port, ca)
        routers.append(router)
        await _options_ping(port, 10.0)
        return router

    yield start
    for router in routers:
        _stop(router.proc, group=True)


# --- baresip phones ----------------------------------------------------------------------------------


def tone_wav(path: Path, freq: float, seconds: float) -> Path:
    subprocess.run(
        [
            "sox",
            "-n",
            "-r",
            "8000",
            "-c",
            "1",
            "-b",
            "16",
            str(path),
            "synth",
            str(seconds),
            "sine",
            str(freq),
            "vol",
            "0.5",
        ],
        check=True,
    )
    return path


BARESIP_CONFIG = """poll_method epoll
sip_listen {host}:{sip_port}
net_interface {host}
rtp_ports {rtp_lo}-{rtp_hi}
audio_player aufile,{dir}/played.wav
audio_source aufile,{source}
audio_alert aufile,/dev/null
module_path /usr/lib/baresip/modules
module g711.so
module aufile.so
module sndfile.so
module srtp.so
module_app account.so
module_app menu.so
module_app ctrl_tcp.so
ctrl_tcp_listen {host}:{ctrl_port}
snd_path {dir}/rec
"""


@dataclass
class Phone:
    number: str
    sip_port: int
    ctrl_port: int
    dir: Path
    proc: subprocess.Popen
    events: list[dict] = field(default_factory=list)
    _reader: asyncio.StreamReader | None = None
    _writer: asyncio.StreamWriter | None = None

    async def connect(self, timeout: float = 10.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"baresip for {self.number} exited: {(self.dir / 'log').read_text()[-500:]}")
            try:
                self._reader, self._writer = await asyncio.open_connection(HOST, self.ctrl_port)
                return
            except OSError:
                if loop.time() > deadline:
                    raise
                await asyncio.sleep(0.05)  # baresip not listening yet: no event exists for that

    async def command(self, command: str, params: str = "") -> None:
        """A ctrl_tcp command, e.g. ("sndcode", "1") to press a key (netstring-framed JSON)."""
        assert self._writer is not None
        body = json.dumps({"command": command, "params": params, "token": command}).encode()
        self._writer.write(b"%d:%s," % (len(body), body))
        await self._writer.drain()

    async def wait_event(self, kind: str, timeout: float = 15.0) -> dict:
        """The next ctrl_tcp event of this type (netstring-framed JSON), seen events kept in `events`."""
        for ev in self.events:
            if ev.get("type") == kind and not ev.get("_seen"):
                ev["_seen"] = True
                return ev
        assert self._reader is not None
        async with asyncio.timeout(timeout):
            while True:
                length = await self._reader.readuntil(b":")
                data = await self._reader.readexactly(int(length[:-1]))
                await self._reader.readexactly(1)  # the trailing comma
                with contextlib.suppress(ValueError):
                    ev = json.loads(data)
                    self.events.append(ev)
                    if ev.get("type") == kind:
                        ev["_seen"] = True
                        return ev

    def recording(self, kind: str = "dec") -> list[int]:
        """What the phone received ("dec") or sent ("enc"), from sndfile's dump, as samples."""
        files = sorted((self.dir / "rec").glob(f"dump-*-{kind}.wav"))
        assert files, f"{self.number} recorded nothing"
        return read_wav(files[-1])

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        _stop(self.proc)


@pytest.fixture
def phones(tmp_path: Path) -> Iterator[object]:
    need("baresip")
    need("sox")
    started: list[Phone] = []

    async def start(
        number: str,
        freq: float,
        seconds: float = 30.0,
        *,
        answermode: str = "auto",
        mediaenc: str = "",
        config: str = "",
    ) -> Phone:
        """A phone playing a `freq` tone; `answermode=manual` rings until told to `accept`;
        `mediaenc` ("srtp" offers/accepts SDES, "srtp-mand" insists on it); `config`: more config lines."""
        sip_port = free_port_block(2)
        ctrl_port = free_port()
        rtp_lo = free_port_block(8)
        work = tmp_path / f"phone-{number}"
        (work / "rec").mkdir(parents=True)
        source = tone_wav(work / "tone.wav", freq, seconds)
        (work / "config").write_text(
            BARESIP_CONFIG.format(
                host=HOST,
                sip_port=sip_port,
                rtp_lo=rtp_lo,
                rtp_hi=rtp_lo + 7,
                dir=work,
                source=source,
                ctrl_port=ctrl_port,
            )
            + config
        )
        enc = f";mediaenc={mediaenc}" if mediaenc else ""
        (work / "accounts").write_text(f"<sip:{number}@{HOST}>;regint=0;answermode={answermode}{enc}\n")
        log = (work / "log").open("wb")
        proc = subprocess.Popen(
            ["baresip", "-f", str(work), "-t", "120"], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )
        phone = Phone(number, sip_port, ctrl_port, work, proc)
        started.append(phone)
        await phone.connect()
        return phone

    yield start
    for phone in started:
        phone.close()


# --- sipp ----------------------------------------------------------------------------------------------


@dataclass
class Sipp:
    port: int
    proc: asyncio.subprocess.Process
    workdir: Path

    async def wait(self, timeout: float = 30.0) -> int:
        try:
            return await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            raise

    def messages(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.workdir.glob("*messages.log"))


@pytest.fixture
async def sipp(tmp_path: Path) -> AsyncIterator[object]:
    binary = need("sipp")
    started: list[Sipp] = []

    async def start(scenario: str, *, transport: str = "u1", extra: tuple[str, ...] = ()) -> Sipp:
        port = free_port()
        work = tmp_path / f"sipp-{port}"
        work.mkdir()
        proc = await asyncio.create_subprocess_exec(
            binary,
            "-sf",
            str(SCENARIOS / scenario),
            "-i",
            HOST,
            "-p",
            str(port),
            "-t",
            transport,
            "-m",
            "1",
            "-nostdin",
            "-timeout",
            "30s",
            "-timeout_error",
            "-trace_msg",
            "-trace_err",
            *extra,
            cwd=work,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        peer = Sipp(port, proc, work)
        started.append(peer)
        await wait_bound_udp(port, proc) if transport.startswith("u") else await _wait_tcp(port, proc)
        return peer

    yield start
    for peer in started:
        if peer.proc.returncode is None:
            peer.proc.kill()
            await peer.proc.wait()


async def _wait_tcp(port: int, proc: asyncio.subprocess.Process, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            _, w = await asyncio.open_connection(HOST, port)
            w.close()
            return
        except OSError:
            if proc.returncode is not None or loop.time() > deadline:
                raise
            await asyncio.sleep(0.02)
