"""Logging in and out: argon2 passwords, server sessions stored as hashes, cookie flags, CSRF on login."""

from __future__ import annotations

import hashlib

from sqlalchemy import select

from perezvon.store.tables import web_sessions
from web.cabinet_support import PASSWORD, csrf_of


async def test_it_sends_the_logged_out_root_to_the_login_form(cabinet):
    client = cabinet.new_client()
    first = await client.get("/")
    assert first.status_code == 303 and first.headers["location"] == "/cabinet/"
    second = await client.get("/cabinet/")
    assert second.status_code == 303 and second.headers["location"] == "/cabinet/login"
    page = await client.get("/cabinet/login")
    assert page.status_code == 200
    assert 'type="password"' in page.text


async def test_it_sends_a_logged_out_page_to_login_and_back(cabinet):
    await cabinet.account("alice")
    client = cabinet.new_client()
    response = await client.get("/cabinet/dashboard")
    assert response.status_code == 303
    assert response.headers["location"] == "/cabinet/login?next=%2Fcabinet%2Fdashboard"
    page = await client.get(response.headers["location"])
    login = await client.post(
        "/cabinet/login",
        data={
            "email": "alice@example.com",
            "password": PASSWORD,
            "csrf": csrf_of(page.text),
            "next": "/cabinet/dashboard",
        },
    )
    assert login.headers["location"] == "/cabinet/dashboard"


async def test_it_refuses_a_wrong_password(cabinet):
    await cabinet.account("alice")
    client = cabinet.new_client()
    page = await client.get("/cabinet/login")
    response = await client.post(
        "/cabinet/login", data={"email": "alice@example.com", "password": "wrong-password", "csrf": csrf_of(page.text)}
    )
    assert response.status_code == 401
    assert "Wrong email or password" in response.text
    assert "pzv_session" not in response.cookies
    assert (await client.get("/cabinet/journal")).status_code == 303


async def test_it_refuses_an_unknown_email_the_same_way(cabinet):
    client = cabinet.new_client()
    page = await client.get("/cabinet/login")
    response = await client.post(
        "/cabinet/login", data={"email": "nobody@example.com", "password": PASSWORD, "csrf": csrf_of(page.text)}
    )
    assert response.status_code == 401
    assert "Wrong email or password" in response.text


async def test_it_refuses_a_login_post_without_its_csrf_token(cabinet):
    await cabinet.account("alice")
    client = cabinet.new_client()
    await client.get("/cabinet/login")
    response = await client.post("/cabinet/login", data={"email": "alice@example.com", "password": PASSWORD})
    assert response.status_code == 403
    assert "pzv_session" not in response.cookies


async def test_it_keeps_only_a_hash_of_the_session_id(cabinet):
    client = await cabinet.login("alice")
    session_id = client.cookies["pzv_session"]
    async with cabinet.state.db.read() as conn:
        stored = list((await conn.execute(select(web_sessions.c.id_hash))).scalars())
    assert stored == [hashlib.sha256(session_id.encode()).hexdigest()]
    assert session_id not in stored


async def test_it_sets_an_httponly_samesite_cookie(cabinet):
    await cabinet.account("alice")
    client = cabinet.new_client()
    page = await client.get("/cabinet/login")
    response = await client.post(
        "/cabinet/login", data={"email": "alice@example.com", "password": PASSWORD, "csrf": csrf_of(page.text)}
    )
    cookie = next(v for k, v in response.headers.multi_items() if k == "set-cookie" and v.startswith("pzv_session="))
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie or "samesite=lax" in cookie.lower()
    assert "Secure" not in cookie  # plain http here; https adds it


async def test_it_marks_the_cookie_secure_over_https(cabinet):
    await cabinet.account("alice")
    client = cabinet.new_client()
    client.base_url = "https://testserver"
    page = await client.get("/cabinet/login")
    response = await client.post(
        "/cabinet/login", data={"email": "alice@example.com", "password": PASSWORD, "csrf": csrf_of(page.text)}
    )
    cookie = next(v for k, v in response.headers.multi_items() if k == "set-cookie" and v.startswith("pzv_session="))
    assert "Secure" in cookie


async def test_it_logs_out_with_a_post_only(cabinet):
    client = await cabinet.login("alice")
    assert (await client.get("/cabinet/logout")).status_code in (404, 405)
    assert (await client.get("/cabinet/journal")).status_code == 200
    csrf = await cabinet.csrf(client, "/cabinet/journal")
    response = await client.post("/cabinet/logout", data={"csrf": csrf})
    assert response.status_code == 303
    assert (await client.get("/cabinet/journal")).status_code == 303
    async with cabinet.state.db.read() as conn:
        assert list((await conn.execute(select(web_sessions))).all()) == []


async def test_it_never_redirects_after_login_to_another_origin(cabinet):
    await cabinet.account("alice")
    client = cabinet.new_client()
    page = await client.get("/cabinet/login")
    response = await client.post(
        "/cabinet/login",
        data={
            "email": "alice@example.com",
            "password": PASSWORD,
            "csrf": csrf_of(page.text),
            "next": "//evil.example/cabinet/",
        },
    )
    assert response.headers["location"] == "/cabinet/journal"


async def test_every_cabinet_page_carries_a_strict_csp(cabinet):
    client = await cabinet.login("alice")
    for path in (
        "/cabinet/login",
        "/cabinet/journal",
        "/cabinet/dashboard",
        "/cabinet/sites",
        "/cabinet/tokens",
        "/cabinet/no-such-page",
        "/cabinet/static/cabinet.css",
    ):
        response = await client.get(path)
        csp = response.headers.get("content-security-policy", "")
        assert "default-src 'self'" in csp, path
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp, path
        assert response.headers["x-frame-options"] == "DENY"


async def test_pages_have_no_inline_script_and_load_nothing_from_elsewhere(cabinet):
    client = await cabinet.login("alice")
    html = (await client.get("/cabinet/journal")).text
    assert "<script>" not in html
    assert "http://" not in html.replace("http://testserver", "") and "https://" not in html
