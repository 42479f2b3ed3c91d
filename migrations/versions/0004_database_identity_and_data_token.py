"""database identity and data token

Every business gets `data_token`, a random token replaced by every committed import, and the
database gets a random identity in app_settings: snapshots and stored files are keyed by both, so
a restored backup or a second database in the same data folder never reads another's files.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 09:00:00
"""

from __future__ import annotations

import datetime as dt
import secrets

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable in the schema (adding a NOT NULL column would rebuild the table on SQLite); every
    # row gets a token here and every new business one from the model's default.
    op.add_column("businesses", sa.Column("data_token", sa.String(length=32), nullable=True))
    conn = op.get_bind()
    businesses = sa.table("businesses", sa.column("id", sa.Integer), sa.column("data_token", sa.String))
    for (business_id,) in conn.execute(sa.select(businesses.c.id)).all():
        conn.execute(
            sa.update(businesses)
            .where(businesses.c.id == business_id)
            .values(data_token=secrets.token_hex(16))
        )
    settings = sa.table(
        "app_settings",
        sa.column("key", sa.String),
        sa.column("value", sa.JSON),
        sa.column("updated_at", sa.DateTime),
    )
    if conn.execute(sa.select(settings.c.key).where(settings.c.key == "database_id")).first() is None:
        conn.execute(
            sa.insert(settings).values(
                key="database_id",
                value=secrets.token_hex(8),
                updated_at=dt.datetime.now(dt.UTC).replace(tzinfo=None),
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("businesses") as batch:
        batch.drop_column("data_token")
    op.execute(sa.text("DELETE FROM app_settings WHERE key = 'database_id'"))
