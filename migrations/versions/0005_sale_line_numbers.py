"""sale line numbers (repeated SKUs in one order)

A sale line is named by (sale, line_no) instead of (sale, product), so an order may list one product
on several lines. Existing lines are numbered 1, 2, ... per sale in id order (the order they were
imported in). Downgrading refuses while any order lists a product twice: the old schema cannot hold it.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 09:00:00
"""

from __future__ import annotations

import sqlite3

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sale_lines") as batch:
        batch.add_column(sa.Column("line_no", sa.Integer(), nullable=True))
    conn = op.get_bind()
    numbered = "SELECT id, ROW_NUMBER() OVER (PARTITION BY sale_id ORDER BY id) AS n FROM sale_lines"
    if conn.dialect.name == "sqlite" and sqlite3.sqlite_version_info < (3, 33):
        # No UPDATE ... FROM before SQLite 3.33: count the earlier lines of the same sale instead.
        op.execute(
            "UPDATE sale_lines SET line_no = (SELECT COUNT(*) FROM sale_lines AS e "
            "WHERE e.sale_id = sale_lines.sale_id AND e.id <= sale_lines.id)"
        )
    else:
        op.execute(f"UPDATE sale_lines SET line_no = n.n FROM ({numbered}) AS n WHERE n.id = sale_lines.id")
    with op.batch_alter_table("sale_lines") as batch:
        batch.alter_column("line_no", existing_type=sa.Integer(), nullable=False)
        batch.drop_constraint("uq_sale_lines_sale_id", type_="unique")
        batch.create_unique_constraint("uq_sale_lines_sale_line_no", ["sale_id", "line_no"])


def downgrade() -> None:
    conn = op.get_bind()
    repeated = conn.execute(
        sa.text(
            "SELECT COUNT(*) FROM (SELECT sale_id FROM sale_lines GROUP BY sale_id, product_id "
            "HAVING COUNT(*) > 1) AS r"
        )
    ).scalar_one()
    if repeated:
        raise RuntimeError(
            f"Cannot downgrade below revision 0005: in {repeated} places an order lists one product on "
            "several lines, which the older schema cannot store. Merge or remove those lines first."
        )
    with op.batch_alter_table("sale_lines") as batch:
        batch.drop_constraint("uq_sale_lines_sale_line_no", type_="unique")
        batch.create_unique_constraint("uq_sale_lines_sale_id", ["sale_id", "product_id"])
        batch.drop_column("line_no")
