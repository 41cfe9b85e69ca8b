"""How many bridged calls can SipDialer hold with direct media? Beside our relay's figure, same run.

(docs/benchmarks.md, "Direct media".) Topology, all on 127.0.0.1:

    sipp "operator" UAS <--SIP--> SipDialer (B2BUA) <--SIP--> sipp "visitor" UAS
              ^                                                    ^
              └──────────── media, after the re-INVITEs ───────────┘  (not through us)

Each call is two real SIP dialogs set up by SipDialer, bridged through a trunk that allows direct
media: the bridge re-INVITEs the operator's end with the visitor's SDP, then the visitor's end with
the operator's answer (RFC 3725), and from then on our process only keeps the dialogs. This measures
signalling only (the sipp ends send no RTP): per level of concurrent calls, how long ringing and the
switch took, how many calls went direct, our process's CPU and memory while holding them, and that
every BYE was answered. A level passes when every call was set up and went direct, our relay
forwarded nothing, and every call hung up cleanly.

The relayed figure of the same run comes from bench/sip_relay.py's relay level (real RTP, 100 pkt/s
per call through our relay, loss < 0.1 % and added jitter p99 < 5 ms): the largest level that passed.

Usage:  .venv/bin/python bench/direct_media.py [--levels 250,500,1000] [--seconds 32] [--ping-every 30]
                                               [--relayed-levels 25,50,100,150] [--relayed-seconds 5]
Needs sipp (Debian sip-tester); the relayed levels also sox and tcpdump (root, capture on lo).
Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from perezvon.calls.dialer.base import RingResult, Trunk  # noqa: E402
from perezvon.calls.dialer.sip import SipDialer, SipLeg  # noqa: E402
from sip_relay import HOST, UAS_BYE, print_row, relay_level, start_sipp, stop  # noqa: E402

BATCH = 50  # pairs rung, then bridged, at a time: a worker pool starts calls over time, not at once

ANSWER_SDP = """v=0
o=sipp 1 {version} IN IP4 [local_ip]
s=-
c=IN IP4 [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0
a=rtpmap:0 PCMU/8000
a=ptime:20
"""


def _ok(to: str, version: int) -> str:
    sdp = ANSWER_SDP.format(version=version)
    return f"""  <send retrans="500">
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      {to}
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Content-Type: application/sdp
      Content-Length: [len]

{sdp}
    ]]>
  </send>
"""


PING_OK = """  <send>
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


def uas_scenario() -> str:
    """A phone that answers, takes our re-INVITE (same media, as a phone keeps its port), answers our
    OPTIONS pings (direct media's dead-peer check) while it waits, then our BYE."""
    return (
        '<?xml version="1.0" encoding="ISO-8859-1" ?>\n<scenario name="direct media uas">\n'
        '  <recv request="INVITE"/>\n'
        + _ok("[last_To:];tag=[pid]SIPpTag01[call_number]", 1)
        + '  <recv request="ACK"/>\n  <recv request="INVITE"/>\n'
        + _ok("[last_To:]", 2)
        + '  <recv request="ACK"/>\n  <label id="1"/>\n'
        + '  <recv request="OPTIONS" optional="true" next="2"/>\n'
        + UAS_BYE
        + '  <nop next="3"/>\n  <label id="2"/>\n'
        + PING_OK
        + '  <nop next="1"/>\n  <label id="3"/>\n'
        + "</scenario>\n"
    )


@dataclass
class DirectResult:
    calls: int
    established: int
    direct: int
    ring_s: float
    switch_s: float
    cpu: float  # of one core, while holding
    setup_ms: float  # our CPU per call for ringing both legs and both re-INVITEs
    rss_kb_per_call: float
    relayed: int  # packets our relay forwarded after the switch (want 0)
    rtp_in: int
    hung_up: int

    @property
    def ok(self) -> bool:
        n = self.calls
        return self.established == self.direct == self.hung_up == n and self.relayed == 0


def rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def ring_pairs(dialer: SipDialer, op: Trunk, vis: Trunk, first: int, count: int) -> list[tuple[SipLeg, SipLeg]]:
    batch = [(dialer.leg(f"7999{i:07d}", op), dialer.leg(f"7998{i:07d}", vis)) for i in range(first, first + count)]
    results = await asyncio.gather(*(leg.ring(10) for pair in batch for leg in pair))
    answered = (RingResult.ANSWERED, RingResult.ANSWERED)
    return [p for p, r in zip(batch, zip(results[::2], results[1::2], strict=True), strict=True) if r == answered]


