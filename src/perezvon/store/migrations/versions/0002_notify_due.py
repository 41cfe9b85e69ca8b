"""wake workers: NOTIFY on due requests and new webhook deliveries (PostgreSQL only)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 14:50:00

Every INSERT or UPDATE that leaves a callback request ``pending`` (a new request, a planned redial,
a recovered attempt) and every new webhook delivery NOTIFYs, from inside the writing transaction, so
workers in other processes wake at commit — whoever wrote the row (API process, admin, a bulk load).
Payloads are empty on purpose: PostgreSQL folds identical notifications of one transaction into one,
so a bulk insert of 100,000 requests wakes each worker once. SQLite has no NOTIFY; nothing to do there.
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        """
        CREATE FUNCTION perezvon_notify_due() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('perezvon_due', '');
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER callback_requests_notify_due
        AFTER INSERT OR UPDATE OF status, next_attempt_at ON callback_requests
        FOR EACH ROW WHEN (NEW.status = 'pending')
        EXECUTE FUNCTION perezvon_notify_due()
        """
    )
    op.execute(
        """
        CREATE FUNCTION perezvon_notify_webhooks() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('perezvon_webhooks', '');
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER webhook_deliveries_notify
        AFTER INSERT ON webhook_deliveries
        FOR EACH ROW EXECUTE FUNCTION perezvon_notify_webhooks()
        """
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS webhook_deliveries_notify ON webhook_deliveries")
    op.execute("DROP FUNCTION IF EXISTS perezvon_notify_webhooks()")
    op.execute("DROP TRIGGER IF EXISTS callback_requests_notify_due ON callback_requests")
    op.execute("DROP FUNCTION IF EXISTS perezvon_notify_due()")
