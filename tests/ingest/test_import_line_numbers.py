"""Sales lines are named by (order, line_no): an order may list one SKU on several lines (issue 8, item 2)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from core.db import alembic_config
from core.models import Business, Product, Sale, SaleLine
from core.settings import Settings
from exporters.json_export import report_document
from ingest.importer import ImportResult, import_file
from tests.factories import TINY_DIR
from tests.reports.reporting import run_report

HEADER = (
    "order_id,order_date,customer_code,sku,quantity,unit_price,unit_cost,discount,status,sales_rep,storefront"
)
# A till scans P1 twice, once at a 10 % discount, then P2; R2 is another order.
TILL = [
    "R1,2025-01-10,A1,P1,1,15,10,0,completed,ana,M",
    "R1,2025-01-10,A1,P1,1,15,10,0.1,completed,ana,M",
    "R1,2025-01-10,A1,P2,2,10,4,0,completed,ana,M",
    "R2,2025-01-11,B2,P1,3,14,10,0,completed,ben,M",
]


def sales_file(lines: list[str], header: str = HEADER) -> str:
    return "\n".join([header, *lines]) + "\n"


def run(engine: Engine, business: Business, settings: Settings, entity: str, content: str) -> ImportResult:
    return import_file(engine, business.id, entity, f"{entity}.csv", content.encode(), settings)


@pytest.fixture
def shop(engine: Engine, business: Business, settings: Settings) -> Business:
    """A business with the tiny example's storefront, customers and products, and no sales yet."""
    for entity in ("storefronts", "customers", "products"):
        result = run(engine, business, settings, entity, (TINY_DIR / f"{entity}.csv").read_text())
        assert result.ok, result.errors
    return business


def stored_lines(session: Session, business: Business, order_id: str) -> list[tuple[Any, ...]]:
    """(id, line_no, sku, quantity, discount, net_micros) of an order's lines, by line_no."""
    session.expire_all()
    rows = session.execute(
        select(
            SaleLine.id,
            SaleLine.line_no,
            Product.sku,
            SaleLine.quantity,
            SaleLine.discount,
            SaleLine.net_micros,
        )
        .join(Sale, Sale.id == SaleLine.sale_id)
        .join(Product, Product.id == SaleLine.product_id)
        .where(Sale.business_id == business.id, Sale.order_id == order_id)
        .order_by(SaleLine.line_no)
    )
    return [tuple(r) for r in rows]


def everything(session: Session, business: Business) -> list[tuple[Any, ...]]:
    """Every column of the business's sales and lines, to prove nothing changed."""
    session.expire_all()
    sales = session.execute(select(Sale.__table__).where(Sale.business_id == business.id).order_by(Sale.id))
    lines = session.execute(
        select(SaleLine.__table__).where(SaleLine.business_id == business.id).order_by(SaleLine.id)
    )
    return [tuple(r) for r in sales] + [tuple(r) for r in lines]


def data_version(session: Session, business: Business) -> tuple[int, str]:
    session.expire_all()
    found = session.execute(
        select(Business.data_version, Business.data_token).where(Business.id == business.id)
    ).one()
    return found[0], found[1]


def micros(quantity: str, price: str, discount: str) -> int:
    return int((Decimal(quantity) * Decimal(price) * (1 - Decimal(discount)) * 1_000_000).to_integral_value())


def test_an_order_listing_one_sku_twice_imports_both_lines(
    engine: Engine, shop: Business, settings: Settings, session: Session
) -> None:
    result = run(engine, shop, settings, "sales", sales_file(TILL))
    assert result.ok, result.errors
    assert (result.rows, result.inserted, result.updated, result.unchanged) == (4, 4, 0, 0)
    lines = stored_lines(session, shop, "R1")
    assert [line[1:] for line in lines] == [
        (1, "P1", 1, 0, micros("1", "15", "0")),
        (2, "P1", 1, 0.1, micros("1", "15", "0.1")),
        (3, "P2", 2, 0, micros("2", "10", "0")),
    ]
    assert [line[0] for line in lines] == sorted(line[0] for line in lines)  # stored in file order
    r1 = session.scalars(select(Sale).where(Sale.business_id == shop.id, Sale.order_id == "R1")).one()
    assert r1.net_micros == sum(line[5] for line in lines)


