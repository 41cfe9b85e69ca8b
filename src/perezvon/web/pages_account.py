"""Login, logout and the account's admin API tokens."""

from __future__ import annotations

from limits import RateLimitItemPerMinute
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ..services.accounts import (
    account_by_email,
    create_token,
    hash_password,
    list_tokens,
    revoke_token,
    verify_password,
)
from ..services.sessions import close_session, open_session
from ..throttling import client_ip
from .base import PREFIX, error_page, page, redirect, render, safe_next, url
from .security import LOGIN_CSRF_COOKIE, SESSION_COOKIE, is_https, new_login_csrf, set_session_cookie, tokens_match

# Guessing passwords through the form: a handful of tries per minute per address is plenty for a human.
LOGIN_LIMIT = RateLimitItemPerMinute(10)
# Verifying against a throwaway hash when the email is unknown keeps both answers equally slow,
# so response time does not tell which emails have accounts.
_DUMMY_HASH = hash_password("not-a-real-password-0")


def _login_form(request: Request, *, email: str = "", error: str = "", status: int = 200) -> Response:
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or new_login_csrf()
    response = render(
        request,
        "login.html",
        {"email": email, "error": error, "login_csrf": token, "next": request.query_params.get("next", "")},
        status=status,
    )
    # Before login there is no session to hold a CSRF token: a double-submit cookie stands in for it.
    response.set_cookie(
        LOGIN_CSRF_COOKIE, token, path=PREFIX, httponly=True, samesite="strict", secure=is_https(request)
    )
    return response


@page(public=True)
async def login_page(request: Request) -> Response:
    if request.state.user is not None:
        return RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
    return _login_form(request)


@page(public=True)
async def login_submit(request: Request) -> Response:
    form = await request.form()
    email = str(form.get("email", "")).strip()
    if not tokens_match(request.cookies.get(LOGIN_CSRF_COOKIE), form.get("csrf")):
        return error_page(request, 403, "error_csrf")
    state = request.app.state
    ip = client_ip(
        request.client.host if request.client else None,
        request.headers.get("x-forwarded-for"),
        state.settings.trusted_proxies,
    )
    if not await state.guard.limiter.hit(LOGIN_LIMIT, "cabinet-login", ip):
        return _login_form(request, email=email, error="login_throttled", status=429)
    account = await account_by_email(state.db, email) if email else None
    password = str(form.get("password", ""))
    valid = verify_password(account["password_hash"] if account else _DUMMY_HASH, password) and account is not None
    if not valid:
        return _login_form(request, email=email, error="login_failed", status=401)
    # A fresh id on every login (no session fixation); a session this browser already had ends here.
    await close_session(state.db, request.cookies.get(SESSION_COOKIE))
    session_id = await open_session(state.db, account["id"])
    response = RedirectResponse(safe_next(str(form.get("next", ""))), status_code=303)
    set_session_cookie(response, request, session_id)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path=PREFIX)
    return response


@page
async def logout(request: Request) -> Response:
    await close_session(request.app.state.db, request.cookies.get(SESSION_COOKIE))
    response = redirect("/login")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@page(public=True)
async def home(request: Request) -> Response:
    return RedirectResponse(url("/journal" if request.state.user else "/login"), status_code=303)


async def _tokens(request: Request) -> list[dict]:
    return await list_tokens(request.app.state.db, request.state.user.account_id)


@page
async def tokens_page(request: Request) -> Response:
    return render(request, "tokens.html", {"nav": "tokens", "tokens": await _tokens(request), "new_token": None})


@page
async def tokens_create(request: Request) -> Response:
    form = await request.form()
    name = str(form.get("name", "")).strip()[:100]
    token = await create_token(request.app.state.db, request.state.user.account_id, name)
    # Shown once, in this answer only: the database keeps a hash. Not a redirect, so it is not in a URL.
    return render(request, "tokens.html", {"nav": "tokens", "tokens": await _tokens(request), "new_token": token})


@page
async def tokens_revoke(request: Request) -> Response:
    token_id = request.path_params["token_id"]
    if not await revoke_token(request.app.state.db, request.state.user.account_id, token_id):
        return error_page(request, 404, "error_not_found")
    return redirect("/tokens", done="token_revoked")


routes = [
    Route("/", home, methods=["GET"]),
    Route("/login", login_page, methods=["GET"]),
    Route("/login", login_submit, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
    Route("/tokens", tokens_page, methods=["GET"]),
    Route("/tokens", tokens_create, methods=["POST"]),
    Route("/tokens/{token_id:int}/revoke", tokens_revoke, methods=["POST"]),
]
