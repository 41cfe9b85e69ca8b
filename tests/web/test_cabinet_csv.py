"""The CSV export: a GET link, the account's own requests, formula cells neutralised."""

from __future__ import annotations

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
