"""Webhooks: each site's ``webhook_urls`` hear ``request.created`` and ``request.finished``.

The body is JSON ``{"event", "timestamp", "request": <journal resource>}``; the header
``X-Perezvon-Signature: sha256=<hex HMAC-SHA256 of the raw body, keyed with the site's webhook secret>``
proves it came from us (the body carries the timestamp, so it is signed too; receivers should refuse
old ones). Deliveries are rows of the outbox (``store/outbox.py``), written in the same transaction as
the change they announce (``services/requests.py``); this module sends them, retried with exponential
backoff, ``failed`` after ``max_tries``. All outbound HTTP goes through ``Outbound``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx

from .. import __version__
from ..clock import SYSTEM_CLOCK, Clock
from ..ops.metrics import webhook_delivery
from ..outbound import Unresolvable, UnsafeURL, check_url, host_of
from ..store import outbox
from ..store.db import Database

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Perezvon-Signature"
TIMESTAMP_HEADER = "X-Perezvon-Timestamp"
EVENT_HEADER = "X-Perezvon-Event"
DELIVERY_HEADER = "X-Perezvon-Delivery"


def sign(secret: str, body: bytes) -> str:
    """The signature header's value for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, signature: str) -> bool:
    """What a receiver does: recompute over the raw bytes and compare in constant time."""
    return hmac.compare_digest(sign(secret, body), signature)


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


# -- one place for outbound HTTP -----------------------------------------------------------------------------


class DeliveryError(Exception):
    """A delivery did not succeed; ``permanent`` ones are not retried."""

    def __init__(self, message: str, *, status_code: int | None = None, permanent: bool = False) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.permanent = permanent


class Outbound:
    """POSTs with a mandatory timeout, no redirects, http(s) only, errors turned into short readable text."""

    def __init__(self, timeout: float = 10.0, *, allow_private: bool = False) -> None:
        if not timeout or timeout <= 0:
            raise ValueError("an outbound HTTP call needs a timeout")
        self.allow_private = allow_private
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,  # a redirect could leave http(s) or reach somewhere unintended
            headers={"User-Agent": f"perezvon-webhooks/{__version__}"},
        )

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        try:  # resolved and checked now, then connected to the address checked (see perezvon/outbound.py)
            target = await check_url(url, allow_private=self.allow_private)
        except UnsafeURL as exc:  # a name that does not resolve may later; a private address stays refused
            raise DeliveryError(f"refused: {exc}", permanent=not isinstance(exc, Unresolvable)) from None
        pinned = {"Host": target.host_header} if target.host_header else {}
        try:
            response = await self._client.post(
                target.url, content=body, headers={"Content-Type": "application/json", **headers, **pinned},
                extensions={"sni_hostname": target.hostname},
            )
        except httpx.TimeoutException:
            raise DeliveryError("timed out") from None
        except httpx.HTTPError as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}"[:300]) from None
        if not 200 <= response.status_code < 300:
            raise DeliveryError(f"HTTP {response.status_code}", status_code=response.status_code)
        return response.status_code

    async def close(self) -> None:
        await self._client.aclose()


# -- the sender ------------------------------------------------------------------------------------------------


@dataclass
class Backoff:
    base_s: float = 10.0
    cap_s: float = 3600.0
    max_tries: int = 8

    def delay(self, tries: int) -> float:
        """Seconds to wait after the ``tries``-th failed try: base, 2·base, 4·base… up to the cap."""
        return min(self.cap_s, self.base_s * 2 ** max(0, tries - 1))


class WebhookSender:
    """Sends due deliveries; a loop step (``deliver_once``) is a method so tests drive it directly."""

    def __init__(
        self,
        db: Database,
        outbound: Outbound | None = None,
        *,
        backoff: Backoff | None = None,
        concurrency: int = 10,
        lease_s: float = 60.0,
        poll_s: float = 5.0,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.db = db
        self.outbound = outbound or Outbound()
        self.backoff = backoff or Backoff()
        self.concurrency = concurrency
        self.lease = timedelta(seconds=lease_s)  # a try in flight is hidden this long (a crash retries it)
        self.poll_s = poll_s
        self.clock = clock
        self._wake = asyncio.Event()
        self._stopping = False

    def wake(self) -> None:
        self._wake.set()

    async def deliver_once(self, now: datetime | None = None) -> int:
        """Claim and send the deliveries due now; returns how many were tried."""
        rows, secrets = await outbox.claim_due(self.db, self.concurrency, now or self.clock.now(), self.lease)
        await asyncio.gather(*(self._send(r, secrets.get(r["site_id"], "")) for r in rows))
        return len(rows)

    async def _send(self, row: dict[str, Any], secret: str) -> None:
        body = encode(row["payload"])
        headers = {
            SIGNATURE_HEADER: sign(secret, body),
            TIMESTAMP_HEADER: str(int(self.clock.now().timestamp())),
            EVENT_HEADER: row["event"],
            DELIVERY_HEADER: str(row["id"]),
        }
        values: dict[str, Any]
        try:
            code = await self.outbound.post(row["url"], body, headers)
            values = outbox.delivered(self.clock.now(), code)
        except DeliveryError as exc:
            last = exc.permanent or row["tries"] >= self.backoff.max_tries
            values = outbox.retry_or_fail(None if last else self._retry_at(row), exc.status_code, str(exc))
            log.info("webhook %s to %s: try %s failed (%s)", row["id"], host_of(row["url"]), row["tries"], exc)
        except Exception as exc:  # never let one delivery crash the loop; retry it later
            log.exception("webhook %s: unexpected failure", row["id"])
            values = outbox.retry_or_fail(self._retry_at(row), None, f"internal error: {type(exc).__name__}")
            del values["last_status_code"]
        await outbox.record_try(self.db, row["id"], values)
        webhook_delivery("retry" if values["status"] == outbox.PENDING else values["status"])

    def _retry_at(self, row: dict[str, Any]) -> datetime:
        return self.clock.now() + timedelta(seconds=self.backoff.delay(row["tries"]))

    async def next_due(self) -> datetime | None:
        return await outbox.next_due(self.db)

    async def run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                sent = await self.deliver_once()
                if sent:
                    continue
                due = await self.next_due()
            except Exception:
                log.exception("webhook sender step failed; retrying shortly")
                due = None
            delay = self.poll_s
            if due is not None:
                delay = min(delay, max(0.0, (due - self.clock.now()).total_seconds()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(delay, 0.01))

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def close(self) -> None:
        await self.outbound.close()
