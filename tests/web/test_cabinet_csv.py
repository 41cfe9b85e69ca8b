"""The CSV export: a GET link, the account's own requests, formula cells neutralised."""

from __future__ import annotations

import asyncio
import csv
import io

import pytest

from perezvon.web.csvexport import neutralize


@pytest.mark.parametrize("cell", ["=1+2", "+7 900", "-5", "@SUM(A1)", "\tx", "\rx", '=HYPERLINK("http://x")'])
def test_it_quotes_cells_a_spreadsheet_would_run(cell):
    assert neutralize(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["79001234567", "Ivan", "a=b", "", "2026-11-25T10:00:00.000Z", "Иван"])
def test_it_leaves_ordinary_cells_alone(cell):
    assert neutralize(cell) == cell


def _parse(body: bytes) -> list[dict[str, str]]:
    text = body.decode("utf-8")
    assert text.startswith("\ufeff")  # so spreadsheets read UTF-8
    return list(csv.DictReader(io.StringIO(text[1:])))


async def test_the_export_neutralises_what_visitors_typed(cabinet):
    await cabinet.account("alice")
    site = await cabinet.site("alice")
    await cabinet.widget("alice", site["id"])
    await cabinet.visitor_request(
        site,
        fields=[{"name": "=cmd|' /C calc'!A0", "value": "x"}, {"name": "Name", "value": "@SUM(1+1)"}],
        tags=["+tag", "plain"],
    )
    await cabinet.server_request(
        "alice",
        {
            "routeKey": "my_form_1",
            "phone": "79001234568",
            "fields": [{"name": "Имя", "value": "Иван"}],
            "utmSource": "-2+3",
            "utmCampaign": "=1+1",
            "callUrl": "@evil",
        },
    )
    alice = await cabinet.login("alice")
    journal = (await alice.get("/cabinet/journal")).text
    assert 'href="/cabinet/journal.csv"' in journal  # a plain GET link
    response = await alice.get("/cabinet/journal.csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = _parse(response.content)
    assert len(rows) == 2
    by_phone = {r["phone"]: r for r in rows}
    js, api = by_phone["79001234567"], by_phone["79001234568"]
    assert js["fields"] == "'=cmd|' /C calc'!A0: x | Name: @SUM(1+1)"
    assert js["tags"] == "'+tag, plain"
    assert api["fields"] == "Имя: Иван"
    assert api["utmSource"] == "'-2+3" and api["utmCampaign"] == "'=1+1" and api["callUrl"] == "'@evil"
    for row in rows:
        for value in row.values():
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r"))


async def test_the_export_follows_the_filters(cabinet):
    await cabinet.account("alice")
    site = await cabinet.site("alice")
    await cabinet.widget("alice", site["id"])
    await cabinet.visitor_request(site, phone="79001234567", tags=["vip"])
    await cabinet.visitor_request(site, phone="79001234568", tags=["other"])
    alice = await cabinet.login("alice")
    journal = (await alice.get("/cabinet/journal", params={"tag": "vip"})).text
    assert 'href="/cabinet/journal.csv?tag=vip"' in journal
    rows = _parse((await alice.get("/cabinet/journal.csv", params={"tag": "vip"})).content)
    assert [r["phone"] for r in rows] == ["79001234567"]


async def _bulk_requests(cabinet, site_id: int, n: int) -> None:  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import insert

    from perezvon.store.tables import callback_requests

    start = datetime(2026, 11, 1, tzinfo=UTC)
    rows = [
        {
            "site_id": site_id,
            "route_key": "my_form_1",
            "phone": f"7900{i:07d}",
            "fields": [{"name": "Имя", "value": "Иван" if i % 2 else "Олег"}],
            "custom_fields": [],
            "tags": [],
            "due_at": start + timedelta(seconds=i),
            "source": "js",
            "utm": {},
            "status": "pending",
            "updated_at": start,
            "created_at": start + timedelta(seconds=i),
        }
        for i in range(n)
    ]
    async with cabinet.state.db.write() as conn:
        await conn.execute(insert(callback_requests), rows)


async def _asgi_get(app, path: str, query: str, cookies: str) -> tuple[int, dict[str, str], list[bytes]]:  # type: ignore[no-untyped-def]
    """One GET straight through the ASGI app, keeping every body message it sends as sent
    (httpx's in-process transport would join them into one)."""
    messages: list[dict] = []
    requested = asyncio.Event()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"testserver"), (b"cookie", cookies.encode())],
        "client": ("203.0.113.9", 50001),
        "server": ("testserver", 80),
    }

    async def receive() -> dict:
        if not requested.is_set():
            requested.set()
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Event().wait()  # the client stays connected until the response is over
        raise AssertionError("unreachable")

    async def send(message: dict) -> None:
        messages.append(message)

    await app(scope, receive, send)
    start = messages[0]
    headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    return start["status"], headers, [m.get("body", b"") for m in messages[1:] if m.get("body")]


async def test_the_export_streams_every_row_past_the_old_cap(cabinet):
    await cabinet.account("alice")
    site = await cabinet.site("alice")
    await _bulk_requests(cabinet, site["id"], 2_500)
    alice = await cabinet.login("alice")
    cookies = "; ".join(f"{k}={v}" for k, v in alice.cookies.items())
    status, headers, chunks = await _asgi_get(
        cabinet.app, "/cabinet/journal.csv", "q=%D0%B8%D0%B2%D0%B0%D0%BD", cookies
    )
    assert status == 200 and headers["content-type"].startswith("text/csv")
    # The header goes out before any row is read, then one chunk per batch read from the database.
    assert chunks[0].decode("utf-8").count("\r\n") == 1 and len(chunks) >= 3
    rows = _parse(b"".join(chunks))
    assert len(rows) == 1_250 and all(r["fields"] == "Имя: Иван" for r in rows)
    ids = [int(r["id"]) for r in rows]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == len(ids)
