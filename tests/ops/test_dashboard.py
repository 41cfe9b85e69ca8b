"""deploy/grafana's dashboard charts the metrics perezvon serves, every one of them, and nothing else."""

from __future__ import annotations

import json
import re

from perezvon.ops.metrics import exposition
from support import ROOT

DASHBOARD = ROOT / "deploy" / "grafana" / "perezvon-dashboard.json"
DOCUMENTED = {
    "perezvon_public_requests_total", "perezvon_requests_due", "perezvon_dispatch_lateness_seconds_bucket",
    "perezvon_call_attempts_total", "perezvon_active_calls", "perezvon_billed_seconds_total",
    "perezvon_webhook_deliveries_total",
}


def test_every_expression_uses_served_names_and_every_documented_metric_is_charted() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    used = {name for expr in exprs for name in re.findall(r"\b(perezvon_[a-z_]+)", expr)}
    served = {line.split("{")[0].split(" ")[0] for line in exposition()[0].decode().splitlines()
              if line.startswith("perezvon_")}
    assert used <= served, used - served
    assert DOCUMENTED <= used, DOCUMENTED - used
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"])
