"""The tables. Timestamps are stored as naive UTC and come back as aware UTC datetimes."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator

# Predictable constraint names so Alembic migrations read the same on SQLite and PostgreSQL.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# SQLite's INTEGER PRIMARY KEY is 64-bit already; BigInteger there would lose autoincrement.
Id = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where UTC was expected")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def _pk() -> Column:
    return Column("id", Id, primary_key=True, autoincrement=True)


def _created() -> Column:
    return Column("created_at", UTCDateTime(), nullable=False)


accounts = Table(
    "accounts",
    metadata,
    _pk(),
    Column("email", String(320), nullable=False, unique=True),
    Column("password_hash", String(255), nullable=True),
    Column("language", String(2), nullable=False, server_default="en"),
    _created(),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    _pk(),
    # NULL account: an operator token that reaches every account's sites.
    Column("account_id", ForeignKey("accounts.id", ondelete="CASCADE"), nullable=True),
    Column("name", String(100), nullable=False, server_default=""),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(12), nullable=False),
    Column("last_used_at", UTCDateTime(), nullable=True),
    _created(),
)

web_sessions = Table(
    "web_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("account_id", ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    _created(),
)

sites = Table(
    "sites",
    metadata,
    _pk(),
    Column("account_id", ForeignKey("accounts.id", ondelete="SET NULL"), nullable=True),
    Column("name", String(255), nullable=False),
    Column("site_key", String(64), nullable=False, unique=True),
    Column("allowed_origins", JSON(), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("minutes_balance", Integer(), nullable=False),
    Column("callback_active", Boolean(), nullable=False),
    Column("api_points_per_day", Integer(), nullable=False),
    Column("api_point_costs", JSON(), nullable=False),
    Column("non_working_policy", String(20), nullable=False, server_default="finish"),
    Column("trunk", JSON(), nullable=True),
    Column("record_calls", Boolean(), nullable=False, server_default="0"),
    Column("webhook_urls", JSON(), nullable=False),
    Column("webhook_secret", String(64), nullable=False),
    # Destinations (DESIGN §7): ISO 3166 alpha-2 codes its widgets may call (["*"]: any), and how many
    # requests one visitor's number may make per day across all its widgets (0: no cap).
    Column("allowed_countries", JSON(), nullable=False, server_default='["*"]'),
    Column("max_requests_per_number_per_day", Integer(), nullable=False, server_default="5"),
    _created(),
    Index("ix_sites_account_id", "account_id"),
)

units = Table(
    "units",
    metadata,
    _pk(),
    Column("site_id", ForeignKey("sites.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("name", String(255), nullable=False),
    Column("phone", String(20), nullable=False),
    _created(),
)

blacklist = Table(
    "blacklist",
    metadata,
    _pk(),
    Column("site_id", ForeignKey("sites.id", ondelete="CASCADE"), nullable=False),
    Column("phone", String(20), nullable=False),
    Column("comment", String(255), nullable=False, server_default=""),
    _created(),
    UniqueConstraint("site_id", "phone", name="uq_blacklist_site_phone"),
)

widgets = Table(
    "widgets",
    metadata,
    _pk(),
    Column("site_id", ForeignKey("sites.id", ondelete="CASCADE"), nullable=False),
    Column("route_key", String(255), nullable=False),
    Column("name", String(255), nullable=False, server_default=""),
    Column("enabled", Boolean(), nullable=False),
    Column("operator_phones", JSON(), nullable=False),
    Column("schedule_timezone", String(64), nullable=False),  # IANA name, or a fixed UTC+03:00
    Column("schedule_hours", JSON(), nullable=False),
    Column("collect_non_working", Boolean(), nullable=False),
    Column("throttle_user_timeout_s", Integer(), nullable=False),
    Column("throttle_max_per_phone", Integer(), nullable=False),
    Column("throttle_period_s", Integer(), nullable=False),
    Column("callback", JSON(), nullable=False),
    # The drop-in widget's look and display rules, and the page analytics events: camelCase like the API.
    # Keys a stored value lacks read as their defaults (shapes.schemas.WidgetUi / WidgetAnalytics).
    Column("ui", JSON(), nullable=False, server_default="{}"),
    Column("analytics", JSON(), nullable=False, server_default="{}"),
    Column("voicemail_detection", Boolean(), nullable=False, server_default="1"),
    Column("quiet_hours", JSON(), nullable=True),  # {"start": "21:00", "end": "09:00"}; NULL: none
    _created(),
    UniqueConstraint("site_id", "route_key", name="uq_widgets_site_route_key"),
)

tracking_sessions = Table(
    "tracking_sessions",
    metadata,
    _pk(),
    Column("site_id", ForeignKey("sites.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("landing_url", Text(), nullable=False, server_default=""),
    Column("referrer", Text(), nullable=False, server_default=""),
    Column("user_agent", Text(), nullable=False, server_default=""),
    Column("ip", String(45), nullable=False, server_default=""),
    Column("utm", JSON(), nullable=False),
    _created(),
)

callback_requests = Table(
    "callback_requests",
    metadata,
    _pk(),
    Column("site_id", ForeignKey("sites.id", ondelete="CASCADE"), nullable=False),
    Column("widget_id", ForeignKey("widgets.id", ondelete="SET NULL"), nullable=True),
    Column("route_key", String(255), nullable=False),
    Column("phone", String(20), nullable=False),
    Column("fields", JSON(), nullable=False),
    Column("custom_fields", JSON(), nullable=False),
    Column("tags", JSON(), nullable=False),
    Column("unit_id", ForeignKey("units.id", ondelete="SET NULL"), nullable=True),
    Column("schedule_time", String(19), nullable=True),
    Column("due_at", UTCDateTime(), nullable=False),
    Column("session_id", ForeignKey("tracking_sessions.id", ondelete="SET NULL"), nullable=True),
    Column("source", String(10), nullable=False),  # js | api | admin
    Column("call_url", Text(), nullable=True),
    Column("utm", JSON(), nullable=False),
    Column("status", String(12), nullable=False),
    Column("attempts_made", Integer(), nullable=False, server_default="0"),
    Column("next_attempt_at", UTCDateTime(), nullable=True),
    Column("claimed_by", String(64), nullable=True),
    Column("claimed_until", UTCDateTime(), nullable=True),
    Column("finished_at", UTCDateTime(), nullable=True),
    # Unguessable: lets the visitor's page read this one request's status (public request-status), nothing else.
    Column("status_token", String(32), nullable=True),
    Column("updated_at", UTCDateTime(), nullable=False),
    _created(),
    Index("ix_callback_requests_site_created", "site_id", "created_at"),
    Index("ix_callback_requests_due", "status", "next_attempt_at"),
)

call_attempts = Table(
    "call_attempts",
    metadata,
    _pk(),
    Column("request_id", ForeignKey("callback_requests.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("number", Integer(), nullable=False),
    Column("operator_phone", String(20), nullable=True),
    Column("worker", String(64), nullable=True),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("operator_answered_at", UTCDateTime(), nullable=True),
    Column("client_answered_at", UTCDateTime(), nullable=True),
    Column("ended_at", UTCDateTime(), nullable=True),
    Column("outcome", String(24), nullable=True),
    Column("billed_seconds", Integer(), nullable=False, server_default="0"),
    Column("recording_path", Text(), nullable=True),
    UniqueConstraint("request_id", "number", name="uq_call_attempts_request_number"),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    _pk(),
    Column("site_id", ForeignKey("sites.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("request_id", ForeignKey("callback_requests.id", ondelete="CASCADE"), nullable=True),
    Column("event", String(40), nullable=False),
    Column("url", Text(), nullable=False),
    Column("payload", JSON(), nullable=False),
    Column("status", String(12), nullable=False),  # pending | delivered | failed
    Column("tries", Integer(), nullable=False, server_default="0"),
    Column("next_try_at", UTCDateTime(), nullable=True),
    Column("last_status_code", Integer(), nullable=True),
    Column("last_error", Text(), nullable=True),
    Column("delivered_at", UTCDateTime(), nullable=True),
    _created(),
    Index("ix_webhook_deliveries_due", "status", "next_try_at"),
)

api_points_usage = Table(
    "api_points_usage",
    metadata,
    Column("site_id", ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True),
    Column("day", String(10), primary_key=True),  # YYYY-MM-DD in the site's time zone
    Column("points", Integer(), nullable=False),
)


# Answers of the server-side create given an Idempotency-Key, kept 24 h (store/idempotency.py).
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    _pk(),
    Column("scope", String(64), nullable=False),  # SHA-256 of the access token: keys are per token
    Column("key", String(255), nullable=False),
    Column("fingerprint", String(64), nullable=False),  # SHA-256 of the request body
    Column("status_code", Integer(), nullable=True),  # NULL while the first request is in progress
    Column("body", Text(), nullable=True),
    _created(),
    UniqueConstraint("scope", "key", name="uq_idempotency_keys_scope_key"),
    Index("ix_idempotency_keys_created", "created_at"),
)


STATS_SLOT_S = 900
# Upper bounds (seconds, exclusive) of the time-to-callback buckets; the last bucket is open.
# Migration 0004's triggers carry the same numbers (a test checks).
WAIT_EDGES = (10, 20, 30, 45, 60, 90, 120, 180, 300, 600, 1800, 3600, 7200, 21600, 86400)
WAIT_COLUMNS = [f"wait_{i}" for i in range(len(WAIT_EDGES) + 1)]

# The dashboard's aggregates, kept by triggers in the transaction that writes a request or an attempt
# (migration 0004), per site and 15-minute slot of the requests' creation (``slot``: epoch seconds,
# UTC). ``wait_<i>``: requests whose first answered attempt came within bucket i of their due time.
request_stats = Table(
    "request_stats",
    metadata,
    Column("site_id", ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True),
    Column("slot", BigInteger(), primary_key=True),
    Column("requests", Integer(), nullable=False, server_default="0"),
    Column("completed", Integer(), nullable=False, server_default="0"),
    Column("finished", Integer(), nullable=False, server_default="0"),  # completed + failed
    Column("billed_seconds", BigInteger(), nullable=False, server_default="0"),
    *[Column(name, Integer(), nullable=False, server_default="0") for name in WAIT_COLUMNS],
)

# Each tag of each request, kept by migration 0004's triggers (exact tag filters and their counts).
request_tags = Table(
    "request_tags",
    metadata,
    Column("tag", Text(), primary_key=True),
    Column("site_id", Id, primary_key=True),
    Column("request_id", ForeignKey("callback_requests.id", ondelete="CASCADE"), primary_key=True, index=True),
)

# Every change of a site's minutes (DESIGN §7): the starting balance, top-ups, calls (negative) and
# operator adjustments. sites.minutes_balance is kept equal to the sum of the site's rows: both are
# written in one transaction (store/ledger.py).
minutes_ledger = Table(
    "minutes_ledger",
    metadata,
    _pk(),
    Column("site_id", ForeignKey("sites.id", ondelete="CASCADE"), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("minutes", Integer(), nullable=False),
    Column("kind", String(12), nullable=False),  # topup | call | adjustment
    Column("request_id", ForeignKey("callback_requests.id", ondelete="SET NULL"), nullable=True),
    Column("note", String(255), nullable=False, server_default=""),
    Index("ix_minutes_ledger_site", "site_id", "id"),
)

# Who did what to a request by hand (cancel, call now, reschedule, call again), for its timeline.
request_actions = Table(
    "request_actions",
    metadata,
    _pk(),
    Column("request_id", ForeignKey("callback_requests.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("action", String(20), nullable=False),  # cancel | call_now | reschedule | call_again
    Column("due_at", UTCDateTime(), nullable=True),  # the new due time (reschedule, call now, call again)
    Column("actor", String(320), nullable=False),  # the cabinet user's email, or which API token
    _created(),
)

# What a site's visitors met: requests refused at intake (blacklisted, throttled, not allowed, closed).
refused_requests = Table(
    "refused_requests",
    metadata,
    _pk(),
    Column("site_id", ForeignKey("sites.id", ondelete="CASCADE"), nullable=False),
    Column("widget_id", ForeignKey("widgets.id", ondelete="SET NULL"), nullable=True),
    Column("route_key", String(255), nullable=False, server_default=""),
    Column("phone", String(32), nullable=False, server_default=""),  # as sent, cut to 32 characters
    Column("reason", String(40), nullable=False),  # the refusal's error type
    Column("message", Text(), nullable=False, server_default=""),
    Column("source", String(10), nullable=False),  # js | api
    _created(),
    Index("ix_refused_requests_site_created", "site_id", "created_at"),
)
