"""The cabinet's attribution report: a chart, the table and its CSV, only of the account's own sites."""

from __future__ import annotations

import csv
import io
import re


async def alice_with_requests(cabinet):  # type: ignore[no-untyped-def]
    await cabinet.account("alice")
    site = await cabinet.site("alice")
    await cabinet.widget("alice", site["id"])
    yandex = {"utmSource": "yandex", "utmMedium": "cpc", "utmCampaign": '=HYPERLINK("x")'}
    await cabinet.visitor_request(site, session=yandex)
    await cabinet.visitor_request(site, phone="79001234568", session=yandex)
    await cabinet.visitor_request(site, phone="79001234569", session={"utmSource": "<b>google</b>"})
    await cabinet.visitor_request(site, phone="79001234570")
    return site


async def test_the_page_draws_a_chart_and_a_table(cabinet) -> None:  # type: ignore[no-untyped-def]
    site = await alice_with_requests(cabinet)
    alice = await cabinet.login("alice")
    response = await alice.get("/cabinet/reports/attribution")
    assert response.status_code == 200
    html = response.text
    assert html.count('<svg class="chart hchart') == 1
    assert len(re.findall(r'<rect class="bar"', html)) == 3  # yandex, google, (none)
    assert "&lt;b&gt;google&lt;/b&gt;" in html and "<b>google</b>" not in html
    assert 'href="/cabinet/reports/attribution.csv' in html
    assert '<span class="tile-value">4</span>' in html
    one_site = await alice.get(f"/cabinet/reports/attribution?site={site['id']}&by=source")
    assert one_site.status_code == 200 and "yandex" in one_site.text


async def test_the_csv_has_the_table_and_neutralises_formulas(cabinet) -> None:  # type: ignore[no-untyped-def]
    await alice_with_requests(cabinet)
    alice = await cabinet.login("alice")
    response = await alice.get("/cabinet/reports/attribution.csv")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text.lstrip("\ufeff"))))
    assert rows[0] == ["source", "medium", "campaign", "requests", "connected", "finished", "connectionRate", "minutes"]
    assert rows[1] == ["yandex", "cpc", '\'=HYPERLINK("x")', "2", "0", "0", "", "0"]
    assert len(rows) == 4


async def test_bad_dates_say_so_on_the_page(cabinet) -> None:  # type: ignore[no-untyped-def]
    await alice_with_requests(cabinet)
    alice = await cabinet.login("alice")
    response = await alice.get("/cabinet/reports/attribution?from=2026-03-02&to=2026-03-01")
    assert response.status_code == 400
    assert 'class="field-error"' in response.text
    assert (await alice.get("/cabinet/reports/attribution.csv?from=junk")).status_code == 400


async def test_bob_sees_none_of_alices_sources(cabinet) -> None:  # type: ignore[no-untyped-def]
    await alice_with_requests(cabinet)
    bob = await cabinet.login("bob")
    html = (await bob.get("/cabinet/reports/attribution")).text
    assert "yandex" not in html and '<span class="tile-value">0</span>' in html


async def test_russian_labels(cabinet) -> None:  # type: ignore[no-untyped-def]
    await alice_with_requests(cabinet)
    alice = await cabinet.login("alice")
    html = (await alice.get("/cabinet/reports/attribution?lang=ru")).text
    assert "Откуда приходят заявки" in html and "Источник" in html
