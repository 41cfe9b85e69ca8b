"""What every cabinet page shares: the template environment, the login/CSRF gate and error pages."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined, pass_context
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from ..domain.digits import MAX_ID
from ..services.catalog import NotFound
from ..services.sessions import CabinetUser, load_session
from . import i18n
from .security import SESSION_COOKIE, tokens_match

PREFIX = "/cabinet"
TEMPLATES = Path(__file__).resolve().parent / "templates"
LANG_COOKIE = "pzv_lang"

# Autoescape is on for every template whatever its name: visitor data must never reach the page raw.
env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined)

Handler = Callable[[Request], Awaitable[Response]]


def local_time(moment: datetime | None, zone: tzinfo | str | None = None, seconds: bool = False) -> str:
    if moment is None:
        return ""
    tz = ZoneInfo(zone) if isinstance(zone, str) else zone
    local = moment.astimezone(tz) if tz is not None else moment
    return local.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def duration(seconds: float | int | None, lang: str = "en") -> str:
    """7 s, 2 min 05 s, 1 h 03 min — in the page's language (7 с, 2 мин 05 с, 1 ч 03 мин)."""
    if seconds is None:
        return "—"
    t = i18n.translator(lang)
    s, m, h = t("unit_s"), t("unit_min"), t("unit_h")
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} {s}"
    minutes, rest = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} {m} {rest:02d} {s}" if rest else f"{minutes} {m}"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} {h} {minutes:02d} {m}"


@pass_context
def _duration_filter(context: Any, seconds: float | int | None) -> str:
    return duration(seconds, context.get("lang", "en"))


env.filters["local_time"] = local_time
env.filters["duration"] = _duration_filter


def url(path: str, **query: Any) -> str:
    """A cabinet URL with the non-empty query parameters given."""
    params = {k: v for k, v in query.items() if v not in (None, "")}
    return PREFIX + path + ("?" + urlencode(params) if params else "")


env.globals["url"] = url
env.globals["PREFIX"] = PREFIX


def pick_language(request: Request) -> str:
    asked = request.query_params.get("lang")
    if asked in i18n.LANGUAGES:
        return asked
    saved = request.cookies.get(LANG_COOKIE)
    if saved in i18n.LANGUAGES:
        return saved
    accept = request.headers.get("accept-language", "").lower()
    return "ru" if accept.startswith("ru") else "en"


def language_links(request: Request) -> dict[str, str]:
    links = {}
    for lang in i18n.LANGUAGES:
        params = dict(request.query_params)
        params["lang"] = lang
        links[lang] = request.url.path + "?" + urlencode(params)
    return links


def render(request: Request, template: str, context: dict[str, Any] | None = None, status: int = 200) -> HTMLResponse:
    lang = getattr(request.state, "lang", "en")
    user: CabinetUser | None = getattr(request.state, "user", None)
    ctx = {
        "request": request,
        "lang": lang,
        "t": i18n.translator(lang),
        "user": user,
        "csrf": user.csrf_token if user else "",
        "lang_links": language_links(request),
        "path": request.url.path,
        "nav": "",
        "done": i18n.flash_key(request.query_params.get("done")),
    }
    ctx.update(context or {})
    html = env.get_template(template).render(ctx)
    # Pages show what visitors typed; keep them out of shared caches.
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})


def error_page(request: Request, status: int, message_key: str) -> HTMLResponse:
    return render(request, "error.html", {"status": status, "message_key": message_key}, status=status)


def _remember_language(request: Request, response: Response) -> None:
    asked = request.query_params.get("lang")
    if asked in i18n.LANGUAGES:
        response.set_cookie(LANG_COOKIE, asked, max_age=365 * 86400, path="/", samesite="lax", httponly=True)


def page(handler: Handler | None = None, *, public: bool = False) -> Any:
    """Wrap a cabinet endpoint: language, the logged-in account, the CSRF check on POST, HTML 404s.

    Logged-out GETs go to the login form (and come back after); logged-out POSTs are refused.
    """

    def wrap(inner: Handler) -> Handler:
        @functools.wraps(inner)
        async def endpoint(request: Request) -> Response:
            request.state.lang = pick_language(request)
            if any(isinstance(v, int) and v > MAX_ID for v in request.path_params.values()):
                return error_page(request, 404, "error_not_found")  # past 64 bits: no such row, ask no database
            user = await load_session(request.app.state.db, request.cookies.get(SESSION_COOKIE))
            request.state.user = user
            if user is None and not public:
                if request.method in ("GET", "HEAD"):
                    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                    return RedirectResponse(url("/login", next=target), status_code=303)
                return error_page(request, 403, "error_logged_out")
            if request.method == "POST" and user is not None:
                form = await request.form()
                if not tokens_match(user.csrf_token, form.get("csrf")):
                    return error_page(request, 403, "error_csrf")
            try:
                response = await inner(request)
            except NotFound:
                response = error_page(request, 404, "error_not_found")
            _remember_language(request, response)
            return response

        return endpoint

    return wrap(handler) if handler is not None else wrap


def redirect(path: str, **query: Any) -> RedirectResponse:
    """Post/Redirect/Get: a POST that changed something answers 303 to the page to look at."""
    return RedirectResponse(url(path, **query), status_code=303)


def safe_next(target: str | None) -> str:
    """Only a cabinet path may follow login (never another origin: no open redirect)."""
    if target and target.startswith(PREFIX + "/") and not target.startswith("//") and "\\" not in target:
        return target
    return PREFIX + "/journal"


def quote_path(text: str) -> str:
    return quote(text, safe="")
