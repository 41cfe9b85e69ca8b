"""Behind a 1:1 NAT: PEREZVON_SIP_PUBLIC_ADDRESS, against Kamailio and baresip, in a network namespace.

The outer test re-runs this module inside `unshare -n` (a private loopback, so nothing here can touch
the machine's network) with nftables rules that make a NAT of loopback addresses:
perezvon binds 127.0.0.2 (its "private" address) and is reachable only as 127.0.0.5 (the "public"
one): what goes out from .2 leaves as .5, what comes to .5 is forwarded to .2, and anything sent to
.2 directly (not a reply, not forwarded) is dropped, as a real NAT would never deliver it.
So media and the far end's BYE arrive only if we advertised the public address.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from perezvon.calls.dialer.base import RingResult
from perezvon.calls.dialer.sip import SipDialer, parse_trunk

from .sip_audio import tone_share, windows

pytestmark = pytest.mark.e2e

PRIVATE, PUBLIC = "127.0.0.2", "127.0.0.5"
OPERATOR, VISITOR = "79990000001", "79990000002"
INSIDE = "PEREZVON_TEST_INSIDE_NAT"
NAT_RULES = f"""
table ip nat {{
    chain output {{ type nat hook output priority -100; ip daddr {PUBLIC} dnat to {PRIVATE}; }}
    chain postrouting {{ type nat hook postrouting priority 100; ip saddr {PRIVATE} snat to {PUBLIC}; }}
}}
table ip filter {{
    chain input {{
        type filter hook input priority 0;
        ip daddr {PRIVATE} ct status dnat accept
        ip daddr {PRIVATE} ct state established,related accept
        ip daddr {PRIVATE} counter name bypassed drop
    }}
    counter bypassed {{ }}
}}
"""


def test_calls_work_through_a_one_to_one_nat(tmp_path: Path) -> None:
    if os.geteuid() != 0 or not (shutil.which("unshare") and shutil.which("nft") and shutil.which("ip")):
        pytest.skip("needs root, unshare, ip and nft (Debian nftables) for a private network namespace")
    rules = tmp_path / "nat.nft"
    rules.write_text(NAT_RULES)
    inner = f"{__file__}::test_inside_the_namespace"
    script = f"ip link set lo up && nft -f {rules} && exec {sys.executable} -m pytest -q -x -p no:cacheprovider {inner}"
    done = subprocess.run(
        ["unshare", "-n", "sh", "-c", script],
        env={**os.environ, INSIDE: "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "1 passed" in done.stdout, done.stdout[-2000:]


def bypassed() -> int:
    """Packets that reached the private address without going through the NAT (and were dropped)."""
    out = subprocess.run(["nft", "list", "counter", "ip", "filter", "bypassed"], capture_output=True, text=True)
    return int(out.stdout.split("packets")[1].split()[0])


async def dialer_behind_nat(router, public_address: str) -> SipDialer:
    dialer = SipDialer(
        parse_trunk(f"udp:127.0.0.1:{router.port}"), bind_host=PRIVATE, bind_port=0, public_address=public_address
    )
    await dialer.start()
    return dialer


@pytest.mark.skipif(not os.environ.get(INSIDE), reason="runs inside the namespace the test above makes")
async def test_inside_the_namespace(kamailio, phones) -> None:
    operator = await phones(OPERATOR, 440, seconds=30)
    visitor = await phones(VISITOR, 880, seconds=3)  # hangs up by itself: its BYE must find us
    router = await kamailio({OPERATOR: operator.sip_port, VISITOR: visitor.sip_port})

    # Control: advertising the bound address, the phone sends to an address the NAT never delivers.
    # (baresip then latches onto where our RTP comes from, so media alone would not show it.)
    dialer = await dialer_behind_nat(router, "")
    try:
        leg = dialer.leg(OPERATOR)
        assert await leg.ring(10) is RingResult.ANSWERED
        await operator.wait_event("CALL_ESTABLISHED")
        async with asyncio.timeout(10):
            while bypassed() == 0:
                await asyncio.sleep(0.05)  # polling a kernel counter: there is no event for it
        await leg.hangup()
        await operator.wait_event("CALL_CLOSED")
    finally:
        await dialer.close()
    dropped_before = bypassed()

    # With PEREZVON_SIP_PUBLIC_ADDRESS: both legs' media flows, and the visitor's BYE reaches us.
    dialer = await dialer_behind_nat(router, PUBLIC)
    try:
        op_leg = dialer.leg(OPERATOR)
        assert await op_leg.ring(10) is RingResult.ANSWERED
        await operator.wait_event("CALL_ESTABLISHED")
        vis_leg = dialer.leg(VISITOR)
        assert await vis_leg.ring(10) is RingResult.ANSWERED
        await asyncio.wait_for(dialer.bridge(op_leg, vis_leg), 20)
        assert vis_leg.ended_by_remote, "the visitor's BYE came through the NAT to our Contact"
        await operator.wait_event("CALL_CLOSED")
    finally:
        await dialer.close()
    assert bypassed() == dropped_before, "nothing was sent to the private address we are bound to"
    operator.close()
    visitor.close()
    heard_by_operator = windows(operator.recording("dec"), 0.25)
    heard_by_visitor = windows(visitor.recording("dec"), 0.25)
    assert sum(tone_share(w, 880) > 0.8 for w in heard_by_operator) >= 4
    assert sum(tone_share(w, 440) > 0.8 for w in heard_by_visitor) >= 4
