"""journal at scale: search indexes, tag index, per-site slot aggregates, sites(account_id) index

Revision ID: 0004
Revises: 0007
Create Date: 2026-12-01 12:00:00

Search. Fields are stored as JSON text with non-ASCII escaped (``"\\u0418\\u0432..."``), and SQLite's
``lower()`` folds only ASCII, so a plain ``LIKE`` never finds Cyrillic. Triggers keep a decoded copy
of what a visitor typed (field and custom field values, tags) beside the phone, whoever writes the row:
- SQLite: an FTS5 table ``request_search(phone, body)`` (rowid = request id) with the trigram
  tokenizer, which folds case in every script and answers substring queries of 3+ characters from
  its index.
- PostgreSQL: ``request_search(request_id, site_id, body)``: ``body`` is the phone and the text,
  lowered, under one ``pg_trgm`` GIN index (so ``q`` is one index scan, not an OR the planner would
  scan for), and a ``pg_trgm`` index on the phone for the phone filter.
- Both: tags as rows of ``request_tags(tag, site_id, request_id)``: an exact tag and its count are a
  b-tree range (a ``jsonb`` GIN index answered too, but its matches came back as a bitmap the planner
  read with a scan of the whole table once a tag was common).
  ``lower()`` follows the database's ctype: the migration refuses a database whose ctype does not fold
  Cyrillic (``C``/``POSIX``), as search would silently miss there.

Aggregates. ``request_stats`` counts, per site and 15-minute slot (UTC, epoch seconds) of the
requests' creation: requests, completed, finished (completed + failed), billed seconds of their
attempts, and in ``wait_<i>`` the requests whose first answered attempt came within fixed wait bucket
i of the due time. Triggers on ``callback_requests`` and ``call_attempts`` change them in the writing
transaction, whatever code path writes; a 15-minute slot is the finest step of any time zone's offset,
so the dashboard sums slots into calendar days of any zone exactly. Existing rows are backfilled here.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0007"
branch_labels = None
depends_on = None

SLOT_S = 900
# Upper bounds (seconds, exclusive) of the wait buckets; the last bucket is open. Must match
# perezvon.store.tables.WAIT_EDGES (a test checks).
WAIT_EDGES = (10, 20, 30, 45, 60, 90, 120, 180, 300, 600, 1800, 3600, 7200, 21600, 86400)
WAITS = [f"wait_{i}" for i in range(len(WAIT_EDGES) + 1)]


def _bucket_case(seconds: str) -> str:
    whens = " ".join(f"WHEN {seconds} < {edge} THEN {i}" for i, edge in enumerate(WAIT_EDGES))
    return f"CASE {whens} ELSE {len(WAIT_EDGES)} END"


def upgrade() -> None:
    op.create_index("ix_sites_account_id", "sites", ["account_id"])
    id_type = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "request_stats",
        sa.Column("site_id", id_type, sa.ForeignKey("sites.id", ondelete="CASCADE"), nullable=False),
        sa.Column("slot", sa.BigInteger(), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("completed", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("finished", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("billed_seconds", sa.BigInteger(), nullable=False, server_default="0"),
        *[sa.Column(name, sa.Integer(), nullable=False, server_default="0") for name in WAITS],
        sa.PrimaryKeyConstraint("site_id", "slot", name="pk_request_stats"),
    )
    # Tags as rows on both databases: an exact tag is a range of one b-tree, and so is its count.
    op.create_table(
        "request_tags",
        sa.Column("tag", sa.Text(), nullable=False),
        sa.Column("site_id", id_type, nullable=False),
        sa.Column("request_id", id_type, sa.ForeignKey("callback_requests.id", ondelete="CASCADE"), nullable=False),
        sa.PrimaryKeyConstraint("tag", "site_id", "request_id", name="pk_request_tags"),
    )
    op.create_index("ix_request_tags_request_id", "request_tags", ["request_id"])
    if op.get_bind().dialect.name == "postgresql":
        _upgrade_postgresql()
    else:
        _upgrade_sqlite()


# -- SQLite -------------------------------------------------------------------------------------------------

SQLITE_SLOT = f"((CAST(strftime('%s', {{t}}) AS INTEGER) / {SLOT_S}) * {SLOT_S})"
# SQLite's JSON functions end a string at an escaped NUL: read those as spaces (the swap keeps the
# JSON valid even inside an escaped backslash: a literal "\\u0000" becomes "\\u0020").
SQLITE_JSON = "replace({r}.{c}, '\\u0000', '\\u0020')"
SQLITE_BODY = """(
    coalesce((SELECT group_concat(value, ' ') FROM json_tree({fields}) WHERE key = 'value'), '') || ' ' ||
    coalesce((SELECT group_concat(value, ' ') FROM json_tree({custom}) WHERE key = 'value'), '') || ' ' ||
    coalesce((SELECT group_concat(value, ' ') FROM json_each({tags})), '')
)""".format(
    fields=SQLITE_JSON.format(r="{r}", c="fields"),
    custom=SQLITE_JSON.format(r="{r}", c="custom_fields"),
    tags=SQLITE_JSON.format(r="{r}", c="tags"),
)


def _sqlite_stats_upsert(r: str, requests: str, completed: str, finished: str, billed: str) -> str:
    return f"""
        INSERT INTO request_stats (site_id, slot, requests, completed, finished, billed_seconds)
        VALUES ({r}.site_id, {SQLITE_SLOT.format(t=r + ".created_at")}, {requests}, {completed}, {finished}, {billed})
        ON CONFLICT (site_id, slot) DO UPDATE SET
            requests = requests + excluded.requests, completed = completed + excluded.completed,
            finished = finished + excluded.finished, billed_seconds = billed_seconds + excluded.billed_seconds;
    """


def _wait_upsert(seconds: str, slot: str, conflict_prefix: str) -> str:
    """Count NEW (an attempt) in its request's wait bucket when no other attempt of it was answered."""
    flags = ", ".join(f"CASE WHEN b = {i} THEN 1 ELSE 0 END" for i in range(len(WAITS)))
    adds = ", ".join(f"{w} = {conflict_prefix}{w} + excluded.{w}" for w in WAITS)
    return f"""
        INSERT INTO request_stats (site_id, slot, {", ".join(WAITS)})
        SELECT site_id, slot, {flags} FROM (
            SELECT r.site_id AS site_id, {slot} AS slot, {_bucket_case(seconds)} AS b
            FROM callback_requests AS r
            WHERE r.id = NEW.request_id AND NOT EXISTS (
                SELECT 1 FROM call_attempts AS a
                WHERE a.request_id = NEW.request_id AND a.id <> NEW.id AND a.client_answered_at IS NOT NULL)
        ) AS answer WHERE true
        ON CONFLICT (site_id, slot) DO UPDATE SET {adds};
    """


