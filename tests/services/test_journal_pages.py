"""Journal paging: keyset cursors (``before``/``after``) beside ``offset``, newest first, and an
export that reads every matching request in batches by id."""

from __future__ import annotations

from perezvon.services.journal import JournalFilter


async def walk(book, flt: JournalFilter, limit: int, **start) -> list[list[int]]:  # type: ignore[no-untyped-def]
    """Pages from ``start`` towards the oldest, following ``older``."""
    pages, cursor = [], start
    while True:
        page = await book.journal.page(book.alice, flt, limit=limit, **cursor)
        pages.append([r["id"] for r in page.rows])
        if page.older is None:
            return pages
        cursor = {"before": page.older}


async def test_before_cursors_walk_every_request_once_newest_first(book):
    ids = [await book.request() for _ in range(11)]
    await book.request("bobs")  # another tenant's: never on alice's pages
    pages = await walk(book, JournalFilter(), 4)
    assert pages == [ids[:-5:-1], ids[-5:-9:-1], ids[-9::-1]]


async def test_after_cursors_walk_back_to_the_newest(book):
    ids = [await book.request() for _ in range(7)]
    page = await book.journal.page(book.alice, JournalFilter(), limit=3, before=ids[1])
    assert [r["id"] for r in page.rows] == [ids[0]] and page.older is None and page.newer == ids[0]
    page = await book.journal.page(book.alice, JournalFilter(), limit=3, after=page.newer)
    assert [r["id"] for r in page.rows] == ids[3:0:-1] and page.newer == ids[3] and page.older == ids[1]
    page = await book.journal.page(book.alice, JournalFilter(), limit=3, after=page.newer)
    assert [r["id"] for r in page.rows] == ids[6:3:-1] and page.newer is None


async def test_cursors_keep_the_filter(book):
    hot = [await book.request(tags=["hot"] if i % 3 == 0 else []) for i in range(10)]
    wanted = [rid for i, rid in enumerate(hot) if i % 3 == 0]
    pages = await walk(book, JournalFilter(tag="hot"), 2)
    assert [rid for p in pages for rid in p] == wanted[::-1]


async def test_offset_still_pages_and_says_where_newer_rows_are(book):
    ids = [await book.request() for _ in range(5)]
    page = await book.journal.page(book.alice, JournalFilter(), limit=2, offset=2)
    assert [r["id"] for r in page.rows] == [ids[2], ids[1]]
    assert (page.newer, page.older) == (ids[2], ids[1])
    first = await book.journal.page(book.alice, JournalFilter(), limit=2)
    assert first.newer is None and first.total == 5 and first.total_exact


async def test_an_empty_journal_has_no_cursors(book):
    page = await book.journal.page(book.alice, JournalFilter())
    assert (page.rows, page.total, page.older, page.newer) == ([], 0, None, None)


async def test_the_export_reads_every_match_in_batches(book):
    ids = [await book.request(fields=[{"name": "n", "value": "Иван" if i % 2 else "x"}]) for i in range(23)]
    batches = [batch async for batch in book.journal.export(book.alice, JournalFilter(search="иван"), batch=4)]
    assert [len(rows) for rows, _ in batches] == [4, 4, 3]
    assert [r["id"] for rows, _ in batches for r in rows] == [rid for i, rid in enumerate(ids) if i % 2][::-1]


async def test_the_admin_api_pages_by_cursor_beside_offset(app_client, admin):  # type: ignore[no-untyped-def]
    from api.helpers import create

    site, _ = await admin.site_with_widget()
    for i in range(5):
        await create(app_client, site["siteKey"], phone=f"7900123450{i}", fields=[{"name": "Имя", "value": f"Иван{i}"}])
    first = await admin.get("/requests", limit=2, q="иван")
    assert [r["phone"] for r in first["items"]] == ["79001234504", "79001234503"]
    assert first["total"] == 5 and first["totalExact"] is True and first["prevAfter"] is None
    second = await admin.get("/requests", limit=2, q="иван", before=first["nextBefore"])
    assert [r["phone"] for r in second["items"]] == ["79001234502", "79001234501"]
    last = await admin.get("/requests", limit=2, q="иван", before=second["nextBefore"])
    assert [r["phone"] for r in last["items"]] == ["79001234500"] and last["nextBefore"] is None
    back = await admin.get("/requests", limit=2, q="иван", after=last["prevAfter"])
    assert back["items"] == second["items"]
    both = await app_client.get("/api/admin/v1/requests", params={"before": 3, "after": 1}, headers=admin.headers)
    assert both.status_code == 400 and both.json()["type"] == "validation_error"
    huge = await app_client.get("/api/admin/v1/requests", params={"before": 2**70}, headers=admin.headers)
    assert huge.status_code == 400 and huge.json()["type"] == "validation_error"
