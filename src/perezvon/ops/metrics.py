"""The Prometheus metrics of DESIGN §7, and the small functions the API and the worker report through.

One set of names for every process. ``perezvon serve`` counts its own requests and its in-process
worker's calls; ``perezvon worker`` serves the same names on ``PEREZVON_METRICS_PORT``. Under
``serve --workers N`` the processes share one port, so they keep their values in files under
``PROMETHEUS_MULTIPROC_DIR`` (prometheus-client's multiprocess mode, set up by the CLI) and any one of
them answers a scrape with the sum of all.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from ..domain.callback import OUTCOMES

PUBLIC_ENDPOINTS = ("session", "routeKeyData", "createRequest", "serverCreate")
WEBHOOK_STATUSES = ("delivered", "retry", "failed")

public_requests = Counter(
    "perezvon_public_requests",
    "Public widget API and server-side create calls, by endpoint and outcome (ok or the error type).",
    ["endpoint", "outcome"],
)
requests_due = Gauge(
    "perezvon_requests_due",
    "Pending callback requests whose call is due now (read from the database at scrape time).",
    multiprocess_mode="mostrecent",
)
dispatch_lateness = Histogram(
    "perezvon_dispatch_lateness_seconds",
    "How long after its due time a request's attempt was claimed by a worker.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900),
)
call_attempts = Counter(
    "perezvon_call_attempts", "Call attempts finished by this process's worker, by outcome.", ["outcome"]
)
active_calls = Gauge("perezvon_active_calls", "Call attempts in progress in this process.", multiprocess_mode="livesum")
billed_seconds = Counter("perezvon_billed_seconds", "Seconds of bridged calls billed to sites.")
webhook_deliveries = Counter(
    "perezvon_webhook_deliveries",
    "Webhook delivery tries: delivered, retry (failed, tried again later) or failed (given up).",
    ["status"],
)

# Every series exists from start-up (a rate over a counter that appears late misses its first step).
for _endpoint in PUBLIC_ENDPOINTS:
    public_requests.labels(_endpoint, "ok")
for _outcome in OUTCOMES:
    call_attempts.labels(_outcome)
for _status in WEBHOOK_STATUSES:
    webhook_deliveries.labels(_status)

_public_children: dict[tuple[str, str], Any] = {}


def public_request(endpoint: str, outcome: str) -> None:
    """One public API answer: ``outcome`` is ``ok`` or the error ``type`` (the hot path: children cached)."""
    child = _public_children.get((endpoint, outcome))
    if child is None:
        child = _public_children[(endpoint, outcome)] = public_requests.labels(endpoint, outcome)
    child.inc()


def attempt_started(lateness_s: float) -> None:
    """A worker claimed an attempt ``lateness_s`` after it was due."""
    dispatch_lateness.observe(max(0.0, lateness_s))
    active_calls.inc()


def attempt_finished(outcome: str, billed: int) -> None:
    """An attempt ended with ``outcome``; ``billed`` seconds were charged to its site."""
    active_calls.dec()
    call_attempts.labels(outcome).inc()
    if billed > 0:
        billed_seconds.inc(billed)


def webhook_delivery(status: str) -> None:
    webhook_deliveries.labels(status).inc()


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def exposition() -> tuple[bytes, str]:
    """The text a scrape gets, and its content type: this process, or every process of the directory."""
    if multiprocess_dir() is None:
        return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return generate_latest(registry), CONTENT_TYPE_LATEST


def process_exited(pid: int) -> None:
    """Drop a finished process's live gauges (multiprocess mode only)."""
    if multiprocess_dir() is not None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)