def _sqlite_wait_upsert() -> str:
    seconds = "max(0.0, round((julianday(NEW.client_answered_at) - julianday(r.due_at)) * 86400.0, 3))"
    return _wait_upsert(seconds, SQLITE_SLOT.format(t="r.created_at"), "")


def _sqlite_billed(delta: str) -> str:
    return f"""
        INSERT INTO request_stats (site_id, slot, billed_seconds)
        SELECT r.site_id, {SQLITE_SLOT.format(t="r.created_at")}, {delta}
        FROM callback_requests AS r WHERE r.id = NEW.request_id
        ON CONFLICT (site_id, slot) DO UPDATE SET billed_seconds = billed_seconds + excluded.billed_seconds;
    """


def _upgrade_sqlite() -> None:
    op.execute("CREATE VIRTUAL TABLE request_search USING fts5(phone, body, tokenize = 'trigram')")
    is_done = "(NEW.status = 'completed')"
    is_finished = "(NEW.status IN ('completed', 'failed'))"
    was_done = "(OLD.status = 'completed')"
    was_finished = "(OLD.status IN ('completed', 'failed'))"
    op.execute(
        f"""
        CREATE TRIGGER callback_requests_journal_insert AFTER INSERT ON callback_requests BEGIN
            INSERT INTO request_search (rowid, phone, body) VALUES (NEW.id, NEW.phone, {SQLITE_BODY.format(r="NEW")});
            INSERT OR IGNORE INTO request_tags (tag, site_id, request_id)
                SELECT value, NEW.site_id, NEW.id FROM json_each(NEW.tags) WHERE type = 'text';
            {_sqlite_stats_upsert("NEW", "1", is_done, is_finished, "0")}
        END
        """
    )
    op.execute(
        f"""
        CREATE TRIGGER callback_requests_journal_status AFTER UPDATE OF status ON callback_requests
        WHEN OLD.status IS NOT NEW.status BEGIN
            {_sqlite_stats_upsert("NEW", "0", f"{is_done} - {was_done}", f"{is_finished} - {was_finished}", "0")}
        END
        """
    )
    op.execute(
        f"""
        CREATE TRIGGER callback_requests_journal_text AFTER UPDATE OF phone, fields, custom_fields, tags
        ON callback_requests BEGIN
            DELETE FROM request_search WHERE rowid = OLD.id;
            INSERT INTO request_search (rowid, phone, body) VALUES (NEW.id, NEW.phone, {SQLITE_BODY.format(r="NEW")});
            DELETE FROM request_tags WHERE request_id = OLD.id;
            INSERT OR IGNORE INTO request_tags (tag, site_id, request_id)
                SELECT value, NEW.site_id, NEW.id FROM json_each(NEW.tags) WHERE type = 'text';
        END
        """
    )
    # Requests go only with their site, whose aggregates go with it (ON DELETE CASCADE); the search
    # table is virtual, without foreign keys, so it is cleaned here.
    op.execute(
        """
        CREATE TRIGGER callback_requests_journal_delete AFTER DELETE ON callback_requests BEGIN
            DELETE FROM request_search WHERE rowid = OLD.id;
        END
        """
    )
    op.execute(
        f"""
        CREATE TRIGGER call_attempts_journal_insert AFTER INSERT ON call_attempts BEGIN
            {_sqlite_billed("NEW.billed_seconds")}
        END
        """
    )
    op.execute(
        f"""
        CREATE TRIGGER call_attempts_journal_answer AFTER INSERT ON call_attempts
        WHEN NEW.client_answered_at IS NOT NULL BEGIN
            {_sqlite_wait_upsert()}
        END
        """
    )
    op.execute(
        f"""
        CREATE TRIGGER call_attempts_journal_billed AFTER UPDATE OF billed_seconds ON call_attempts
        WHEN OLD.billed_seconds IS NOT NEW.billed_seconds BEGIN
            {_sqlite_billed("NEW.billed_seconds - OLD.billed_seconds")}
        END
        """
    )
    op.execute(
        f"""
        CREATE TRIGGER call_attempts_journal_answered AFTER UPDATE OF client_answered_at ON call_attempts
        WHEN OLD.client_answered_at IS NULL AND NEW.client_answered_at IS NOT NULL BEGIN
            {_sqlite_wait_upsert()}
        END
        """
    )
    op.execute(
        f"""
        INSERT INTO request_search (rowid, phone, body)
        SELECT NEW.id, NEW.phone, {SQLITE_BODY.format(r="NEW")} FROM callback_requests AS NEW
        """
    )
    op.execute(
        """
        INSERT OR IGNORE INTO request_tags (tag, site_id, request_id)
        SELECT t.value, r.site_id, r.id FROM callback_requests AS r, json_each(r.tags) AS t WHERE t.type = 'text'
        """
    )
    _backfill(
        SQLITE_SLOT.format(t="r.created_at"),
        "max(0.0, round((julianday(a.client_answered_at) - julianday(r.due_at)) * 86400.0, 3))",
    )


