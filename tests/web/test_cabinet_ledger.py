"""The cabinet's minutes ledger: a balance chart and every entry; the owner's only; notes escaped."""

from __future__ import annotations

from perezvon.services.accounts import OPERATOR


async def test_it_shows_the_balance_chart_and_every_entry(cabinet) -> None:  # type: ignore[no-untyped-def]
    await cabinet.account("alice")
    site = await cabinet.site("alice")
    await cabinet.state.ledger.top_up(OPERATOR, site["id"], 250, "<b>invoice</b> 17")
    alice = await cabinet.login("alice")
    page = await alice.get(f"/cabinet/sites/{site['id']}/ledger")
    assert page.status_code == 200
    assert '<svg class="chart' in page.text and "1250" in page.text  # 1000 to start, +250
    assert "+250" in page.text and "+1000" in page.text and "starting balance" in page.text
    assert "&lt;b&gt;invoice&lt;/b&gt; 17" in page.text and "<b>invoice</b>" not in page.text
    site_page = await alice.get(f"/cabinet/sites/{site['id']}")
    assert f"/cabinet/sites/{site['id']}/ledger" in site_page.text


async def test_another_accounts_ledger_is_not_found(cabinet) -> None:  # type: ignore[no-untyped-def]
    await cabinet.account("alice")
    site = await cabinet.site("alice")
    bob = await cabinet.login("bob")
    assert (await bob.get(f"/cabinet/sites/{site['id']}/ledger")).status_code == 404


def test_end_of_day_balances_walk_back_from_today() -> None:
    from datetime import UTC, date, datetime

    from perezvon.web.pages_ledger import end_of_day_balances

    days = [date(2026, 11, 29), date(2026, 11, 30), date(2026, 12, 1)]
    entries = [
        {"at": datetime(2026, 11, 30, 10, tzinfo=UTC), "minutes": 100},
        {"at": datetime(2026, 12, 1, 9, tzinfo=UTC), "minutes": -3},
    ]
    assert end_of_day_balances(497, entries, days, "UTC") == [400, 500, 497]


async def test_the_site_form_picks_countries_and_the_daily_cap(cabinet) -> None:  # type: ignore[no-untyped-def]
    await cabinet.account("alice")
    site = await cabinet.site("alice")
    alice = await cabinet.login("alice")
    form = await alice.get(f"/cabinet/sites/{site['id']}/edit")
    assert '<option value="KZ"' in form.text and '<option value="RU" selected' in form.text
    csrf = await cabinet.csrf(alice, f"/cabinet/sites/{site['id']}/edit")
    response = await alice.post(
        f"/cabinet/sites/{site['id']}/edit",
        data={
            "csrf": csrf,
            "name": "Shop",
            "timezone": "Europe/Moscow",
            "callbackActive": "1",
            "allowedCountries": ["RU", "KZ"],
            "maxRequestsPerNumberPerDay": "3",
        },
    )
    assert response.status_code == 303, response.text
    row = await cabinet.state.catalog.get_site(OPERATOR, site["id"])
    assert (row["allowed_countries"], row["max_requests_per_number_per_day"]) == (["RU", "KZ"], 3)


async def test_odd_ids_and_pages_are_not_found_or_ignored_never_a_crash(cabinet) -> None:  # type: ignore[no-untyped-def]
    alice = await cabinet.login("alice")
    for path in (
        "/cabinet/sites/99999999999999999999",
        "/cabinet/requests/99999999999999999999",
        "/cabinet/sites/99999999999999999999/ledger",
        "/cabinet/widgets/99999999999999999999",
    ):
        assert (await alice.get(path)).status_code == 404, path
    for path in (
        "/cabinet/journal?page=%C2%B2",
        "/cabinet/journal?page=4611686018427387904",
        "/cabinet/journal?site=%D9%A3",
        "/cabinet/journal?site=99999999999999999999",
    ):
        assert (await alice.get(path)).status_code == 200, path
