"""The cabinet journal pages by cursor (newer / older links) and shows a capped total as such."""

from __future__ import annotations

import re

from perezvon.services import journal as journal_module
from web.test_cabinet_csv import _bulk_requests

ROW_ID = re.compile(r'href="/cabinet/requests/(\d+)"')


def _ids(html: str) -> list[int]:
    return list(dict.fromkeys(int(i) for i in ROW_ID.findall(html)))


def _link(html: str, rel: str) -> str | None:
    match = re.search(rf'<a href="([^"]+)" rel="{rel}"', html)
    return match.group(1).replace("&amp;", "&") if match else None


async def test_older_and_newer_links_walk_the_journal_by_cursor(cabinet):
    await cabinet.account("alice")
    site = await cabinet.site("alice")
    await _bulk_requests(cabinet, site["id"], 120)
    alice = await cabinet.login("alice")
    first = (await alice.get("/cabinet/journal")).text
    assert _link(first, "prev") is None and "before=" in (_link(first, "next") or "")
    seen = _ids(first)
    page = first
    while (older := _link(page, "next")) is not None:
        page = (await alice.get(older)).text
        seen += _ids(page)
    assert len(seen) == 120 and seen == sorted(seen, reverse=True)
    newer = _link(page, "prev")
    assert newer and "after=" in newer
    assert _ids((await alice.get(newer)).text) == seen[50:100]
    # A cursor past any 64-bit id is just "older than everything newer", never a database error.
    huge = await alice.get("/cabinet/journal", params={"before": "9" * 30})
    assert huge.status_code == 200 and _ids(huge.text) == seen[:50]


async def test_a_total_past_the_cap_is_shown_as_more_than(cabinet, monkeypatch):
    await cabinet.account("alice")
    site = await cabinet.site("alice")
    await _bulk_requests(cabinet, site["id"], 8)
    alice = await cabinet.login("alice")
    assert '<span class="count">8</span>' in (await alice.get("/cabinet/journal")).text
    monkeypatch.setattr(journal_module, "TOTAL_CAP", 3)
    html = (await alice.get("/cabinet/journal", params={"q": "иван"})).text
    assert '<span class="count">more than 3</span>' in html
