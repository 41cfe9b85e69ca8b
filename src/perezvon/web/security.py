"""Cabinet cookies, CSRF tokens and the security headers every cabinet response carries.

Sessions themselves (their rows, expiry, the hash kept instead of the id) are ``services/sessions.py``;
this module puts their ids in cookies and checks the tokens forms echo back.
"""

from __future__ import annotations

import hmac
import secrets

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..services.sessions import SESSION_LIFETIME

SESSION_COOKIE = "pzv_session"
LOGIN_CSRF_COOKIE = "pzv_login_csrf"

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


def is_https(request: Request) -> bool:
    settings = request.app.state.settings
    return request.url.scheme == "https" or settings.public_base_url.startswith("https://")


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