async def until_direct(pairs: list[tuple[SipLeg, SipLeg]], timeout: float) -> None:
    """Wait (polling: the bridge has no event for it) until every pair went direct or ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(a.relayed_at_direct is not None or a.is_ended for a, _ in pairs):
            return
        await asyncio.sleep(0.05)


async def direct_level(work: Path, calls: int, seconds: float, ping_every: float) -> DirectResult:
    op_proc, op_port = start_sipp(work, uas_scenario(), "operator")
    vis_proc, vis_port = start_sipp(work, uas_scenario(), "visitor")
    dialer = SipDialer(None, rtp_timeout=2 * ping_every)  # each held call pings both ends that often
    await dialer.start()
    try:
        await asyncio.sleep(0.5)  # sipp has no readiness signal; INVITE retransmission would cover it anyway
        op, vis = Trunk(HOST, op_port, direct_media=True), Trunk(HOST, vis_port, direct_media=True)
        rss0, pairs, bridges = rss_kb(), [], []
        ring_s = switch_s = 0.0
        setup_cpu = time.process_time()
        for first in range(0, calls, BATCH):
            t0 = time.monotonic()
            batch = await ring_pairs(dialer, op, vis, first, min(BATCH, calls - first))
            t1 = time.monotonic()
            bridges += [asyncio.ensure_future(dialer.bridge(a, b)) for a, b in batch]
            await until_direct(batch, 40)
            ring_s, switch_s = ring_s + (t1 - t0), switch_s + (time.monotonic() - t1)
            pairs += batch
        setup_cpu = time.process_time() - setup_cpu
        legs = [leg for pair in pairs for leg in pair]
        in0 = sum(leg.packets_in for leg in legs)
        cpu0, t0 = time.process_time(), time.monotonic()
        await asyncio.sleep(seconds)
        cpu = (time.process_time() - cpu0) / (time.monotonic() - t0)
        rss = rss_kb()
        direct = sum(1 for a, b in pairs if a.relayed_at_direct is not None and b.relayed_at_direct is not None)
        relayed = sum(leg.packets_relayed - (leg.relayed_at_direct or 0) for leg in legs)
        await asyncio.gather(*(a.hangup() for a, _ in pairs))  # the bridge hangs up the other leg
        await asyncio.wait_for(asyncio.gather(*bridges, return_exceptions=True), 60)
        hung_up = sum(1 for a, b in pairs if a._terminated.is_set() and b._terminated.is_set())
        return DirectResult(
            calls=calls,
            established=len(pairs),
            direct=direct,
            ring_s=ring_s,
            switch_s=switch_s,
            cpu=cpu,
            setup_ms=setup_cpu * 1000 / max(1, len(pairs)),
            rss_kb_per_call=(rss - rss0) / max(1, len(pairs)),
            relayed=relayed,
            rtp_in=sum(leg.packets_in for leg in legs) - in0,
            hung_up=hung_up,
        )
    finally:
        await dialer.close()
        stop(op_proc)
        stop(vis_proc)


def print_direct(r: DirectResult) -> None:
    print(
        f"{'direct':>8} {r.calls:>5} {r.established:>5} {r.direct:>6} {r.ring_s:>7.1f}s {r.switch_s:>8.1f}s "
        f"{r.setup_ms:>8.2f} {r.cpu:>8.2%} {r.rss_kb_per_call:>8.1f} {r.relayed:>7} {r.rtp_in:>6} {r.hung_up:>7} "
        f"{'yes' if r.ok else 'NO'}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--levels", default="250,500,1000", help="concurrent direct-media calls")
    parser.add_argument("--seconds", type=float, default=32.0, help="holding window per direct level")
    parser.add_argument("--ping-every", type=float, default=30.0, help="OPTIONS to each far end (as deployed)")
    parser.add_argument("--relayed-levels", default="25,50,100,150", help="relayed levels of the same run ('' none)")
    parser.add_argument("--relayed-seconds", type=float, default=5.0)
    args = parser.parse_args()
    tools = ("sipp",) + (("sox", "tcpdump") if args.relayed_levels else ())
    for tool in tools:
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed (bench/README.md says which Debian package has it)")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # a socket per leg: 2 per call
    started = time.monotonic()
    best_direct = best_relayed = 0
    with tempfile.TemporaryDirectory(prefix="direct-media-") as tmp:
        work = Path(tmp)
        print(
            f"Direct media benchmark: {os.cpu_count()} CPUs, signalling only, {args.seconds:.0f} s held per "
            f"level, an OPTIONS ping to each far end every {args.ping_every:.0f} s; "
            f"load average before: {os.getloadavg()[0]:.2f}"
        )
        print(
            f"{'mode':>8} {'calls':>5} {'up':>5} {'direct':>6} {'ring':>8} {'switch':>9} {'ms/call':>8} "
            f"{'CPU held':>8} {'KB/call':>8} {'relayed':>7} {'RTP in':>6} {'hung up':>7} ok"
        )
        for calls in (int(x) for x in args.levels.split(",") if x):
            result = asyncio.run(direct_level(work, calls, args.seconds, args.ping_every))
            print_direct(result)
            if result.ok:
                best_direct = max(best_direct, calls)
        if args.relayed_levels:
            stream = work / "noise.ul"
            subprocess.run(
                [
                    "sox",
                    "-n",
                    "-r",
                    "8000",
                    "-c",
                    "1",
                    "-t",
                    "ul",
                    str(stream),
                    "synth",
                    "60",
                    "whitenoise",
                    "vol",
                    "0.3",
                ],
                check=True,
            )
            print("relayed, as bench/sip_relay.py measures it (its columns):")
            for calls in (int(x) for x in args.relayed_levels.split(",") if x):
                relayed, _ = asyncio.run(relay_level(work, stream, calls, args.relayed_seconds))
                print_row(relayed)
                if relayed.ok:
                    best_relayed = max(best_relayed, calls)
    print(
        f"largest level within limits: direct media {best_direct} concurrent bridged calls (signalling only); "
        f"relayed {best_relayed} (loss < 0.1 %, added jitter p99 < 5 ms)"
    )
    print(f"({time.monotonic() - started:.0f} s total; load average after: {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
