"""Idempotency keys of the server-side create: a retried POST with the same key gets the first answer.

The first request with a key claims it (a row with no answer yet, inserted with ON CONFLICT DO
NOTHING so concurrent retries cannot both claim it), does its work and records its answer. A retry
finds the answer and replays it; a retry while the first is still working is told so. Only answers
worth replaying are recorded (the caller decides: perezvon keeps accepted requests); otherwise the
claim is released and a retry is judged anew, as nothing was created. Keys live 24 hours.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from ..clock import utcnow
from .db import Database
from .tables import idempotency_keys

KEEP = timedelta(hours=24)
# A claim whose request never recorded an answer (its process died mid-way) is free again after this.
ABANDONED = timedelta(seconds=60)

_k = idempotency_keys.c


@dataclass(frozen=True)
class Claim:
    """What a request with a key may do: ``mine`` (go on, then ``record`` or ``release``), replay the
    stored answer (``status_code``/``body``), or neither (``busy``: the first is still working, or
    ``mismatch``: the key was used with another body)."""

    mine: bool
    status_code: int | None = None
    body: str | None = None
    busy: bool = False
    mismatch: bool = False


class IdempotencyKeys:
    def __init__(self, db: Database) -> None:
        self.db = db

    def _insert(self):  # type: ignore[no-untyped-def]
        return (sqlite.insert if self.db.is_sqlite else postgresql.insert)(idempotency_keys)

    async def claim(self, scope: str, key: str, fingerprint: str, now: datetime | None = None) -> Claim:
        now = now or utcnow()
        async with self.db.write() as conn:
            await conn.execute(delete(idempotency_keys).where(_k.created_at < now - KEEP))
            inserted = (
                await conn.execute(
                    self._insert()
                    .values(scope=scope, key=key, fingerprint=fingerprint, created_at=now)
                    .on_conflict_do_nothing(index_elements=["scope", "key"])
                    .returning(_k.id)
                )
            ).first()
            if inserted is not None:
                return Claim(mine=True)
            query = select(idempotency_keys).where(_k.scope == scope, _k.key == key)
            row = (await conn.execute(query if self.db.is_sqlite else query.with_for_update())).mappings().first()
            if row is None:  # deleted between our insert and read (expired): try once more later
                return Claim(mine=False, busy=True)
            if row["fingerprint"] != fingerprint:
                return Claim(mine=False, mismatch=True)
            if row["status_code"] is not None:
                return Claim(mine=False, status_code=row["status_code"], body=row["body"])
            if now - row["created_at"] < ABANDONED:
                return Claim(mine=False, busy=True)
            await conn.execute(update(idempotency_keys).where(_k.id == row["id"]).values(created_at=now))
            return Claim(mine=True)

    async def record(self, scope: str, key: str, status_code: int, body: str) -> None:
        async with self.db.write() as conn:
            await conn.execute(
                update(idempotency_keys)
                .where(_k.scope == scope, _k.key == key)
                .values(status_code=status_code, body=body)
            )

    async def release(self, scope: str, key: str) -> None:
        async with self.db.write() as conn:
            await conn.execute(
                delete(idempotency_keys).where(_k.scope == scope, _k.key == key, _k.status_code.is_(None))
            )
