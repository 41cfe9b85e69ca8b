"""widgets.voicemail_detection: hang up on answering machines instead of bridging them (default on)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 12:20:00

Existing widgets get detection on, as new ones do (DESIGN §7 "Telephony": outcome client_voicemail).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("widgets") as batch:
        batch.add_column(sa.Column("voicemail_detection", sa.Boolean(), nullable=False, server_default="1"))


def downgrade() -> None:
    with op.batch_alter_table("widgets") as batch:
        batch.drop_column("voicemail_detection")