# -- PostgreSQL ---------------------------------------------------------------------------------------------

PG_SLOT = f"(floor(extract(epoch FROM {{t}}) / {SLOT_S})::bigint * {SLOT_S})"


def _upgrade_postgresql() -> None:
    bind = op.get_bind()
    if not bind.execute(sa.text("SELECT lower('ЖЁ') = 'жё'")).scalar():
        raise RuntimeError(
            "this PostgreSQL database's LC_CTYPE does not fold Cyrillic case (C or POSIX?): journal search "
            "would miss. Create the database with a UTF-8 locale (e.g. LC_CTYPE 'C.UTF-8') and migrate again."
        )
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute(
        """
        CREATE TABLE request_search (
            request_id BIGINT PRIMARY KEY REFERENCES callback_requests (id) ON DELETE CASCADE,
            site_id BIGINT NOT NULL,
            body TEXT NOT NULL
        )
        """
    )
    # Text that json cannot turn into text (a NUL escape, a lone surrogate) must not make the write
    # fail: such a row is searchable by its raw JSON text instead.
    op.execute(
        """
        CREATE FUNCTION perezvon_search_row(r callback_requests) RETURNS void LANGUAGE plpgsql AS $$
        DECLARE
            body text;
            tags text[];
        BEGIN
            BEGIN
                body := concat_ws(' ', r.phone,
                    (SELECT string_agg(e ->> 'value', ' ') FROM json_array_elements(r.fields) AS e),
                    (SELECT string_agg(e ->> 'value', ' ') FROM json_array_elements(r.custom_fields) AS e),
                    (SELECT string_agg(t, ' ') FROM json_array_elements_text(r.tags) AS t));
                tags := ARRAY(SELECT DISTINCT t FROM json_array_elements_text(r.tags) AS t);
            EXCEPTION WHEN others THEN
                body := concat_ws(' ', r.phone, r.fields::text, r.custom_fields::text, r.tags::text);
                tags := ARRAY[]::text[];
            END;
            INSERT INTO request_search (request_id, site_id, body) VALUES (r.id, r.site_id, lower(body))
            ON CONFLICT (request_id) DO UPDATE SET body = excluded.body;
            DELETE FROM request_tags WHERE request_id = r.id;
            INSERT INTO request_tags (tag, site_id, request_id) SELECT t, r.site_id, r.id FROM unnest(tags) AS t;
        END $$
        """
    )
    op.execute(
        f"""
        CREATE FUNCTION perezvon_stats_add(site bigint, created timestamp, n int, done int, fin int, billed bigint)
        RETURNS void LANGUAGE sql AS $$
            INSERT INTO request_stats (site_id, slot, requests, completed, finished, billed_seconds)
            VALUES (site, {PG_SLOT.format(t="created")}, n, done, fin, billed)
            ON CONFLICT (site_id, slot) DO UPDATE SET
                requests = request_stats.requests + excluded.requests,
                completed = request_stats.completed + excluded.completed,
                finished = request_stats.finished + excluded.finished,
                billed_seconds = request_stats.billed_seconds + excluded.billed_seconds
        $$
        """
    )
    op.execute(
        """
        CREATE FUNCTION perezvon_journal_request() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'INSERT' THEN
                PERFORM perezvon_search_row(NEW);
                PERFORM perezvon_stats_add(NEW.site_id, NEW.created_at, 1,
                    (NEW.status = 'completed')::int, (NEW.status IN ('completed', 'failed'))::int, 0);
                RETURN NULL;
            END IF;
            IF NEW.status IS DISTINCT FROM OLD.status THEN
                PERFORM perezvon_stats_add(NEW.site_id, NEW.created_at, 0,
                    (NEW.status = 'completed')::int - (OLD.status = 'completed')::int,
                    (NEW.status IN ('completed', 'failed'))::int - (OLD.status IN ('completed', 'failed'))::int,
                    0);
            END IF;
            IF (NEW.phone, NEW.fields::text, NEW.custom_fields::text, NEW.tags::text)
                IS DISTINCT FROM (OLD.phone, OLD.fields::text, OLD.custom_fields::text, OLD.tags::text) THEN
                PERFORM perezvon_search_row(NEW);
            END IF;
            RETURN NULL;
        END $$
        """
    )
    seconds = "greatest(0, extract(epoch FROM NEW.client_answered_at - r.due_at))"
    op.execute(
        f"""
        CREATE FUNCTION perezvon_journal_attempt() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            req record;
        BEGIN
            SELECT site_id, created_at INTO req FROM callback_requests WHERE id = NEW.request_id;
            IF NOT FOUND THEN
                RETURN NULL;
            END IF;
            IF TG_OP = 'INSERT' OR NEW.billed_seconds IS DISTINCT FROM OLD.billed_seconds THEN
                PERFORM perezvon_stats_add(req.site_id, req.created_at, 0, 0, 0,
                    NEW.billed_seconds - CASE WHEN TG_OP = 'INSERT' THEN 0 ELSE OLD.billed_seconds END);
            END IF;
            IF NEW.client_answered_at IS NOT NULL AND (TG_OP = 'INSERT' OR OLD.client_answered_at IS NULL) THEN
                {_wait_upsert(seconds, PG_SLOT.format(t="r.created_at"), "request_stats.")}
            END IF;
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER callback_requests_journal
        AFTER INSERT OR UPDATE OF status, phone, fields, custom_fields, tags ON callback_requests
        FOR EACH ROW EXECUTE FUNCTION perezvon_journal_request()
        """
    )
    op.execute(
        """
        CREATE TRIGGER call_attempts_journal AFTER INSERT OR UPDATE OF billed_seconds, client_answered_at
        ON call_attempts FOR EACH ROW EXECUTE FUNCTION perezvon_journal_attempt()
        """
    )
    # Every write updates one of request_stats' few rows: leave room on each page so the updates stay
    # HOT and prunable, and vacuum it after a few thousand of them rather than after 20 % of the table
    # (a bulk load of 100,000 requests left 34 MB of dead rows under 11,500 live ones: 157 ms per sum).
    op.execute(
        "ALTER TABLE request_stats SET (fillfactor = 50, autovacuum_vacuum_scale_factor = 0, "
        "autovacuum_vacuum_threshold = 5000, autovacuum_analyze_scale_factor = 0, autovacuum_analyze_threshold = 5000)"
    )
    op.execute("SELECT perezvon_search_row(r) FROM callback_requests AS r")
    op.execute("CREATE INDEX ix_request_search_body ON request_search USING gin (body gin_trgm_ops)")
    op.execute("CREATE INDEX ix_request_search_site ON request_search (site_id)")
    op.execute("CREATE INDEX ix_callback_requests_phone_trgm ON callback_requests USING gin (phone gin_trgm_ops)")
    _backfill(PG_SLOT.format(t="r.created_at"), "greatest(0, extract(epoch FROM a.client_answered_at - r.due_at))")


