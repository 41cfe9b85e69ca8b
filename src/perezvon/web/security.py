"""Cabinet sessions, CSRF tokens and the security headers every cabinet response carries.

A session id lives only in the visitor's HttpOnly cookie; the database keeps its SHA-256, so a leaked
database (or backup) does not hand out logged-in sessions. Each session has its own CSRF token, which
every POST form must echo back.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, select
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..clock import utcnow
from ..services.accounts import Principal
from ..store.db import Database
from ..store.tables import accounts, web_sessions

SESSION_COOKIE = "pzv_session"
LOGIN_CSRF_COOKIE = "pzv_login_csrf"
SESSION_LIFETIME = timedelta(days=14)

# No inline script or style, nothing from other origins: even if escaping ever failed somewhere,
# an injected <script> or onerror= handler would not run.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; media-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
]


@dataclass(frozen=True)
class CabinetUser:
    account_id: int
    email: str
    csrf_token: str

    @property
    def principal(self) -> Principal:
        return Principal(account_id=self.account_id)


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def is_https(request: Request) -> bool:
    settings = request.app.state.settings
    return request.url.scheme == "https" or settings.public_base_url.startswith("https://")


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


async def load_session(db: Database, session_id: str | None) -> CabinetUser | None:
    if not session_id or len(session_id) > 128:
        return None
    query = (
        select(web_sessions.c.account_id, web_sessions.c.csrf_token, accounts.c.email)
        .join(accounts, accounts.c.id == web_sessions.c.account_id)
        .where(web_sessions.c.id_hash == _hash(session_id), web_sessions.c.expires_at > utcnow())
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


def set_session_cookie(response: Response, request: Request, session_id: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        session_id,
        max_age=int(SESSION_LIFETIME.total_seconds()),
        path="/",
        httponly=True,
        samesite="lax",
        secure=is_https(request),
    )


def tokens_match(expected: str | None, given: object) -> bool:
    if not expected or not isinstance(given, str) or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


def new_login_csrf() -> str:
    return secrets.token_urlsafe(24)


class SecurityHeaders:
    """Adds the CSP and friends to every response of the cabinet, error pages and static files included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name for name, _ in message.get("headers", [])}
                extra = [(n, v) for n, v in SECURITY_HEADERS if n not in names]
                message["headers"] = list(message.get("headers", [])) + extra
            await send(message)

        await self.app(scope, receive, send_with_headers)
