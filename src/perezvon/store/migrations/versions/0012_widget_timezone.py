"""widget schedules in IANA zones: existing widgets move to their site's zone

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 12:20:00

Until now a widget's schedule kept the fixed UTC offset its site had when the widget was made, so a
site in Europe/Berlin called an hour off for half the year. ``widgets.schedule_timezone`` now holds an
IANA name (whose offset follows DST) or, for a widget saved with only a Calltouch-style
``utcTimezone``, that fixed offset (``UTC+03:00``), as before. The column widens to fit zone names,
and every existing widget takes its site's zone: its hours were meant as the site's local hours.

Downgrade writes back each zone's offset at the moment of the downgrade: the best a fixed offset can do.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from perezvon.domain.schedule import is_fixed_offset, offset_of_zone

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def _resize(old: int, new: int) -> None:
    # SQLite does not enforce VARCHAR lengths; copying the table there (batch mode) would only risk
    # the requests' foreign keys for nothing.
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("widgets", "schedule_timezone", existing_type=sa.String(old), type_=sa.String(new))


def upgrade() -> None:
    _resize(16, 64)
    op.execute(
        "UPDATE widgets SET schedule_timezone = (SELECT sites.timezone FROM sites WHERE sites.id = widgets.site_id)"
    )


def downgrade() -> None:
    conn = op.get_bind()
    now = datetime.now(UTC)
    rows = conn.execute(sa.text("SELECT id, schedule_timezone FROM widgets")).all()
    for widget_id, zone in rows:
        if not is_fixed_offset(zone):
            conn.execute(
                sa.text("UPDATE widgets SET schedule_timezone = :offset WHERE id = :id"),
                {"offset": offset_of_zone(zone, now), "id": widget_id},
            )
    _resize(64, 16)