def _backfill(slot: str, seconds: str) -> None:
    """Aggregates of the rows already there, as the triggers would have counted them."""
    waits = ", ".join(f"sum(CASE WHEN w.b = {i} THEN 1 ELSE 0 END)" for i in range(len(WAITS)))
    op.execute(
        f"""
        INSERT INTO request_stats (site_id, slot, requests, completed, finished, billed_seconds, {", ".join(WAITS)})
        SELECT r.site_id, {slot}, count(*),
               sum(CASE WHEN r.status = 'completed' THEN 1 ELSE 0 END),
               sum(CASE WHEN r.status IN ('completed', 'failed') THEN 1 ELSE 0 END),
               coalesce(sum(billed.seconds), 0), {waits}
        FROM callback_requests AS r
        LEFT JOIN (SELECT request_id, sum(billed_seconds) AS seconds FROM call_attempts GROUP BY request_id)
            AS billed ON billed.request_id = r.id
        LEFT JOIN (
            SELECT a.request_id, {_bucket_case(seconds)} AS b
            FROM call_attempts AS a JOIN callback_requests AS r ON r.id = a.request_id
            WHERE a.client_answered_at IS NOT NULL AND NOT EXISTS (
                SELECT 1 FROM call_attempts AS e
                WHERE e.request_id = a.request_id AND e.client_answered_at IS NOT NULL AND e.number < a.number)
        ) AS w ON w.request_id = r.id
        GROUP BY r.site_id, {slot}
        """
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS call_attempts_journal ON call_attempts")
        op.execute("DROP TRIGGER IF EXISTS callback_requests_journal ON callback_requests")
        op.execute("DROP FUNCTION IF EXISTS perezvon_journal_attempt()")
        op.execute("DROP FUNCTION IF EXISTS perezvon_journal_request()")
        op.execute("DROP FUNCTION IF EXISTS perezvon_stats_add(bigint, timestamp, int, int, int, bigint)")
        op.execute("DROP TABLE IF EXISTS request_search")
        op.execute("DROP FUNCTION IF EXISTS perezvon_search_row(callback_requests)")
        op.execute("DROP INDEX IF EXISTS ix_callback_requests_phone_trgm")
    else:
        for trigger in (
            "callback_requests_journal_insert",
            "callback_requests_journal_status",
            "callback_requests_journal_text",
            "callback_requests_journal_delete",
            "call_attempts_journal_insert",
            "call_attempts_journal_answer",
            "call_attempts_journal_billed",
            "call_attempts_journal_answered",
        ):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS request_search")
    op.drop_table("request_tags")
    op.drop_table("request_stats")
    op.drop_index("ix_sites_account_id", table_name="sites")
