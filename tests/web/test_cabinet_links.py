"""DESIGN §5: every cabinet page is reachable by GET links from the journal, and no GET changes anything."""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

from sqlalchemy import select

from perezvon.services.accounts import Principal, create_token
from perezvon.store.tables import metadata

HREF = re.compile(r'href="([^"#]+)"')


async def _everything(db) -> dict[str, list]:  # type: ignore[no-untyped-def]
    async with db.read() as conn:
        return {
            table.name: sorted(map(repr, (await conn.execute(select(table))).all())) for table in metadata.sorted_tables
        }


async def test_every_page_is_linked_and_gets_change_nothing(cabinet):
    await cabinet.account("alice")
    site = await cabinet.site("alice")
    await cabinet.widget("alice", site["id"])
    unit = await cabinet.unit("alice", site["id"])
    await cabinet.state.catalog.add_blacklist(Principal(cabinet.accounts["alice"]), site["id"], "79005550000")
    await cabinet.visitor_request(site, tags=["vip"], unit_id=unit["id"], session={"url": "https://x.example/"})
    await create_token(cabinet.state.db, cabinet.accounts["alice"], "CRM")
    alice = await cabinet.login("alice")
    before = await _everything(cabinet.state.db)

    seen: dict[str, int] = {}
    queue = ["/cabinet/journal"]
    while queue and len(seen) < 300:
        path = queue.pop(0)
        if path in seen:
            continue
        response = await alice.get(path)
        seen[path] = response.status_code
        if "text/html" not in response.headers.get("content-type", ""):
            continue
        for href in HREF.findall(response.text):
            target = urlsplit(urljoin(path, href.replace("&amp;", "&")))
            if target.netloc or not target.path.startswith("/cabinet/") or target.path.startswith("/cabinet/static/"):
                continue
            if "lang=" in (target.query or ""):
                continue  # the language switch sets a cookie: a preference, not data
            queue.append(target.path + (f"?{target.query}" if target.query else ""))

    assert {p: s for p, s in seen.items() if s != 200} == {}
    reached = {re.sub(r"\d+", "N", urlsplit(p).path) for p in seen}
    assert reached >= {
        "/cabinet/journal",
        "/cabinet/journal.csv",
        "/cabinet/requests/N",
        "/cabinet/dashboard",
        "/cabinet/sites",
        "/cabinet/sites/new",
        "/cabinet/sites/N",
        "/cabinet/sites/N/edit",
        "/cabinet/sites/N/widgets/new",
        "/cabinet/widgets/N",
        "/cabinet/sites/N/units",
        "/cabinet/sites/N/blacklist",
        "/cabinet/tokens",
    }
    assert await _everything(cabinet.state.db) == before
