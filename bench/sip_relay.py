"""How many bridged calls can SipDialer's RTP relay carry? (docs/benchmarks.md, "SIP relay")

Topology, all on 127.0.0.1:

    sipp "operator" UAS --rtp_stream (white noise, 50 pps)--> leg A [relay] leg B --> sipp "visitor" UAS
                         <------------------------------------ relay <-- -rtp_echo --

Each call is two real SIP dialogs set up by SipDialer (INVITE/200/ACK, BYE at the end), then bridged:
every packet crosses the relay twice (A->B, then its echo B->A), 100 packets/s per call in and out.

Measured per level of concurrent calls, over a window after all bridges are up:
  * loss: packets that reached our RTP sockets but were not relayed (kernel socket drops from
    /proc/net/udp + the relay's own counters), and on the wire for sampled calls (tcpdump);
  * added jitter: for sampled calls, each packet's transit time through the relay (tcpdump time in
    -> out on lo) minus the call's fastest transit: the delay variation the relay introduced;
  * same-run baseline: sipp's own echo (C, no Python) turning the same packets around, timed the
    same way in the same capture ("echo p99"): what the machine's scheduling costs any forwarder;
  * the interarrival jitter at the receiving sipp ("rx dev p99"; with --direct-baseline also for sipp
    streaming straight to sipp, "base dev"): sipp's own pacing makes both about 20 ms.

With --rtpengine, each run of a level is followed by the same calls relayed by rtpengine (Debian
rtpengine-daemon, userspace forwarding, no kernel module), which the bench starts and drives over its
NG control protocol (bencode over UDP: offer, answer, query, delete) as a B2BUA would; sipp, the
capture and the figures are the same, and a ratio line per level gives our relay's CPU per packet
relayed and added jitter p99 over rtpengine's (medians of the runs). rtpengine runs at the bench's
priority (--nice/--realtime apply to both forwarders).

Usage:  .venv/bin/python bench/sip_relay.py [--levels 100,150,200,250] [--seconds 5] [--repeat 3]
                                            [--uvloop] [--nice -10] [--direct-baseline] [--rtpengine]
Needs sipp (Debian sip-tester), sox and tcpdump (and rtpengine-daemon for --rtpengine); run as a user
allowed to capture on lo (root). Each level runs about 15 s per mode; the whole run stays under 5
minutes per mode. Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import random
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from perezvon.calls.dialer.base import RingResult, Trunk  # noqa: E402
from perezvon.calls.dialer.sip import SipDialer, SipLeg  # noqa: E402

HOST = "127.0.0.1"
LOSS_LIMIT = 0.001  # 0.1 %
JITTER_LIMIT_MS = 5.0
SAMPLE_CALLS = 12
# sipp's rtp_stream sends for this many calls per thread at the same instant; real phones are not in
# lock-step, so a few calls per thread spreads the packets the way independent phones would.
THREAD_TASKS = 4
GC_PAUSES: list[float] = []  # ms, every collection while a window is open
_gc_started = [0.0]


def _gc_watch(phase: str, info: dict) -> None:
    if phase == "start":
        _gc_started[0] = time.perf_counter()
    else:
        GC_PAUSES.append((time.perf_counter() - _gc_started[0]) * 1000)


gc.callbacks.append(_gc_watch)

SDP = """v=0
o=sipp 1 1 IN IP4 [local_ip]
s=-
c=IN IP4 [media_ip]
t=0 0
m=audio {port} RTP/AVP 0
a=rtpmap:0 PCMU/8000
a=ptime:20
"""

UAS_REPLY = """  <send>
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Content-Type: application/sdp
      Content-Length: [len]

{sdp}
    ]]>
  </send>
"""

UAS_BYE = """  <recv request="BYE"/>
  <send>
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
"""


def uas_scenario(stream: Path | None) -> str:
    """An answering sipp: streams `stream` in a loop after the ACK, or (None) just answers (echo mode)."""
    port = "[rtpstream_audio_port]" if stream else "[media_port]"
    play = (f'  <nop><action><exec rtp_stream="{stream},-1,0"/></action></nop>\n' if stream else "")
    return ('<?xml version="1.0" encoding="ISO-8859-1" ?>\n<scenario name="bench uas">\n'
            '  <recv request="INVITE"/>\n' + UAS_REPLY.format(sdp=SDP.format(port=port)) +
            '  <recv request="ACK"/>\n' + play + UAS_BYE + "</scenario>\n")


def uac_scenario(stream: Path, hold_ms: int) -> str:
    """The baseline caller: sipp straight to the echoing sipp, streaming the same noise."""
    sdp = SDP.format(port="[rtpstream_audio_port]")
    return f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="bench uac">
  <send retrans="500">
    <![CDATA[

      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:bench@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:bench@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

{sdp}
    ]]>
  </send>
  <recv response="200" rtd="true"/>
  <send>
    <![CDATA[

      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:bench@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      [last_To:]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Contact: <sip:bench@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <nop><action><exec rtp_stream="{stream},-1,0"/></action></nop>
  <pause milliseconds="{hold_ms}"/>
  <send retrans="500">
    <![CDATA[

      BYE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:bench@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      [last_To:]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200"/>
</scenario>
"""