def test_reimporting_the_same_file_changes_nothing(
    engine: Engine, shop: Business, settings: Settings, session: Session
) -> None:
    assert run(engine, shop, settings, "sales", sales_file(TILL)).ok
    before, version = everything(session, shop), data_version(session, shop)
    result = run(engine, shop, settings, "sales", sales_file(TILL))
    assert result.ok, result.errors
    assert result.message == "Nothing changed: all 4 sales lines in the file were already up to date."
    assert (result.inserted, result.updated, result.unchanged) == (0, 0, 4)
    assert everything(session, shop) == before
    assert data_version(session, shop) == version


def test_changing_one_of_two_identical_lines_updates_exactly_that_line(
    engine: Engine, shop: Business, settings: Settings, session: Session
) -> None:
    same = "R1,2025-01-10,A1,P1,1,15,10,0,completed,ana,M"
    assert run(engine, shop, settings, "sales", sales_file([same, same])).ok
    first, second = stored_lines(session, shop, "R1")
    version = data_version(session, shop)

    result = run(engine, shop, settings, "sales", sales_file([same, same.replace(",1,15,", ",3,15,")]))
    assert result.ok, result.errors
    assert (result.inserted, result.updated, result.unchanged) == (0, 1, 1)
    assert result.message == "Imported 2 sales lines (1 updated, 1 unchanged)."
    assert stored_lines(session, shop, "R1") == [first, (second[0], 2, "P1", 3, 0, micros("3", "15", "0"))]
    r1 = session.scalars(select(Sale).where(Sale.business_id == shop.id, Sale.order_id == "R1")).one()
    assert r1.net_micros == micros("1", "15", "0") + micros("3", "15", "0")
    assert data_version(session, shop)[0] == version[0] + 1


def test_removing_a_line_from_an_order_in_the_file_removes_it(
    engine: Engine, shop: Business, settings: Settings, session: Session
) -> None:
    assert run(engine, shop, settings, "sales", sales_file(TILL)).ok
    kept = stored_lines(session, shop, "R1")[:2]
    result = run(engine, shop, settings, "sales", sales_file(TILL[:2]))  # R1 without its P2 line; no R2
    assert result.ok, result.errors
    assert (
        result.message == "Imported 2 sales lines (2 unchanged, 1 sales line no longer in the file removed)."
    )
    assert stored_lines(session, shop, "R1") == kept
    assert len(stored_lines(session, shop, "R2")) == 1  # an order left out of the file stays as it was


def test_removing_the_first_of_two_identical_lines_leaves_one(
    engine: Engine, shop: Business, settings: Settings, session: Session
) -> None:
    same = "R1,2025-01-10,A1,P1,1,15,10,0,completed,ana,M"
    assert run(engine, shop, settings, "sales", sales_file([same, same])).ok
    result = run(engine, shop, settings, "sales", sales_file([same]))
    assert (result.ok, result.inserted, result.updated, result.unchanged) == (True, 0, 0, 1)
    assert [line[1:] for line in stored_lines(session, shop, "R1")] == [
        (1, "P1", 1, 0, micros("1", "15", "0"))
    ]


def test_line_no_column_names_the_lines(
    engine: Engine, shop: Business, settings: Settings, session: Session
) -> None:
    header = HEADER + ",line_no"
    numbered = [TILL[0] + ",20", TILL[1] + ",10", TILL[2] + ",30"]
    assert run(engine, shop, settings, "sales", sales_file(numbered, header)).ok
    lines = stored_lines(session, shop, "R1")
    assert [(line[1], line[4]) for line in lines] == [(10, 0.1), (20, 0), (30, 0)]

    # The same lines in another order of the file: their numbers name them, so nothing changes.
    version = data_version(session, shop)
    result = run(engine, shop, settings, "sales", sales_file(numbered[::-1], header))
    assert result.message.startswith("Nothing changed"), result.errors
    assert data_version(session, shop) == version

    # Line 20 gets quantity 5: exactly that line changes.
    changed = [numbered[0].replace(",1,15,", ",5,15,"), numbered[1], numbered[2]]
    result = run(engine, shop, settings, "sales", sales_file(changed, header))
    assert (result.inserted, result.updated, result.unchanged) == (0, 1, 2)
    after = stored_lines(session, shop, "R1")
    assert after[0] == lines[0] and after[2] == lines[2]
    assert after[1] == (lines[1][0], 20, "P1", 5, 0, micros("5", "15", "0"))


