"""The cabinet's refused requests: what the account's visitors met, escaped, linked from the journal."""

from __future__ import annotations


async def test_refusals_are_listed_escaped_and_only_to_their_owner(cabinet) -> None:  # type: ignore[no-untyped-def]
    await cabinet.account("alice")
    site = await cabinet.site("alice")
    await cabinet.widget("alice", site["id"])
    await cabinet.state.catalog.add_blacklist(cabinet_principal(cabinet, "alice"), site["id"], "79001230000")
    for phone in ("79001230000", "<b>x</b>"):
        response = await cabinet.client.post(
            "/api/widget/v1/requests", json={"site": site["site_key"], "routeKey": "my_form_1", "phone": phone}
        )
        assert response.status_code in (400, 403)
    alice = await cabinet.login("alice")
    journal = (await alice.get("/cabinet/journal")).text
    assert 'href="/cabinet/refusals"' in journal
    html = (await alice.get("/cabinet/refusals")).text
    assert "Blacklisted number" in html and "Number not allowed" in html
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "<b>x</b>" not in html
    only = (await alice.get("/cabinet/refusals?reason=request_phone_blacklisted")).text
    assert "79001230000" in only and "&lt;b&gt;" not in only
    russian = (await alice.get("/cabinet/refusals?lang=ru")).text
    assert "Отклонённые заявки" in russian and "Номер в чёрном списке" in russian
    bob = await cabinet.login("bob")
    assert "79001230000" not in (await bob.get("/cabinet/refusals")).text


def cabinet_principal(cabinet, name: str):  # type: ignore[no-untyped-def]
    from perezvon.services.accounts import Principal

    return Principal(account_id=cabinet.accounts[name])
