"""a request's timeline of admin actions, and the requests refused at intake

Revision ID: 0011
Revises: 0009 (destinations)
Create Date: 2026-12-01 12:40:00

``request_actions``: who cancelled, called now, rescheduled or called again a request, and when
(written in the transaction of the move itself). ``refused_requests``: what a site's visitors met when
intake said no (blacklisted, throttled, not allowed, outside working hours), newest first per site.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import perezvon.store.tables

revision = "0011"
down_revision = "0009"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "request_actions",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("request_id", _ID, nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("due_at", perezvon.store.tables.UTCDateTime(), nullable=True),
        sa.Column("actor", sa.String(length=320), nullable=False),
        sa.Column("created_at", perezvon.store.tables.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["callback_requests.id"],
            name=op.f("fk_request_actions_request_id_callback_requests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_request_actions")),
    )
    op.create_index(op.f("ix_request_actions_request_id"), "request_actions", ["request_id"])
    op.create_table(
        "refused_requests",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("site_id", _ID, nullable=False),
        sa.Column("widget_id", _ID, nullable=True),
        sa.Column("route_key", sa.String(length=255), server_default="", nullable=False),
        sa.Column("phone", sa.String(length=32), server_default="", nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=False),
        sa.Column("message", sa.Text(), server_default="", nullable=False),
        sa.Column("source", sa.String(length=10), nullable=False),
        sa.Column("created_at", perezvon.store.tables.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_refused_requests_site_id_sites"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["widget_id"], ["widgets.id"], name=op.f("fk_refused_requests_widget_id_widgets"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refused_requests")),
    )
    op.create_index("ix_refused_requests_site_created", "refused_requests", ["site_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_refused_requests_site_created", table_name="refused_requests")
    op.drop_table("refused_requests")
    op.drop_index(op.f("ix_request_actions_request_id"), table_name="request_actions")
    op.drop_table("request_actions")
