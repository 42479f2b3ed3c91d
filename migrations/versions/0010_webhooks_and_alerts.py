"""webhook and Slack targets, alert conditions (issue 12)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 16:00:00

`schedules` gains webhook and Slack incoming-webhook URLs (JSON lists), the webhook signing secret
(Fernet-encrypted, with the key's fingerprint) and an alert condition on one KPI (kpi, operator,
exact decimal value, only-when-it-changes). `schedule_runs` records each evaluation: the value seen
and whether the condition held. Webhook and Slack deliveries are outbox rows (kinds 'webhook' and
'slack'), so they need no table of their own.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("schedules", schema=None) as batch_op:
        batch_op.add_column(sa.Column("webhooks", sa.JSON(), nullable=False, server_default="[]"))
        batch_op.add_column(sa.Column("slack_webhooks", sa.JSON(), nullable=False, server_default="[]"))
        batch_op.add_column(
            sa.Column("webhook_secret_encrypted", sa.Text(), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column("webhook_key_fingerprint", sa.String(length=64), nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("alert_kpi", sa.String(length=60), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("alert_op", sa.String(length=2), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("alert_value", sa.String(length=40), nullable=False, server_default=""))
        batch_op.add_column(
            sa.Column("alert_on_change", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("schedule_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("alert_seen", sa.String(length=60), nullable=True))
        batch_op.add_column(sa.Column("alert_held", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("schedule_runs", schema=None) as batch_op:
        batch_op.drop_column("alert_held")
        batch_op.drop_column("alert_seen")
    with op.batch_alter_table("schedules", schema=None) as batch_op:
        for column in (
            "alert_on_change",
            "alert_value",
            "alert_op",
            "alert_kpi",
            "webhook_key_fingerprint",
            "webhook_secret_encrypted",
            "slack_webhooks",
            "webhooks",
        ):
            batch_op.drop_column(column)
