"""notice addresses (issue 12)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 16:00:00

businesses.notice_email: the business's notification address, where failure notices and the
weekly summary go when neither the schedule's owner nor any active admin has an email address
("" = none). outbox.written_to: the .eml file a message was written to when no SMTP server was
set, so pages say "written to the outbox folder" instead of "sent" ("" = a mail server took it).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("businesses", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("notice_email", sa.String(length=254), server_default="", nullable=False)
        )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("written_to", sa.String(length=500), server_default="", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("written_to")
    with op.batch_alter_table("businesses", schema=None) as batch_op:
        batch_op.drop_column("notice_email")
