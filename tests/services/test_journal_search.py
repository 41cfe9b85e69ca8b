"""Journal search: ``q`` finds any field, custom field, tag or phone, in any script and case, from
the indexes the store keeps in step (FTS5 trigram on SQLite, pg_trgm on PostgreSQL)."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from perezvon.services import journal as journal_module
from perezvon.services.journal import JournalFilter
from perezvon.store.tables import callback_requests


def name(value: str, label: str = "Name") -> list[dict[str, str]]:
    return [{"name": label, "value": value}]


async def found(book, who=None, **flt) -> list[int]:  # type: ignore[no-untyped-def]
    page = await book.journal.page(who or book.alice, JournalFilter(**flt), limit=500)
    return sorted(r["id"] for r in page.rows)


@pytest.fixture
async def people(book):  # type: ignore[no-untyped-def]
    return {
        "ivan": await book.request(fields=name("Иван Петров"), phone="79161234567", tags=["ВИП", "hot"]),
        "john": await book.request(fields=name("John SMITH"), custom_fields=name("Ёжик в тумане", "note")),
        "mixed": await book.request(fields=name("Мария Smith-Иванова"), tags=["Cold lead"]),
        "blog": await book.request("blog", fields=name("Пётр"), phone="79035550011"),
        "bobs": await book.request("bobs", fields=name("Иван Боб"), tags=["ВИП"]),
    }


@pytest.mark.parametrize(
    ("needle", "expected"),
    [
        ("иван", {"ivan", "mixed"}),  # Cyrillic, any case, inside a word too (Иванова)
        ("ИВАН", {"ivan", "mixed"}),
        ("иВаН пЕтРоВ", {"ivan"}),
        ("smith", {"john", "mixed"}),  # Latin
        ("SmItH-и", {"mixed"}),  # mixed scripts in one needle
        ("ёжик", {"john"}),  # custom fields, ё
        ("ЁЖИК В ТУМАНЕ", {"john"}),
        ("вип", {"ivan"}),  # tags are text too
        ("cold LEAD", {"mixed"}),
        ("1234567", {"ivan"}),  # phone parts
        ("555", {"blog"}),
        ("пётр", {"blog"}),
        ("nobody", set()),
    ],
)
async def test_q_finds_fields_tags_and_phones_in_any_script_and_case(book, people, needle, expected):
    assert await found(book, search=needle) == sorted(people[k] for k in expected)


@pytest.mark.parametrize(
    ("needle", "expected"), [("ив", {"ivan", "mixed"}), ("Ё", {"john", "blog"}), ("S", {"john", "mixed"})]
)
async def test_needles_shorter_than_a_trigram_still_match_in_any_case(book, people, needle, expected):
    assert await found(book, search=needle) == sorted(people[k] for k in expected)


@pytest.mark.parametrize(
    "needle", ['"', '""', 'a"b', "%", "_", "\\", "*", "[", "иван*", "NEAR(a b)", "x AND y", "-", "'"]
)
async def test_query_syntax_in_a_needle_is_plain_text(book, people, needle):
    await book.request(fields=name(f"odd {needle} text"))
    assert len(await found(book, search=needle)) >= 1


async def test_percent_and_underscore_match_only_themselves(book, people):
    literal = await book.request(fields=name("50% off_now"))
    assert await found(book, search="50%") == [literal]
    assert await found(book, search="f_n") == [literal]
    assert await found(book, search="i_n") == []


async def test_phone_filter_matches_parts_of_the_number(book, people):
    assert await found(book, phone="9161234") == [people["ivan"]]
    assert await found(book, phone="0011") == [people["blog"]]
    assert await found(book, phone="67") == [people["ivan"]]  # short part
    assert await found(book, phone="иван") == []


async def test_tag_filter_matches_whole_tags_exactly(book, people):
    assert await found(book, tag="ВИП") == [people["ivan"]]
    assert await found(book, tag="hot") == [people["ivan"]]
    assert await found(book, tag="Cold lead") == [people["mixed"]]
    assert await found(book, tag="Cold") == []
    assert await found(book, tag="вип") == []  # a tag is a value, not text: exact, as before


async def test_filters_combine_and_stay_within_the_tenant(book, people):
    assert await found(book, search="иван", tag="ВИП") == [people["ivan"]]
    assert await found(book, search="иван", site_id=book.sites["shop"], phone="1234") == [people["ivan"]]
    assert await found(book, who=book.bob, search="иван") == [people["bobs"]]
    assert await found(book, who=book.bob, tag="ВИП") == [people["bobs"]]
    operator = type(book.alice)(account_id=None)
    assert await found(book, who=operator, tag="ВИП") == sorted([people["ivan"], people["bobs"]])


async def test_search_follows_changes_to_a_request(book, people):
    async with book.db.write() as conn:
        await conn.execute(
            update(callback_requests)
            .where(callback_requests.c.id == people["john"])
            .values(fields=name("Сергей"), tags=["новый"])
        )
    assert await found(book, search="smith") == [people["mixed"]]
    assert await found(book, search="серг") == [people["john"]]
    assert await found(book, tag="новый") == [people["john"]]


@pytest.mark.parametrize("value", ["\ud800 lone", "nul \x00 inside", "ctl \x1b\x07"])
async def test_text_json_cannot_decode_neither_breaks_the_write_nor_the_journal(book, people, value):
    odd = await book.request(fields=name(value), tags=["\ud800"] if "lone" in value else ["t"])
    assert odd in await found(book)
    assert odd in await found(book, search=value.split()[-1])
    row, _ = await book.journal.get(book.alice, odd)
    assert row["fields"][0]["value"] == value


async def test_totals_are_exact_up_to_the_cap_then_say_they_are_not(book, people, monkeypatch):
    for _ in range(4):
        await book.request(fields=name("Иван"))
    page = await book.journal.page(book.alice, JournalFilter(search="иван"))
    assert (page.total, page.total_exact) == (6, True)
    monkeypatch.setattr(journal_module, "TOTAL_CAP", 5)
    page = await book.journal.page(book.alice, JournalFilter(search="иван"), limit=2)
    assert (page.total, page.total_exact, len(page.rows)) == (5, False, 2)
    # Nothing but the site: the aggregates count every request exactly, however many.
    page = await book.journal.page(book.alice, JournalFilter(), limit=2)
    assert (page.total, page.total_exact) == (8, True)
    page = await book.journal.page(book.alice, JournalFilter(site_id=book.sites["blog"]), limit=2)
    assert (page.total, page.total_exact) == (1, True)
    assert (await book.journal.page(book.bob, JournalFilter(site_id=book.sites["shop"]))).total == 0
