"""Cabinet sessions: only the hash of the id is stored, expiry and logout end them."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from perezvon.clock import utcnow
from perezvon.services.accounts import create_account
from perezvon.services.sessions import (
    MAX_SESSION_ID,
    SESSION_LIFETIME,
    close_session,
    load_session,
    open_session,
)
from perezvon.store.db import Database
from perezvon.store.tables import web_sessions


async def _session_rows(db: Database) -> list[dict]:
    async with db.read() as conn:
        return [dict(r) for r in (await conn.execute(select(web_sessions))).mappings()]


async def test_an_opened_session_loads_as_its_account_with_a_csrf_token(db: Database) -> None:
    account_id = await create_account(db, "Alice@Example.com", "correct horse")
    session_id = await open_session(db, account_id)

    user = await load_session(db, session_id)

    assert user is not None
    assert (user.account_id, user.email) == (account_id, "alice@example.com")
    assert user.principal.account_id == account_id and not user.principal.is_operator
    assert len(user.csrf_token) >= 32 and user.csrf_token != session_id
    [row] = await _session_rows(db)
    assert session_id not in row.values()  # the cookie's id is not in the database, only its hash


async def test_each_session_has_its_own_id_and_csrf_token(db: Database) -> None:
    account_id = await create_account(db, "alice@example.com", "correct horse")
    first, second = await open_session(db, account_id), await open_session(db, account_id)

    one, two = await load_session(db, first), await load_session(db, second)

    assert first != second
    assert one is not None and two is not None and one.csrf_token != two.csrf_token


async def test_an_expired_session_does_not_load_and_the_next_login_deletes_it(db: Database) -> None:
    account_id = await create_account(db, "alice@example.com", "correct horse")
    opened_at = utcnow() - SESSION_LIFETIME - timedelta(minutes=1)
    stale = await open_session(db, account_id, now=opened_at)

    assert await load_session(db, stale) is None
    assert await load_session(db, stale, now=opened_at + SESSION_LIFETIME - timedelta(seconds=1)) is not None

    fresh = await open_session(db, account_id)
    assert [r["expires_at"] > utcnow() for r in await _session_rows(db)] == [True]
    assert await load_session(db, fresh) is not None


async def test_closing_a_session_logs_it_out_and_leaves_others(db: Database) -> None:
    account_id = await create_account(db, "alice@example.com", "correct horse")
    laptop, phone = await open_session(db, account_id), await open_session(db, account_id)

    await close_session(db, laptop)
    await close_session(db, None)  # no cookie: nothing to do
    await close_session(db, "never-issued")

    assert await load_session(db, laptop) is None
    assert await load_session(db, phone) is not None


async def test_missing_unknown_and_oversized_ids_load_nobody(db: Database) -> None:
    account_id = await create_account(db, "alice@example.com", "correct horse")
    await open_session(db, account_id)

    for session_id in (None, "", "not-a-session", "x" * (MAX_SESSION_ID + 1)):
        assert await load_session(db, session_id) is None
    async with db.read() as conn:
        assert (await conn.execute(select(func.count()).select_from(web_sessions))).scalar() == 1
