"""quiet hours per widget: redials and collected requests wait for the visitor's morning

Revision ID: 0010
Revises: 0006
Create Date: 2026-12-01 12:40:00

`widgets.quiet_hours` holds `{"start": "21:00", "end": "09:00"}` (the visitor's local time) or NULL
for none. Existing widgets get the default, as new ones do.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0006"
branch_labels = None
depends_on = None

_widgets = sa.table("widgets", sa.column("quiet_hours", sa.JSON()))


def upgrade() -> None:
    with op.batch_alter_table("widgets") as batch:
        batch.add_column(sa.Column("quiet_hours", sa.JSON(), nullable=True))
    op.execute(_widgets.update().values(quiet_hours={"start": "21:00", "end": "09:00"}))


def downgrade() -> None:
    with op.batch_alter_table("widgets") as batch:
        batch.drop_column("quiet_hours")
