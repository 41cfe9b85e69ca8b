"""The queries of a request's life: its insert, the conditional status moves, the attempt closing.

Only ``services/requests.py`` calls these (it decides which moves are allowed, through
``domain/callback.py``, and adds the webhook rows to the same transaction); the due queue's claim and
lease renewal are in ``due_queue.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy import text as sql_text
from sqlalchemy.ext.asyncio import AsyncConnection

from .tables import blacklist, call_attempts, callback_requests, sites

_r = callback_requests.c
_a = call_attempts.c

# One statement, values passed as parameters: SQLAlchemy compiles it once, where .values(**row) built and
# cache-keyed a new statement per request (the same INSERT reaches the database either way).
INSERT_REQUEST = insert(callback_requests)
# After a batch insert on SQLite: the last new id, and the count, smallest and largest id of the rows from
# the first new id on; for a batch of n that holds ids first..last they are (last, n, first, last).
BATCH_IDS_CHECK = sql_text(
    "SELECT last_insert_rowid(), count(*), min(id), max(id) FROM callback_requests WHERE id > last_insert_rowid() - :n"
)
# Columns an accepted row leaves to their defaults; a webhook body built before any read needs them.
UNSET_ON_INSERT = {"finished_at": None, "claimed_by": None, "claimed_until": None}


async def insert_requests(conn: AsyncConnection, rows: Sequence[dict[str, Any]], is_sqlite: bool) -> list[int]:
    """Insert accepted requests; returns their ids in order."""
    if len(rows) == 1:
        result = await conn.execute(INSERT_REQUEST, rows[0])
        return [int(result.inserted_primary_key[0])]
    if not is_sqlite:
        # One statement for the batch (SQLAlchemy's insertmanyvalues), ids in parameter order.
        result = await conn.execute(INSERT_REQUEST.returning(_r.id, sort_by_parameter_order=True), list(rows))
        return [int(request_id) for request_id in result.scalars()]
    # One executemany instead of a statement per row: with aiosqlite every statement is several round
    # trips to its thread, which under load cost more than the fsync itself. SQLite's RETURNING order is
    # unspecified, so the ids come from the rowid rule instead: we hold the only write lock (BEGIN
    # IMMEDIATE) and id is the rowid, so each row gets the largest id + 1, in parameter order, the last
    # being last_insert_rowid(). Checked, not assumed: if the table's ids at and above the first one are
    # not exactly our rows, the batch is rolled back and retried one row per transaction.
    await conn.execute(INSERT_REQUEST, list(rows))
    last, count, low, high = (await conn.execute(BATCH_IDS_CHECK, {"n": len(rows)})).one()
    first = last - len(rows) + 1
    if (count, low, high) != (len(rows), first, last):
        raise RuntimeError("batch ids are not consecutive; storing these requests one by one")
    return list(range(first, last + 1))


async def request_with_attempts(conn: AsyncConnection, request_id: int) -> tuple[dict[str, Any], list[dict]]:
    row = (await conn.execute(select(callback_requests).where(_r.id == request_id))).mappings().one()
    attempts = (
        (await conn.execute(select(call_attempts).where(_a.request_id == request_id).order_by(_a.number)))
        .mappings()
        .all()
    )
    return dict(row), [dict(a) for a in attempts]


async def site_row(conn: AsyncConnection, site_id: int) -> dict[str, Any] | None:
    row = (await conn.execute(select(sites).where(sites.c.id == site_id))).mappings().first()
    return dict(row) if row is not None else None


async def move(conn: AsyncConnection, request_id: int, where: Iterable[Any], values: dict[str, Any]) -> bool:
    """The conditional update behind every single-request move: True if the row still matched ``where``."""
    moved = await conn.execute(update(callback_requests).where(_r.id == request_id, *where).values(**values))
    return moved.rowcount == 1


def status_is(*statuses: str) -> Any:
    return _r.status.in_(statuses)


def claimed_by(worker_id: str | None) -> Any:
    return _r.claimed_by == worker_id


def lease_expired(worker_id: str | None, now: datetime) -> list[Any]:
    return [claimed_by(worker_id), _r.claimed_until < now]


async def status_of(conn: AsyncConnection, request_id: int) -> str | None:
    return (await conn.execute(select(_r.status).where(_r.id == request_id))).scalar()


async def interrupt_open_attempts(conn: AsyncConnection, request_id: int, outcome: str, now: datetime) -> None:
    await conn.execute(
        update(call_attempts)
        .where(_a.request_id == request_id, _a.ended_at.is_(None))
        .values(ended_at=now, outcome=outcome, billed_seconds=0)
    )


# -- closing many attempts at once (the worker's group commit) -------------------------------------------


async def holders(conn: AsyncConnection, request_ids: list[int], status: str, is_sqlite: bool) -> dict[int, str]:
    """Who holds each of these requests while in ``status``; locked on PostgreSQL until the commit."""
    query = select(_r.id, _r.claimed_by).where(_r.id.in_(request_ids), _r.status == status)
    if not is_sqlite:
        query = query.with_for_update()  # hold them: a recovery must not slip in before our UPDATE
    return dict((await conn.execute(query)).all())  # type: ignore[arg-type]


async def set_request_statuses(conn: AsyncConnection, params: list[dict[str, Any]]) -> None:
    """Each ``{rid, st, nx, fin, now}``: the request's new status, next attempt and finish time."""
    await conn.execute(
        update(callback_requests)
        .where(_r.id == bindparam("rid"))
        .values(
            status=bindparam("st"),
            next_attempt_at=bindparam("nx"),
            finished_at=bindparam("fin"),
            claimed_by=None,
            claimed_until=None,
            updated_at=bindparam("now"),
        ),
        params,
    )


