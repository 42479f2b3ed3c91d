"""daemon reliability

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 09:00:00

A window failing for a passing reason waits in status 'retrying' until `retry_at`; `retries` counts
those retries (so a daemon that dies mid-generation is still taken over once). `smtp_failures`
remembers SMTP settings whose login the server refused: they are not used again until they change.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("schedule_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("retries", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("retry_at", sa.DateTime(), nullable=True))
    op.create_table(
        "smtp_failures",
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("server", sa.String(length=300), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("failed_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("fingerprint", name=op.f("pk_smtp_failures")),
    )


def downgrade() -> None:
    op.drop_table("smtp_failures")
    with op.batch_alter_table("schedule_runs", schema=None) as batch_op:
        batch_op.drop_column("retry_at")
        batch_op.drop_column("retries")
