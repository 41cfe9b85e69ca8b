"""Cabinet sessions: who is logged in, by the id in their cookie.

A session id lives only in the visitor's HttpOnly cookie; the database keeps its SHA-256, so a leaked
database (or backup) does not hand out logged-in sessions. Each session has its own CSRF token, which
every POST form of the cabinet must echo back. The cookie and the form check live in ``web/security.py``.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, select

from ..clock import utcnow
from ..store.db import Database
from ..store.tables import accounts, web_sessions
from .accounts import Principal

SESSION_LIFETIME = timedelta(days=14)
# Longer ids than any we issue are refused before hashing: nobody's cookie is that long.
MAX_SESSION_ID = 128


@dataclass(frozen=True)
class CabinetUser:
    """The account behind a live session, and the CSRF token its forms carry."""

    account_id: int
    email: str
    csrf_token: str

    @property
    def principal(self) -> Principal:
        return Principal(account_id=self.account_id)


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


async def open_session(db: Database, account_id: int, now: datetime | None = None) -> str:
    """A new session for ``account_id``; returns the id to put in the cookie (never stored itself)."""
    now = now or utcnow()
    session_id = secrets.token_urlsafe(32)
    async with db.write() as conn:
        # Housekeeping on login is enough: expired rows are never accepted anyway.
        await conn.execute(delete(web_sessions).where(web_sessions.c.expires_at < now))
        await conn.execute(
            insert(web_sessions).values(
                id_hash=_hash(session_id),
                account_id=account_id,
                csrf_token=secrets.token_urlsafe(32),
                expires_at=now + SESSION_LIFETIME,
                created_at=now,
            )
        )
    return session_id


async def load_session(db: Database, session_id: str | None, now: datetime | None = None) -> CabinetUser | None:
    """The user of a live session; None for no id, an unknown one or an expired one."""
    if not session_id or len(session_id) > MAX_SESSION_ID:
        return None
    query = (
        select(web_sessions.c.account_id, web_sessions.c.csrf_token, accounts.c.email)
        .join(accounts, accounts.c.id == web_sessions.c.account_id)
        .where(web_sessions.c.id_hash == _hash(session_id), web_sessions.c.expires_at > (now or utcnow()))
    )
    async with db.read() as conn:
        row = (await conn.execute(query)).first()
    if row is None:
        return None
    return CabinetUser(account_id=int(row.account_id), email=row.email, csrf_token=row.csrf_token)


async def close_session(db: Database, session_id: str | None) -> None:
    if not session_id:
        return
    async with db.write() as conn:
        await conn.execute(delete(web_sessions).where(web_sessions.c.id_hash == _hash(session_id)))
