"""per-business smtp settings and session epochs

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 09:00:00

- smtp_settings.business_id (unique, NULL = the installation default). The existing row stays the
  installation default: the operator reviews it with `manage.py smtp show`.
- businesses.retention_days: each business's own retention (NULL = the installation default,
  TALLYBOARD_RETENTION_DAYS). The old installation-wide Admin setting (app_settings
  "retention_days", which any business's admin could change) is copied to every business.
- users.session_epoch: login cookies and sessions carry it; raising it ends them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("smtp_settings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("business_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            op.f("fk_smtp_settings_business_id_businesses"),
            "businesses",
            ["business_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch_op.create_unique_constraint(op.f("uq_smtp_settings_business_id"), ["business_id"])
    with op.batch_alter_table("businesses", schema=None) as batch_op:
        batch_op.add_column(sa.Column("retention_days", sa.Integer(), nullable=True))
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("session_epoch", sa.Integer(), server_default="0", nullable=False))
    conn = op.get_bind()
    value = conn.execute(sa.text("SELECT value FROM app_settings WHERE key = 'retention_days'")).scalar()
    if value is not None:
        try:
            days = int(str(value).strip().strip('"'))
        except ValueError:
            days = 0
        if days >= 1:
            conn.execute(sa.text("UPDATE businesses SET retention_days = :days"), {"days": days})
        conn.execute(sa.text("DELETE FROM app_settings WHERE key = 'retention_days'"))


def downgrade() -> None:
    # Businesses' own SMTP rows cannot live without the column: only the installation default stays.
    op.execute(sa.text("DELETE FROM smtp_settings WHERE business_id IS NOT NULL"))
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("session_epoch")
    with op.batch_alter_table("businesses", schema=None) as batch_op:
        batch_op.drop_column("retention_days")
    with op.batch_alter_table("smtp_settings", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("uq_smtp_settings_business_id"), type_="unique")
        batch_op.drop_constraint(op.f("fk_smtp_settings_business_id_businesses"), type_="foreignkey")
        batch_op.drop_column("business_id")
