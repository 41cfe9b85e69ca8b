"""Journal search over the indexes of migration 0004, one function per filter, per database.

Both databases answer the same question: does the text a visitor typed (field and custom field
values, tags) or the phone contain the needle, in any script, whatever the case. SQLite asks an FTS5
trigram table (case folded in every script by the tokenizer); PostgreSQL asks ``pg_trgm`` GIN indexes
on text lowered by the trigger. Needles shorter than a trigram cannot use either index and scan the
search table instead: correct, but they cost what the table holds.
"""

from __future__ import annotations

from sqlalchemy import Integer, Select, String, column, func, literal_column, select, table
from sqlalchemy.sql.elements import ColumnElement

from .tables import callback_requests, request_tags

TRIGRAM = 3

# SQLite: FTS5 (rowid = request id).
_fts = table("request_search", column("rowid", Integer), column("phone", String), column("body", String))
_fts_match = literal_column("request_search").op("MATCH", is_comparison=True)
# PostgreSQL: the lowered phone and text per request.
_pg_search = table("request_search", column("request_id", Integer), column("site_id", Integer), column("body", String))

_id = callback_requests.c.id


def text_matches(needle: str, *, sqlite: bool) -> ColumnElement[bool]:
    """Requests whose fields, tags or phone contain ``needle``, case-insensitively."""
    if sqlite:
        if len(needle) >= TRIGRAM:
            return _id.in_(select(_fts.c.rowid).where(_fts_match(_fts_phrase(needle))))
        pattern = _case_glob(needle)
        glob = _fts.c.body.op("GLOB", is_comparison=True)(pattern) | _fts.c.phone.op("GLOB", is_comparison=True)(
            pattern
        )
        return _id.in_(select(_fts.c.rowid).where(glob))
    return _id.in_(_pg_text(needle).with_only_columns(_pg_search.c.request_id))


def phone_contains(part: str, *, sqlite: bool) -> ColumnElement[bool]:
    """Requests whose phone contains ``part`` (digits as typed)."""
    if sqlite and len(part) >= TRIGRAM:
        return _id.in_(select(_fts.c.rowid).where(_fts_match("phone : " + _fts_phrase(part))))
    # PostgreSQL's trigram index on the phone serves LIKE directly; short parts scan either way.
    return callback_requests.c.phone.like(_like_pattern(part), escape="\\")


def has_tag(tag: str) -> ColumnElement[bool]:
    """Requests carrying exactly this tag."""
    return _id.in_(select(request_tags.c.request_id).where(request_tags.c.tag == tag))


def matches_by_site(*, needle: str | None = None, tag: str | None = None, sqlite: bool) -> Select | None:
    """The (request_id, site_id) rows matching one text filter, from its own index alone, for counting
    without reading the requests; None where the requests' own plan is as cheap (SQLite's q: its
    planner already drives the count from the FTS matches)."""
    if tag is not None:
        return select(request_tags.c.request_id, request_tags.c.site_id).where(request_tags.c.tag == tag)
    if needle is not None and not sqlite:
        return _pg_text(needle)
    return None


def _pg_text(needle: str) -> Select:
    # The body holds the phone too: one trigram index answers, never an OR the planner would scan for.
    pattern = func.lower(_like_pattern(needle))
    return select(_pg_search.c.request_id, _pg_search.c.site_id).where(_pg_search.c.body.like(pattern, escape="\\"))


def _fts_phrase(needle: str) -> str:
    """One FTS5 phrase: the needle as a literal string (double quotes doubled), never query syntax."""
    return '"' + needle.replace('"', '""') + '"'


def _like_pattern(needle: str) -> str:
    escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _case_glob(needle: str) -> str:
    """A GLOB pattern (case-sensitive by nature) that matches ``needle`` in any case: ``*[иИ][вВ]*``."""
    parts = []
    for char in needle:
        variants = {char, char.lower(), char.upper()}
        variants = {v for v in variants if len(v) == 1}
        if len(variants) > 1:
            parts.append("[" + "".join(sorted(variants)) + "]")
        elif char in "*?[":
            parts.append(f"[{char}]")
        else:
            parts.append(char)
    return "*" + "".join(parts) + "*"
