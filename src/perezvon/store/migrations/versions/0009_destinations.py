"""destinations: a site's allowedCountries (from its time zone) and maxRequestsPerNumberPerDay (5)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 12:30:00

Existing sites get the same defaults a new site gets: the country of their time zone (["RU"] for a
zone without one, such as UTC), and at most 5 requests per visitor's number per day.
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

from perezvon.domain.destinations import default_countries

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sites") as batch:
        batch.add_column(sa.Column("allowed_countries", sa.JSON(), server_default='["*"]', nullable=False))
        batch.add_column(
            sa.Column("max_requests_per_number_per_day", sa.Integer(), server_default="5", nullable=False)
        )
    bind = op.get_bind()
    for site_id, zone in bind.execute(sa.text("SELECT id, timezone FROM sites")).all():
        bind.execute(
            sa.text("UPDATE sites SET allowed_countries = :countries WHERE id = :id"),
            {"countries": json.dumps(default_countries(zone)), "id": site_id},
        )


def downgrade() -> None:
    with op.batch_alter_table("sites") as batch:
        batch.drop_column("max_requests_per_number_per_day")
        batch.drop_column("allowed_countries")