async def close_attempt_rows(conn: AsyncConnection, params: list[dict[str, Any]]) -> None:
    """Each ``{aid, end, oc, bs, op, oa, ca, rp}``: what the attempt saw, written when it ended."""
    await conn.execute(
        update(call_attempts)
        .where(_a.id == bindparam("aid"))
        .values(
            ended_at=bindparam("end"),
            outcome=bindparam("oc"),
            billed_seconds=bindparam("bs"),
            operator_phone=bindparam("op"),
            operator_answered_at=bindparam("oa"),
            client_answered_at=bindparam("ca"),
            recording_path=bindparam("rp"),
        ),
        params,
    )


def attempt_progress(attempt_id: int, values: dict[str, Any]) -> Any:
    """The live journal's update of a running attempt (who answered when), as one statement."""
    return update(call_attempts).where(_a.id == attempt_id).values(**values)


async def sites_for_update(conn: AsyncConnection, site_ids: Iterable[int], is_sqlite: bool) -> dict[int, dict]:
    query = select(sites).where(sites.c.id.in_(sorted(set(site_ids)))).order_by(sites.c.id)
    if not is_sqlite:
        query = query.with_for_update()  # balances are read, then written: lock (in id order)
    return {row["id"]: dict(row) for row in (await conn.execute(query)).mappings()}


async def set_minutes_balance(conn: AsyncConnection, site_id: int, balance: int) -> None:
    await conn.execute(update(sites).where(sites.c.id == site_id).values(minutes_balance=balance))


async def is_blacklisted(conn: AsyncConnection, site_id: int, phone: str) -> bool:
    query = select(blacklist.c.id).where(blacklist.c.site_id == site_id, blacklist.c.phone == phone).limit(1)
    return (await conn.execute(query)).scalar() is not None


async def withdraw_claim(conn: AsyncConnection, request_id: int, attempt_id: int, status: str, now: datetime) -> bool:
    """Undo a claim before anything was dialled: its attempt row goes, the request becomes ``status``
    (``cancelled``: finished; ``pending``: due again) and its attempt count drops back. False if the
    claim is no longer ours to undo."""
    final = status != "pending"
    moved = await conn.execute(
        update(callback_requests)
        .where(_r.id == request_id, _r.status == "dialing")
        .values(
            status=status,
            attempts_made=_r.attempts_made - 1,
            claimed_by=None,
            claimed_until=None,
            next_attempt_at=None if final else _r.next_attempt_at,
            finished_at=now if final else None,
            updated_at=now,
        )
    )
    if moved.rowcount != 1:
        return False
    await conn.execute(delete(call_attempts).where(call_attempts.c.id == attempt_id))
    return True