def test_lines_of_one_order_apart_in_the_file_are_numbered_in_file_order(
    engine: Engine, shop: Business, settings: Settings, session: Session
) -> None:
    # R1's lines are not next to each other: R2 comes in between.
    spread = [TILL[0], TILL[3], TILL[1], TILL[2]]
    result = run(engine, shop, settings, "sales", sales_file(spread))
    assert result.ok, result.errors
    assert [line[1:4] for line in stored_lines(session, shop, "R1")] == [
        (1, "P1", 1),
        (2, "P1", 1),
        (3, "P2", 2),
    ]
    # The same lines, now next to each other: the same positions, so nothing changes.
    assert run(engine, shop, settings, "sales", sales_file(TILL)).message.startswith("Nothing changed")


@pytest.mark.parametrize(
    ("lines", "header", "expected"),
    [
        (  # R1's third line repeats line_no 1, with R2 in between: found across the two runs of R1
            [TILL[0] + ",1", TILL[3] + ",1", TILL[1] + ",2", TILL[2] + ",1"],
            HEADER + ",line_no",
            [(5, "line_no", "duplicate of row 2: order 'R1' has line_no 1 twice")],
        ),
        (  # the same, next to each other
            [TILL[0] + ",1", TILL[1] + ",1"],
            HEADER + ",line_no",
            [(3, "line_no", "duplicate of row 2: order 'R1' has line_no 1 twice")],
        ),
        (  # a later line of R1, after R2, on another day and for another customer
            [TILL[0], TILL[3], TILL[1].replace("2025-01-10,A1", "2025-01-12,C3")],
            HEADER,
            [
                (4, "order_date", "differs from row 2 of order 'R1'"),
                (4, "customer_code", "differs from row 2"),
            ],
        ),
        (  # line numbers must be whole numbers of at least 1
            [TILL[0] + ",-1", TILL[1] + ",x", TILL[2] + ",3"],
            HEADER + ",line_no",
            [(2, "line_no", "'-1' is not a line number"), (3, "line_no", "'x' is not a line number")],
        ),
    ],
    ids=["line_no-twice-across-runs", "line_no-twice", "header-differs-across-runs", "bad-line_no"],
)
def test_bad_line_numbers_and_split_orders_are_rejected_by_row(
    engine: Engine,
    shop: Business,
    settings: Settings,
    session: Session,
    lines: list[str],
    header: str,
    expected: list[tuple[int, str, str]],
) -> None:
    result = run(engine, shop, settings, "sales", sales_file(lines, header))
    assert not result.ok
    assert [(e.row, e.column) for e in result.errors] == [(row, column) for row, column, _ in expected]
    for error, (_, _, reason) in zip(result.errors, expected, strict=True):
        assert reason in error.reason
    assert result.message.endswith("nothing was imported.")
    assert everything(session, shop) == []


def test_reports_count_every_line_of_a_repeated_sku(
    engine: Engine, shop: Business, settings: Settings
) -> None:
    assert run(engine, shop, settings, "sales", sales_file(TILL)).ok
    expected = Decimal(0)  # SPEC: revenue = sum of quantity x unit_price x (1 - discount), every line
    for line in TILL:
        cells = line.split(",")
        quantity, price, discount = (Decimal(cells[i]) for i in (4, 5, 7))
        expected += quantity * price * (1 - discount)
    doc = report_document(
        run_report(
            engine, settings.snapshot_dir, shop.id, "kpi_dashboard", "start=2025-01-01", "end=2025-01-31"
        )
    )
    assert Decimal(str(doc["kpis"]["revenue"])) == expected.quantize(Decimal("0.01"))
    assert doc["kpis"]["orders"] == 2
    products = report_document(
        run_report(
            engine, settings.snapshot_dir, shop.id, "sales_summary", "start=2025-01-01", "end=2025-01-31"
        )
    )["tables"]["by_product"]
    p1 = next(r for r in products if r["sku"] == "P1")
    assert Decimal(str(p1["revenue"])) == Decimal("15") + Decimal("13.5") + Decimal("42")
    assert p1["orders"] == 2  # R1 lists P1 twice: still one order
    categories = {r["category"]: r["orders"] for r in products_by_category(engine, settings, shop)}
    assert sum(categories.values()) >= 2 and max(categories.values()) <= 2


