"""minutes ledger: every change of a site's balance is a row; today's balances become their first entries

Revision ID: 0008
Revises: 0004
Create Date: 2026-12-01 12:40:00

The balance itself stays in sites.minutes_balance (read on every public call); the ledger explains it,
and the two are written together. Existing sites get one ``adjustment`` entry of their current balance,
so the sum of each site's ledger equals its balance from the first day on.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    id_type = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "minutes_ledger",
        sa.Column("id", id_type, autoincrement=True, nullable=False),
        sa.Column("site_id", id_type, nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("minutes", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(12), nullable=False),
        sa.Column("request_id", id_type, nullable=True),
        sa.Column("note", sa.String(255), server_default="", nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_minutes_ledger_site_id_sites"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["callback_requests.id"],
            name=op.f("fk_minutes_ledger_request_id_callback_requests"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_minutes_ledger")),
    )
    op.create_index("ix_minutes_ledger_site", "minutes_ledger", ["site_id", "id"])
    # Naive UTC, like every timestamp of ours (PostgreSQL's now() is in the session's zone).
    now = "timezone('utc', now())" if op.get_bind().dialect.name == "postgresql" else "CURRENT_TIMESTAMP"
    op.execute(
        "INSERT INTO minutes_ledger (site_id, at, minutes, kind, note) "
        f"SELECT id, {now}, minutes_balance, 'adjustment', 'balance when the ledger began' FROM sites"
    )


def downgrade() -> None:
    op.drop_index("ix_minutes_ledger_site", table_name="minutes_ledger")
    op.drop_table("minutes_ledger")