# --- processes ------------------------------------------------------------------------------------


def free_port(span: int = 1) -> int:
    for _ in range(200):
        base = random.randrange(21000, 59000)
        ok = True
        for p in range(base, base + span):
            for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                with socket.socket(socket.AF_INET, kind) as s:
                    try:
                        s.bind((HOST, p))
                    except OSError:
                        ok = False
        if ok:
            return base
    raise RuntimeError("no free port")


def start_sipp(work: Path, scenario: str, name: str, *extra: str) -> tuple[subprocess.Popen, int]:
    path = work / f"{name}.xml"
    path.write_text(scenario)
    port = free_port()
    proc = subprocess.Popen(
        ["sipp", "-sf", str(path), "-i", HOST, "-mi", HOST, "-p", str(port), "-nostdin", "-nd",
         "-max_socket", "4096", "-rtp_buffsize", "1048576", "-rtp_threadtasks", str(THREAD_TASKS), *extra],
        cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        preexec_fn=_default_priority)
    return proc, port


def _default_priority() -> None:
    """In sipp's child process: back to normal scheduling, so only the relay gets --nice/--realtime."""
    if os.sched_getscheduler(0) != os.SCHED_OTHER:
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    os.setpriority(os.PRIO_PROCESS, 0, 0)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(3)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(3)


class Capture:
    """tcpdump on lo for a set of UDP ports, written to a pcap we parse ourselves."""

    def __init__(self, path: Path, ports: list[int]) -> None:
        self.path = path
        flt = "udp and (" + " or ".join(f"port {p}" for p in ports) + ")"
        self.proc = subprocess.Popen(
            ["tcpdump", "-i", "lo", "-nn", "-s", "96", "-B", "65536", "-w", str(path), flt],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, preexec_fn=_default_priority)
        assert self.proc.stderr is not None
        line = self.proc.stderr.readline()  # "listening on lo": the capture is armed
        if "listening" not in line:
            raise RuntimeError(f"tcpdump failed: {line}")

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        _, err = self.proc.communicate(timeout=10)
        for line in err.splitlines():
            if "dropped by kernel" in line:
                return int(line.split()[0])
        return 0