def products_by_category(engine: Engine, settings: Settings, shop: Business) -> list[dict[str, Any]]:
    doc = report_document(
        run_report(
            engine, settings.snapshot_dir, shop.id, "sales_summary", "start=2025-01-01", "end=2025-01-31"
        )
    )
    rows: list[dict[str, object]] = doc["tables"]["by_category"]
    return rows


# --- the migration numbers existing lines ---------------------------------------------------------


def test_migration_numbers_existing_lines_per_order_in_id_order(fresh_engine: Engine) -> None:
    config = alembic_config(fresh_engine)
    command.upgrade(config, "0004")
    with fresh_engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO businesses (id, code, name, currency, timezone, data_version, data_token, created_at) "
                "VALUES (1, 'b', 'B', 'EUR', 'UTC', 1, 'token', '2025-01-01')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO customers (id, business_id, customer_code, name, customer_type, region, "
                "credit_limit_micros, email, active) VALUES (1, 1, 'A1', 'A', 'retail', 'N', 0, '', true)"
            )
        )
        for product_id in (1, 2, 3):
            conn.execute(
                text(
                    "INSERT INTO products (id, business_id, sku, name, category, unit_cost_micros, "
                    "unit_price_micros, reorder_level) VALUES (:id, 1, :sku, 'P', 'C', 1, 2, 0)"
                ),
                {"id": product_id, "sku": f"P{product_id}"},
            )
        for sale_id in (1, 2):
            conn.execute(
                text(
                    "INSERT INTO sales (id, business_id, order_id, order_date, customer_id, sales_rep, status, "
                    "net_micros, cost_micros) VALUES (:id, 1, :o, '2025-01-01', 1, '', 'completed', 0, 0)"
                ),
                {"id": sale_id, "o": f"O{sale_id}"},
            )
        # Ids interleave the two sales, and sale 2's lines were stored with its products out of order.
        for line_id, sale_id, product_id in ((10, 1, 2), (11, 2, 3), (12, 1, 1), (13, 2, 1), (14, 2, 2)):
            conn.execute(
                text(
                    "INSERT INTO sale_lines (id, business_id, sale_id, product_id, quantity, unit_price_micros, "
                    "unit_cost_micros, discount, net_micros, cost_micros) "
                    "VALUES (:id, 1, :s, :p, 1, 2, 1, 0, 2, 1)"
                ),
                {"id": line_id, "s": sale_id, "p": product_id},
            )
    command.upgrade(config, "0005")
    with fresh_engine.connect() as conn:
        numbered = conn.execute(text("SELECT id, sale_id, line_no FROM sale_lines ORDER BY id")).all()
    assert [tuple(r) for r in numbered] == [(10, 1, 1), (11, 2, 1), (12, 1, 2), (13, 2, 2), (14, 2, 3)]

    # Now an order may list a product twice; going back would lose that, so the downgrade refuses.
    with fresh_engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO sale_lines (id, business_id, sale_id, line_no, product_id, quantity, "
                "unit_price_micros, unit_cost_micros, discount, net_micros, cost_micros) "
                "VALUES (15, 1, 1, 3, 2, 1, 2, 1, 0, 2, 1)"
            )
        )
    with pytest.raises(RuntimeError, match="in 1 places an order lists one product on several lines"):
        command.downgrade(config, "0004")
    with fresh_engine.begin() as conn:
        conn.execute(text("DELETE FROM sale_lines WHERE id = 15"))
    command.downgrade(config, "0004")
    with fresh_engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM sale_lines")).scalar_one() == 5
