"""the drop-in widget: widgets.ui and widgets.analytics, callback_requests.status_token

Revision ID: 0005
Revises: 0002
Create Date: 2026-12-01 12:10:00

``ui`` and ``analytics`` are JSON objects whose missing keys read as their defaults, so existing widgets
get ``{}``: the widget stays off and no analytics events are sent until an admin switches them on.
``status_token`` is NULL for requests made before it existed: their status is simply not readable
from a visitor's page.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("widgets") as batch:
        batch.add_column(sa.Column("ui", sa.JSON(), server_default="{}", nullable=False))
        batch.add_column(sa.Column("analytics", sa.JSON(), server_default="{}", nullable=False))
    with op.batch_alter_table("callback_requests") as batch:
        batch.add_column(sa.Column("status_token", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("callback_requests") as batch:
        batch.drop_column("status_token")
    with op.batch_alter_table("widgets") as batch:
        batch.drop_column("analytics")
        batch.drop_column("ui")