def read_pcap(path: Path) -> list[tuple[float, int, int, bytes]]:
    """(time, src port, dst port, first bytes of the UDP payload) for each captured packet."""
    data = path.read_bytes()
    magic = struct.unpack_from("<I", data)[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    nano = magic in (0xA1B23C4D, 0x4D3CB2A1)
    linktype = struct.unpack_from(endian + "I", data, 20)[0]
    link_len = {1: 14, 113: 16, 276: 20}.get(linktype, 14)
    out = []
    pos = 24
    while pos + 16 <= len(data):
        sec, frac, incl, _ = struct.unpack_from(endian + "IIII", data, pos)
        pkt = data[pos + 16 : pos + 16 + incl]
        pos += 16 + incl
        ip = pkt[link_len:]
        if len(ip) < 28 or ip[0] >> 4 != 4 or ip[9] != 17:
            continue
        ihl = (ip[0] & 0x0F) * 4
        sport, dport = struct.unpack_from("!HH", ip, ihl)
        out.append((sec + frac / (1e9 if nano else 1e6), sport, dport, bytes(ip[ihl + 8 :])))
    return out


def kernel_drops(ports: set[int]) -> int:
    """Datagrams the kernel dropped on our sockets (receive buffer full): /proc/net/udp 'drops'."""
    total = 0
    for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
        cols = line.split()
        if int(cols[1].split(":")[1], 16) in ports:
            total += int(cols[-1])
    return total


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def interarrival_dev_ms(times: list[float]) -> list[float]:
    return [abs((b - a) - 0.02) * 1000 for a, b in zip(times, times[1:], strict=False)]


Pair = tuple[tuple[int, int], tuple[int, int]]  # ((relay port, phone port) of side A, the same of side B)


def analyse(packets: list[tuple[float, int, int, bytes]], sample: list[Pair]) -> tuple[list, list, list, int, int]:
    """Added jitter, echo baseline, interarrival deviation and wire loss for the sampled calls.

    Side A's phone streams into A's relay port, the relay sends it out of B's port to B's phone, which
    echoes it back into B's port and the relay sends that out of A's port: whatever forwards (our relay
    or rtpengine), the same four ports tell each packet's transit.
    """
    transit: list[float] = []
    echo_transit: list[float] = []
    out_dev: list[float] = []
    wire_in = wire_lost = 0
    end = max((p[0] for p in packets), default=0)
    for a, b in sample:
        for (src_port, _), (dst_port, dst_phone) in ((a, b), (b, a)):
            # Into src's relay port from its phone; out of dst's relay port to the other phone.
            ins = {p[3][12:]: p[0] for p in packets if p[2] == src_port and p[1] != dst_port}
            outs = [(p[0], p[3][12:]) for p in packets if p[1] == dst_port and p[2] == dst_phone]
            seen = set()
            delays = []
            for t, key in outs:
                if key in ins:
                    delays.append(t - ins[key])
                    seen.add(key)
            if delays:
                floor = min(delays)
                transit += [(d - floor) * 1000 for d in delays]
                out_dev += interarrival_dev_ms([t for t, _ in outs])
            if dst_port == b[0]:
                # Same-run baseline: sipp's echo (C, no Python) turning the same packets around,
                # timed the same way, under the same machine load.
                sent = {key: t for t, key in outs}
                echo = [p[0] - sent[p[3][12:]] for p in packets
                        if p[1] == b[1] and p[2] == b[0] and p[3][12:] in sent and p[0] >= sent[p[3][12:]]]
                if echo:
                    floor = min(echo)
                    echo_transit += [(d - floor) * 1000 for d in echo]
            # Packets that arrived more than 50 ms before the capture ended and never left.
            considered = [k for k, t in ins.items() if t < end - 0.05]
            wire_in += len(considered)
            wire_lost += sum(1 for k in considered if k not in seen)
    return transit, echo_transit, out_dev, wire_in, wire_lost


@dataclass
class Result:
    calls: int
    established: int
    offered_pps: float
    loss: float
    wire_loss: float
    transit_p50_ms: float
    added_jitter_p99_ms: float
    echo_jitter_p99_ms: float
    out_dev_p99_ms: float
    base_dev_p99_ms: float
    cpu: float
    capture_drops: int
    gc_max_ms: float = 0.0
    relayed_pps: float = 0.0
    mode: str = "relay"

    @property
    def cpu_us_per_packet(self) -> float:
        return self.cpu * 1e6 / self.relayed_pps if self.relayed_pps else float("nan")

    @property
    def ok(self) -> bool:
        return (self.established == self.calls and self.loss < LOSS_LIMIT and self.wire_loss < LOSS_LIMIT
                and self.added_jitter_p99_ms < JITTER_LIMIT_MS)


async def relay_level(work: Path, stream: Path, calls: int, seconds: float) -> tuple[Result, list]:
    op_proc, op_port = start_sipp(work, uas_scenario(stream), "operator", "-mp", str(free_port(4)))
    vis_proc, vis_port = start_sipp(work, uas_scenario(None), "visitor", "-rtp_echo", "-mp", str(free_port(4)))
    dialer = SipDialer(None, rtp_timeout=0)
    await dialer.start()
    capture = None
    try:
        await asyncio.sleep(0.5)  # sipp has no readiness signal; INVITE retransmission would cover it anyway
        op_trunk, vis_trunk = Trunk(HOST, op_port), Trunk(HOST, vis_port)
        pairs: list[tuple[SipLeg, SipLeg]] = []
        for start in range(0, calls, 25):  # ring in batches, as a worker pool would
            batch = [(dialer.leg(f"7999{i:07d}", op_trunk), dialer.leg(f"7998{i:07d}", vis_trunk))
                     for i in range(start, min(calls, start + 25))]
            results = await asyncio.gather(*(leg.ring(10) for pair in batch for leg in pair))
            pairs += [p for p, r in zip(batch, zip(results[::2], results[1::2], strict=True), strict=True)
                      if r == (RingResult.ANSWERED, RingResult.ANSWERED)]
        bridges = [asyncio.ensure_future(dialer.bridge(a, b)) for a, b in pairs]
        await asyncio.sleep(1.0)  # let every stream start flowing before the window opens
        legs = [leg for pair in pairs for leg in pair]
        ports = {leg._rtp.port for leg in legs if leg._rtp is not None}
        sample = pairs[:: max(1, len(pairs) // SAMPLE_CALLS)][:SAMPLE_CALLS]
        sample_ports = [leg._rtp.port for pair in sample for leg in pair if leg._rtp is not None]
        capture = Capture(work / f"relay-{calls}.pcap", sample_ports)

        def snapshot() -> tuple[int, int, int, int]:
            return (sum(leg.packets_in for leg in legs), sum(leg.packets_relayed for leg in legs),
                    sum(leg.packets_not_relayed for leg in legs), kernel_drops(ports))

        before, cpu0, t0 = snapshot(), time.process_time(), time.monotonic()
        GC_PAUSES.clear()
        await asyncio.sleep(seconds)
        after, cpu1, t1 = snapshot(), time.process_time(), time.monotonic()
        gc_max = max(GC_PAUSES, default=0.0)
        capture_drops = capture.stop()
        capture = None
        received = after[0] - before[0]
        dropped = (after[2] - before[2]) + (after[3] - before[3])
        loss = dropped / max(1, received + after[3] - before[3])

        sample_pairs = [((a._rtp.port, a.media.port), (b._rtp.port, b.media.port)) for a, b in sample
                        if a._rtp and b._rtp and a.media and b.media]
        transit, echo_transit, out_dev, wire_in, wire_lost = analyse(read_pcap(work / f"relay-{calls}.pcap"),
                                                                     sample_pairs)
        result = Result(
            calls=calls, established=len(pairs), offered_pps=received / (t1 - t0), loss=loss,
            wire_loss=wire_lost / max(1, wire_in), transit_p50_ms=pct(transit, 0.5),
            added_jitter_p99_ms=pct(transit, 0.99), echo_jitter_p99_ms=pct(echo_transit, 0.99),
            out_dev_p99_ms=pct(out_dev, 0.99), base_dev_p99_ms=float("nan"),
            cpu=(cpu1 - cpu0) / (t1 - t0), capture_drops=capture_drops, gc_max_ms=gc_max,
            relayed_pps=(after[1] - before[1]) / (t1 - t0))
        for task in bridges:
            task.cancel()
        await asyncio.gather(*(leg.hangup() for leg in legs), return_exceptions=True)
        return result, pairs
    finally:
        if capture is not None:
            capture.stop()
        await dialer.close()
        stop(op_proc)
        stop(vis_proc)


# --- rtpengine beside our relay -------------------------------------------------------------------
# The same two sipp phones, but the media goes through rtpengine (userspace forwarding, no kernel
# module), driven over its NG control protocol the way Kamailio's rtpengine module drives it. The
# bench itself is the B2BUA: a few lines of SIP to each sipp, the SDP rewritten by rtpengine.


def bencode(value: object) -> bytes:
    if isinstance(value, bytes):
        return b"%d:%s" % (len(value), value)
    if isinstance(value, str):
        return bencode(value.encode())
    if isinstance(value, int):
        return b"i%de" % value
    if isinstance(value, list):
        return b"l" + b"".join(map(bencode, value)) + b"e"
    if isinstance(value, dict):
        return b"d" + b"".join(bencode(k) + bencode(v) for k, v in sorted(value.items())) + b"e"
    raise TypeError(f"cannot bencode {type(value).__name__}")


def bdecode(data: bytes, pos: int = 0) -> tuple[object, int]:
    """One bencoded value at pos: (value, position after it); strings come back as str."""
    kind = data[pos : pos + 1]
    if kind == b"i":
        end = data.index(b"e", pos)
        return int(data[pos + 1 : end]), end + 1
    if kind in (b"l", b"d"):
        items, pos = [], pos + 1
        while data[pos : pos + 1] != b"e":
            item, pos = bdecode(data, pos)
            items.append(item)
        return (items if kind == b"l" else dict(zip(items[::2], items[1::2], strict=True))), pos + 1
    colon = data.index(b":", pos)
    end = colon + 1 + int(data[pos:colon])
    return data[colon + 1 : end].decode(errors="replace"), end


class Ng:
    """rtpengine's NG protocol: "cookie bencoded-dict" over UDP, the answer echoes the cookie."""

    def __init__(self, port: int) -> None:
        self.address = (HOST, port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.settimeout(2.0)
        self.sent = 0

    def __call__(self, command: str, **fields: object) -> dict:
        self.sent += 1
        cookie = b"%d_%d" % (os.getpid(), self.sent)
        self.sock.sendto(cookie + b" " + bencode({"command": command, **fields}), self.address)
        while True:
            data = self.sock.recv(65536)
            if data.startswith(cookie + b" "):
                answer, _ = bdecode(data, len(cookie) + 1)
                assert isinstance(answer, dict)
                if answer.get("result") not in ("ok", "pong"):
                    raise RuntimeError(f"rtpengine {command}: {answer}")
                return answer


class Uac(asyncio.DatagramProtocol):
    """Just enough of a SIP UAC to make sipp answer with an SDP we choose: INVITE/200/ACK, BYE/200."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.waiting: dict[tuple[str, str], asyncio.Future] = {}

    @classmethod
    async def open(cls) -> Uac:
        uac = cls()
        await asyncio.get_running_loop().create_datagram_endpoint(lambda: uac, local_addr=(HOST, 0))
        return uac

    @property
    def port(self) -> int:
        assert self.transport is not None
        return self.transport.get_extra_info("sockname")[1]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        head, _, body = data.decode(errors="replace").partition("\r\n\r\n")
        lines = head.split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        if not lines[0].startswith("SIP/2.0 "):
            return
        code = lines[0].split()[1]
        future = self.waiting.get((headers.get("call-id", ""), headers.get("cseq", "").split()[-1]))
        if code.startswith("2") and future is not None and not future.done():
            future.set_result((headers, body))

    def _send(self, port: int, text: str) -> None:
        assert self.transport is not None
        self.transport.sendto(text.replace("\n", "\r\n").encode(), (HOST, port))

    async def request(self, port: int, method: str, call_id: str, to_tag: str = "", sdp: str = "") -> tuple:
        cseq = "1" if method == "INVITE" else "2"
        future = asyncio.get_running_loop().create_future()
        self.waiting[(call_id, method)] = future
        body = sdp.replace("\r\n", "\n")
        text = (f"{method} sip:bench@{HOST}:{port} SIP/2.0\nVia: SIP/2.0/UDP {HOST}:{self.port};branch=z9hG4bK"
                f"{call_id}{method}\nMax-Forwards: 70\nFrom: <sip:perezvon@{HOST}>;tag=b2b\n"
                f"To: <sip:bench@{HOST}:{port}>{';tag=' + to_tag if to_tag else ''}\nCall-ID: {call_id}\n"
                f"CSeq: {cseq} {method}\nContact: <sip:perezvon@{HOST}:{self.port}>\n"
                + (f"Content-Type: application/sdp\nContent-Length: {len(body.replace(chr(10), chr(13) + chr(10)))}"
                   f"\n\n{body}" if sdp else "Content-Length: 0\n\n"))
        try:
            for _ in range(8):  # retransmit as a UAC does over UDP, until a final answer
                self._send(port, text)
                try:
                    return await asyncio.wait_for(asyncio.shield(future), 0.5)
                except TimeoutError:
                    continue
            raise RuntimeError(f"no answer to {method} {call_id}")
        finally:
            self.waiting.pop((call_id, method), None)

    async def invite(self, port: int, call_id: str, sdp: str) -> tuple[str, str]:
        """INVITE with sdp, ACK the 200: (the callee's to-tag, its SDP)."""
        headers, body = await self.request(port, "INVITE", call_id, sdp=sdp)
        to_tag = headers["to"].split("tag=")[1].split(";")[0]
        self._send(port, f"ACK sip:bench@{HOST}:{port} SIP/2.0\nVia: SIP/2.0/UDP {HOST}:{self.port};branch="
                         f"z9hG4bK{call_id}ack\nMax-Forwards: 70\nFrom: <sip:perezvon@{HOST}>;tag=b2b\n"
                         f"To: <sip:bench@{HOST}:{port}>;tag={to_tag}\nCall-ID: {call_id}\nCSeq: 1 ACK\n"
                         "Content-Length: 0\n\n")
        return to_tag, body


def sdp_port(sdp: str) -> int:
    return int(next(line for line in sdp.splitlines() if line.startswith("m=audio")).split()[1])


PLACEHOLDER_SDP = f"v=0\r\no=perezvon 1 1 IN IP4 {HOST}\r\ns=-\r\nc=IN IP4 {HOST}\r\nt=0 0\r\n" \
                  "m=audio 9 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\n"


@dataclass
class EngineCall:
    call_id: str
    operator_tag: str = ""
    visitor_tag: str = ""
    ports: Pair = ((0, 0), (0, 0))  # ((rtpengine port A, operator phone), (rtpengine port B, visitor phone))


async def engine_call(ng: Ng, uac: Uac, i: int, op_port: int, vis_port: int) -> EngineCall:
    """One bridged call through rtpengine, in the order a B2BUA calling out to both parties needs.

    The operator's address is not known until it answers, so the offer carries a placeholder (port 9)
    for it and rtpengine learns the real one from the operator's first packet (endpoint learning, its
    NAT handling, set to immediate).
    """
    call = EngineCall(f"rtpe{i}-{os.getpid()}")
    offer = ng("offer", **{"call-id": call.call_id, "from-tag": "op", "sdp": PLACEHOLDER_SDP})
    call.visitor_tag, visitor_sdp = await uac.invite(vis_port, call.call_id + "v", offer["sdp"])
    answer = ng("answer", **{"call-id": call.call_id, "from-tag": "op", "to-tag": "vis", "sdp": visitor_sdp})
    call.operator_tag, operator_sdp = await uac.invite(op_port, call.call_id + "o", answer["sdp"])
    call.ports = ((sdp_port(answer["sdp"]), sdp_port(operator_sdp)), (sdp_port(offer["sdp"]), sdp_port(visitor_sdp)))
    return call


def start_rtpengine(work: Path, calls: int) -> tuple[subprocess.Popen, int, range]:
    ng_port = free_port()
    span = calls * 4 + 40  # RTP and RTCP for each side of each call, and room for rtpengine's parity rules
    low = free_port(span)
    proc = subprocess.Popen(
        ["rtpengine", "--foreground", "--config-file=none", "--table=-1", f"--interface={HOST}",
         f"--listen-ng={HOST}:{ng_port}", f"--port-min={low}", f"--port-max={low + span - 1}", "--log-stderr",
         "--log-level=3", "--timeout=60", "--endpoint-learning=immediate", "--delete-delay=0",
         f"--pidfile={work / 'rtpengine.pid'}"],
        # No _default_priority here: rtpengine inherits the bench's --nice/--realtime, as the relay has
        # them, so both forwarders compete for the cores on the same terms.
        stdout=subprocess.DEVNULL, stderr=(work / "rtpengine.log").open("w"), start_new_session=True)
    return proc, ng_port, range(low, low + span)


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process and its threads used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def engine_packets(ng: Ng, calls: list[EngineCall]) -> int:
    """Packets rtpengine forwarded so far for these calls (its per-stream counters, via NG query)."""
    total = 0
    for call in calls:
        answer = ng("query", **{"call-id": call.call_id})
        for tag in answer.get("tags", {}).values():
            for medium in tag.get("medias", []):
                for stream in medium.get("streams", []):
                    total += int(stream.get("stats", {}).get("packets", 0))
    return total  # counted once, on the stream (local port) each packet came in on


async def rtpengine_level(work: Path, stream: Path, calls: int, seconds: float) -> Result:
    op_proc, op_port = start_sipp(work, uas_scenario(stream), "operator", "-mp", str(free_port(4)))
    vis_proc, vis_port = start_sipp(work, uas_scenario(None), "visitor", "-rtp_echo", "-mp", str(free_port(4)))
    engine, ng_port, engine_ports = start_rtpengine(work, calls)
    capture = None
    uac = await Uac.open()
    try:
        await asyncio.sleep(0.5)
        ng = Ng(ng_port)
        ng("ping")
        placed: list[EngineCall] = []
        for start in range(0, calls, 25):
            placed += await asyncio.gather(*(engine_call(ng, uac, i, op_port, vis_port)
                                             for i in range(start, min(calls, start + 25))))
        await asyncio.sleep(1.0)
        sample = [c.ports for c in placed[:: max(1, len(placed) // SAMPLE_CALLS)][:SAMPLE_CALLS]]
        capture = Capture(work / f"rtpengine-{calls}.pcap", [side[0] for pair in sample for side in pair])
        ports = set(engine_ports)
        packets0, drops0, cpu0, t0 = engine_packets(ng, placed), kernel_drops(ports), process_cpu(engine.pid), \
            time.monotonic()
        await asyncio.sleep(seconds)
        cpu1, t1, drops1 = process_cpu(engine.pid), time.monotonic(), kernel_drops(ports)
        packets1 = engine_packets(ng, placed)
        capture_drops = capture.stop()
        capture = None
        transit, echo_transit, out_dev, wire_in, wire_lost = analyse(read_pcap(work / f"rtpengine-{calls}.pcap"),
                                                                     sample)
        relayed = (packets1 - packets0) / (t1 - t0)
        result = Result(
            calls=calls, established=len(placed), offered_pps=relayed,
            loss=(drops1 - drops0) / max(1, packets1 - packets0),
            wire_loss=wire_lost / max(1, wire_in), transit_p50_ms=pct(transit, 0.5),
            added_jitter_p99_ms=pct(transit, 0.99), echo_jitter_p99_ms=pct(echo_transit, 0.99),
            out_dev_p99_ms=pct(out_dev, 0.99), base_dev_p99_ms=float("nan"), cpu=(cpu1 - cpu0) / (t1 - t0),
            capture_drops=capture_drops, relayed_pps=relayed, mode="rtpengine")
        for call in placed:
            ng("delete", **{"call-id": call.call_id})
        await asyncio.gather(*(uac.request(port, "BYE", call.call_id + side, tag) for call in placed
                               for port, side, tag in ((op_port, "o", call.operator_tag),
                                                       (vis_port, "v", call.visitor_tag))),
                             return_exceptions=True)
        return result
    finally:
        if capture is not None:
            capture.stop()
        if uac.transport is not None:
            uac.transport.close()
        stop(engine)
        stop(op_proc)
        stop(vis_proc)


async def baseline_level(work: Path, stream: Path, calls: int, seconds: float) -> float:
    """sipp streaming straight to the echoing sipp: interarrival deviation p99 at the receiver (ms)."""
    media = free_port(4)
    vis_proc, vis_port = start_sipp(work, uas_scenario(None), "base-visitor", "-rtp_echo", "-mp", str(media))
    await asyncio.sleep(0.5)
    hold = int((seconds + 3) * 1000)
    uac_path = work / "base-uac.xml"
    uac_path.write_text(uac_scenario(stream, hold))
    uac = subprocess.Popen(
        ["sipp", "-sf", str(uac_path), f"{HOST}:{vis_port}", "-i", HOST, "-mi", HOST, "-p", str(free_port()),
         "-m", str(calls), "-l", str(calls), "-r", "200", "-nostdin", "-nd", "-max_socket", "4096",
         "-mp", str(free_port(4)), "-rtp_threadtasks", str(THREAD_TASKS), "-s", "79990000000"],
        cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        preexec_fn=_default_priority)
    try:
        await asyncio.sleep(calls / 200 + 1.5)  # all calls up and streaming
        capture = Capture(work / f"base-{calls}.pcap", [media])
        await asyncio.sleep(seconds)
        capture.stop()
        packets = read_pcap(work / f"base-{calls}.pcap")
        by_source: dict[int, list[float]] = {}
        for t, sport, dport, _ in packets:
            if dport == media:
                by_source.setdefault(sport, []).append(t)
        dev = [d for times in list(by_source.values())[:SAMPLE_CALLS] for d in interarrival_dev_ms(times)]
        return pct(dev, 0.99)
    finally:
        stop(uac)
        stop(vis_proc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--levels", default="50,100,150,200,250,300")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--uvloop", action="store_true", help="run the relay on uvloop instead of asyncio's loop")
    parser.add_argument("--repeat", type=int, default=1, help="runs per level; the median run decides")
    parser.add_argument("--direct-baseline", action="store_true",
                        help="also time sipp streaming straight to sipp (no relay) at each level")
    parser.add_argument("--keep", help="keep scenarios and captures in this directory")
    parser.add_argument("--rtpengine", action="store_true",
                        help="also relay the same calls through rtpengine (userspace) and print the ratios")
    parser.add_argument("--nice", type=int, default=0,
                        help="CPU priority for the relay process (negative needs root), as a media server would run")
    parser.add_argument("--realtime", action="store_true",
                        help="run the relay under SCHED_FIFO (root), as FreeSWITCH's -rp does for media")
    args = parser.parse_args()
    if args.nice:
        os.setpriority(os.PRIO_PROCESS, 0, args.nice)
    if args.realtime:
        # Only this process: the sipp children are started with the default policy (see start_sipp).
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
    for tool in ("sipp", "sox", "tcpdump") + (("rtpengine",) if args.rtpengine else ()):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed (bench/README.md says which Debian package has it)")
    levels = [int(x) for x in args.levels.split(",")]
    if args.uvloop:
        import uvloop

        uvloop.install()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="sip-relay-") as tmp:
        work = Path(args.keep or tmp)
        work.mkdir(parents=True, exist_ok=True)
        stream = work / "noise.ul"
        # White noise: every 20 ms payload is unique, so packets can be matched in and out by content.
        subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-t", "ul", str(stream), "synth", "60",
                        "whitenoise", "vol", "0.3"], check=True)
        print(f"SIP relay benchmark: {os.cpu_count()} CPUs, loop={'uvloop' if args.uvloop else 'asyncio'}, "
              f"{args.seconds:.0f} s window per level, limits loss < {LOSS_LIMIT:.1%}, "
              f"added jitter p99 < {JITTER_LIMIT_MS:.0f} ms; nice {args.nice}; "
              f"{'SCHED_FIFO' if args.realtime else 'normal scheduling'}; "
              f"load average before: {os.getloadavg()[0]:.2f}")
        print(f"{'mode':>9} {'calls':>5} {'up':>4} {'pkt/s in':>9} {'loss':>8} {'wire loss':>9} {'added p50':>9} "
              f"{'added p99':>10} {'echo p99':>9} {'rx dev p99':>10} {'base dev':>9} {'relay CPU':>9} {'µs/pkt':>7} "
              f"{'gc max':>7} ok")
        modes = ["relay", "rtpengine"] if args.rtpengine else ["relay"]
        best = dict.fromkeys(modes, 0)
        budget = 240 * len(modes)
        for calls in levels:
            if time.monotonic() - started > budget:
                print(f"stopping: time budget ({budget // 60 + 1} min) nearly spent")
                break
            runs: dict[str, list[Result]] = {mode: [] for mode in modes}
            for _ in range(args.repeat):
                for mode in modes:  # alternating, so both see the same moments of a shared machine
                    result = run_level(mode, work, stream, calls, args)
                    print_row(result)
                    runs[mode].append(result)
            # A shared machine stalls now and then (the echo column shows it): a level passes when the
            # median run does. Every level runs; the answer is the largest level that passed.
            medians = {mode: median_run(found) for mode, found in runs.items()}
            for mode, run in medians.items():
                if run.ok:
                    best[mode] = max(best[mode], calls)
            if args.rtpengine:
                # Each figure its own median: the run with the median jitter need not have the median CPU.
                cpu = {m: statistics.median(r.cpu_us_per_packet for r in runs[m]) for m in modes}
                jitter = {m: statistics.median(r.added_jitter_p99_ms for r in runs[m]) for m in modes}
                print(f"  {calls} calls, medians of {args.repeat}: our relay / rtpengine: CPU per packet "
                      f"{cpu['relay']:.1f} / {cpu['rtpengine']:.1f} µs = {cpu['relay'] / cpu['rtpengine']:.2f}× "
                      f"(goal <= 1.2×), added jitter p99 {jitter['relay']:.2f} / {jitter['rtpengine']:.2f} ms = "
                      f"{jitter['relay'] / max(0.01, jitter['rtpengine']):.1f}×; "
                      f"load average {os.getloadavg()[0]:.2f}", flush=True)
        for mode in modes:
            print(f"largest level within limits, {mode}: {best[mode]} concurrent bridged calls")
        print(f"({time.monotonic() - started:.0f} s total; load average after: {os.getloadavg()[0]:.2f})")


def run_level(mode: str, work: Path, stream: Path, calls: int, args: argparse.Namespace) -> Result:
    if mode == "rtpengine":
        return asyncio.run(rtpengine_level(work, stream, calls, args.seconds))
    result, _ = asyncio.run(relay_level(work, stream, calls, args.seconds))
    if args.direct_baseline:
        result.base_dev_p99_ms = asyncio.run(baseline_level(work, stream, calls, min(args.seconds, 5.0)))
    return result


def median_run(runs: list[Result]) -> Result:
    return sorted(runs, key=lambda r: r.added_jitter_p99_ms)[len(runs) // 2]


def print_row(result: Result) -> None:
    print(f"{result.mode:>9} {result.calls:>5} {result.established:>4} {result.offered_pps:>9.0f} "
          f"{result.loss:>8.4%} {result.wire_loss:>9.4%} {result.transit_p50_ms:>7.2f}ms "
          f"{result.added_jitter_p99_ms:>8.2f}ms {result.echo_jitter_p99_ms:>7.2f}ms "
          f"{result.out_dev_p99_ms:>8.2f}ms {result.base_dev_p99_ms:>7.2f}ms {result.cpu:>9.0%} "
          f"{result.cpu_us_per_packet:>7.1f} {result.gc_max_ms:>5.1f}ms {'yes' if result.ok else 'NO'}"
          + (f"  (tcpdump dropped {result.capture_drops})" if result.capture_drops else ""), flush=True)

if __name__ == "__main__":
    main()
