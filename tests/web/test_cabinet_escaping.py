"""Everything a visitor typed reaches the cabinet as text: no <script> or onerror= survives on any page."""

from __future__ import annotations

import pytest

SCRIPT = "<script>window.__pwned=1</script>"
IMG = '<img src=x onerror="window.__pwned=1">'
PAYLOADS = (SCRIPT, IMG)


def assert_inert(html: str) -> None:
    for payload in PAYLOADS:
        assert payload not in html
    assert "onerror=" not in html.replace("onerror=&#34;", "").replace("onerror=&quot;", "")
    assert "<img" not in html
    assert 'href="javascript:' not in html.lower()
    assert "<script>" not in html


@pytest.fixture
async def hostile(cabinet):
    """A site whose visitor filled every free-text place with markup, through both the JS and server APIs."""
    await cabinet.account("alice")
    site = await cabinet.site("alice", name="Shop")
    await cabinet.widget("alice", site["id"], "my_form_1")
    await cabinet.unit("alice", site["id"], name=IMG)
    js_request = await cabinet.visitor_request(
        site,
        fields=[{"name": SCRIPT, "value": IMG}, {"name": "Comment", "value": SCRIPT}],
        tags=[SCRIPT, IMG],
        session={
            "url": "javascript:window.__pwned=1//" + SCRIPT,
            "referrer": IMG,
            "userAgent": SCRIPT,
            "utmSource": SCRIPT,
            "utmMedium": IMG,
            "utmCampaign": "=cmd|' /C calc'!A0",
        },
    )
    api_request = await cabinet.server_request(
        "alice",
        {
            "routeKey": "my_form_1",
            "phone": "79001234568",
            "fields": [{"name": IMG, "value": SCRIPT}],
            "tags": [IMG],
            "callUrl": "javascript:alert(1)//" + IMG,
            "utmSource": SCRIPT,
            "utmTerm": IMG,
        },
    )
    return {"site": site, "js": js_request, "api": api_request}


async def test_the_journal_shows_payloads_as_text(cabinet, hostile):
    alice = await cabinet.login("alice")
    for path in (
        "/cabinet/journal",
        "/cabinet/journal/rows",
        f"/cabinet/journal?q=script&site={hostile['site']['id']}",
    ):
        html = (await alice.get(path)).text
        assert_inert(html)
        assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in html, path
        assert "&lt;img src=x onerror=" in html, path


async def test_the_journal_search_and_tag_filters_take_payloads_as_text(cabinet, hostile):
    alice = await cabinet.login("alice")
    response = await alice.get("/cabinet/journal", params={"tag": SCRIPT, "q": IMG, "phone": SCRIPT})
    assert response.status_code == 200
    assert_inert(response.text)


async def test_the_request_page_shows_fields_tags_session_and_utm_as_text(cabinet, hostile):
    alice = await cabinet.login("alice")
    for request_id in (hostile["js"], hostile["api"]):
        html = (await alice.get(f"/cabinet/requests/{request_id}")).text
        assert_inert(html)
        assert "&lt;script&gt;" in html and "&lt;img src=x" in html
    js_page = (await alice.get(f"/cabinet/requests/{hostile['js']}")).text
    assert "javascript:window.__pwned=1//&lt;script&gt;" in js_page  # the landing URL, shown as text
    assert '<a href="javascript' not in js_page
    api_page = (await alice.get(f"/cabinet/requests/{hostile['api']}")).text
    assert "javascript:alert(1)//&lt;img" in api_page


async def test_the_dashboard_sites_and_unit_pages_stay_inert(cabinet, hostile):
    alice = await cabinet.login("alice")
    site_id = hostile["site"]["id"]
    for path in (
        "/cabinet/dashboard",
        "/cabinet/sites",
        f"/cabinet/sites/{site_id}",
        f"/cabinet/sites/{site_id}/units",
        f"/cabinet/dashboard?site={site_id}",
    ):
        assert_inert((await alice.get(path)).text)


async def test_a_hostile_query_string_is_not_reflected_raw(cabinet, hostile):
    alice = await cabinet.login("alice")
    for path in ("/cabinet/journal", "/cabinet/dashboard", "/cabinet/sites"):
        response = await alice.get(path, params={"lang": SCRIPT, "done": SCRIPT, "site": IMG, "page": SCRIPT})
        assert response.status_code == 200
        assert_inert(response.text)
    login = await cabinet.new_client().get("/cabinet/login", params={"next": '"><script>x</script>'})
    assert "<script>x" not in login.text


async def test_a_hostile_unknown_path_is_not_reflected_raw(cabinet):
    client = await cabinet.login("alice")
    response = await client.get("/cabinet/%22%3E%3Cscript%3Ewindow.__pwned=1%3C/script%3E")
    assert response.status_code == 404
    assert_inert(response.text)
    assert "content-security-policy" in response.headers
