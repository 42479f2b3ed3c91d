"""Tests for ingest.importer on the fixture database: the tiny example files, idempotency, every error case."""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from decimal import Decimal
from typing import Any

import openpyxl
import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from core.models import (
    AuditEvent,
    Business,
    Customer,
    Forecast,
    ImportBatch,
    InventoryLevel,
    Payment,
    Product,
    Sale,
    SaleLine,
    Storefront,
)
from core.settings import Settings
from ingest.importer import BATCH_ROWS, ENTITIES, MAX_REPORTED_ERRORS, ImportResult, RowError, import_file
from tests.conftest import new_business
from tests.factories import TINY_DIR

ENTITY_MODELS: list[Any] = [Customer, Product, Storefront, Sale, SaleLine, Payment, Forecast, InventoryLevel]
TINY_ORDER = ("storefronts", "customers", "products", "sales", "payments", "forecasts", "inventory")
TINY_ROWS = {
    "storefronts": 1,
    "customers": 4,
    "products": 2,
    "sales": 10,
    "payments": 6,
    "forecasts": 6,
    "inventory": 2,
}


def run(
    engine: Engine,
    business: Business,
    settings: Settings,
    entity: str,
    text: str | bytes,
    filename: str | None = None,
    **kwargs: Any,
) -> ImportResult:
    data = text.encode() if isinstance(text, str) else text
    return import_file(engine, business.id, entity, filename or f"{entity}.csv", data, settings, **kwargs)


def import_tiny(
    engine: Engine, business: Business, settings: Settings, entities: tuple[str, ...] = TINY_ORDER
) -> None:
    for entity in entities:
        result = run(engine, business, settings, entity, (TINY_DIR / f"{entity}.csv").read_bytes())
        assert result.ok, result.errors


def table_counts(session: Session) -> dict[str, int]:
    session.expire_all()
    return {m.__tablename__: session.scalar(select(func.count()).select_from(m)) or 0 for m in ENTITY_MODELS}


def data_version(session: Session, business: Business) -> int:
    session.expire_all()
    version = session.scalar(select(Business.data_version).where(Business.id == business.id))
    assert version is not None
    return version


def snapshot(session: Session, business: Business) -> dict[str, list[tuple[Any, ...]]]:
    """Every column of every entity row of the business, to prove that nothing changed."""
    session.expire_all()
    result = {}
    for model in ENTITY_MODELS:
        table = model.__table__
        rows = session.execute(select(table).where(table.c.business_id == business.id).order_by(table.c.id))
        result[table.name] = [tuple(r) for r in rows]
    return result


def everything(result: ImportResult) -> str:
    return " ".join([result.message, *(e.reason for e in result.errors)]).lower()


@pytest.fixture
def loaded(engine: Engine, business: Business, settings: Settings) -> Business:
    """A business with the tiny storefronts, customers, products and sales imported."""
    import_tiny(engine, business, settings, ("storefronts", "customers", "products", "sales"))
    return business


# --- the happy path --------------------------------------------------------------------------------


def test_tiny_files_import_in_order(
    engine: Engine, business: Business, settings: Settings, session: Session
) -> None:
    seen: list[tuple[int, int]] = []
    for entity in TINY_ORDER:
        data = (TINY_DIR / f"{entity}.csv").read_bytes()
        result = run(
            engine,
            business,
            settings,
            entity,
            data,
            username="ana",
            progress=lambda d, t: seen.append((d, t)),
        )
        rows = TINY_ROWS[entity]
        assert (result.ok, result.rows, result.inserted, result.updated, result.unchanged) == (
            True,
            rows,
            rows,
            0,
            0,
        )
        assert result.errors == []
        assert result.message.startswith(f"Imported {rows} ")
    assert run(engine, business, settings, "sales", (TINY_DIR / "sales.csv").read_bytes()).ok
    assert data_version(session, business) == len(TINY_ORDER)
    assert seen and all(0 <= d <= t for d, t in seen) and seen[-1][0] == seen[-1][1]

    o2 = session.scalars(select(Sale).where(Sale.business_id == business.id, Sale.order_id == "O2")).one()
    assert (o2.net_micros, o2.cost_micros, o2.status, o2.sales_rep) == (
        1330_000000,
        1000_000000,
        "completed",
        "ben",
    )
    assert o2.order_date == dt.date(2025, 1, 31)
    o1 = session.scalars(select(Sale).where(Sale.business_id == business.id, Sale.order_id == "O1")).one()
    assert (o1.net_micros, o1.cost_micros) == (195_000000, 120_000000)  # 150 + 5 × 10 × 0.9; 100 + 20
    lines = session.scalars(select(SaleLine).where(SaleLine.sale_id == o1.id).order_by(SaleLine.id)).all()
    assert [(line.quantity, line.unit_price_micros, line.discount, line.net_micros) for line in lines] == [
        (10, 15_000000, 0, 150_000000),
        (5, 10_000000, 0.1, 45_000000),
    ]
    o7 = session.scalars(select(Sale).where(Sale.business_id == business.id, Sale.order_id == "O7")).one()
    assert o7.net_micros == 475_000000  # 50 × 9.5
    storefront = session.scalars(select(Storefront).where(Storefront.business_id == business.id)).one()
    assert o1.storefront_id == storefront.id

    alma = session.scalars(
        select(Customer).where(Customer.business_id == business.id, Customer.customer_code == "A1")
    ).one()
    assert (alma.name, alma.customer_type, alma.credit_limit_micros, alma.active) == (
        "Alma Café",
        "retail",
        1000_000000,
        True,
    )
    y3 = session.scalars(
        select(Payment).where(Payment.business_id == business.id, Payment.payment_id == "Y3")
    ).one()
    assert (y3.sale_id, y3.paid_at, y3.amount_micros, y3.method) == (
        o2.id,
        dt.datetime(2025, 3, 15),
        100_000000,
        "credit_note",
    )
    forecast = session.scalars(
        select(Forecast).where(Forecast.business_id == business.id, Forecast.quantity == 120)
    ).one()
    assert (forecast.cycle, forecast.sales_rep, forecast.submitted_at) == (
        "2025-01",
        "ben",
        dt.datetime(2025, 1, 3, 9),
    )
    levels = session.scalars(select(InventoryLevel).where(InventoryLevel.business_id == business.id)).all()
    assert sorted((level.quantity, level.as_of) for level in levels) == [
        (0, dt.date(2025, 3, 31)),
        (7, dt.date(2025, 3, 31)),
    ]

    batches = session.scalars(select(ImportBatch).where(ImportBatch.business_id == business.id)).all()
    assert len(batches) == len(TINY_ORDER) + 1 and {b.status for b in batches} == {"imported"}
    event = session.scalars(
        select(AuditEvent).where(AuditEvent.business_id == business.id, AuditEvent.entity == "customers")
    ).one()
    assert (event.event_type, event.user) == ("import", "ana")
    assert event.detail["inserted"] == 4 and event.detail["rows"] == 4


def test_reimport_changes_nothing(
    engine: Engine, business: Business, settings: Settings, session: Session
) -> None:
    import_tiny(engine, business, settings)
    before, version = snapshot(session, business), data_version(session, business)
    for entity in TINY_ORDER:
        result = run(engine, business, settings, entity, (TINY_DIR / f"{entity}.csv").read_bytes())
        rows = TINY_ROWS[entity]
        assert (result.ok, result.inserted, result.updated, result.unchanged) == (True, 0, 0, rows)
        assert result.message.startswith("Nothing changed")
    assert snapshot(session, business) == before
    assert data_version(session, business) == version


def test_changed_row_updates_by_natural_key(
    engine: Engine, business: Business, settings: Settings, session: Session
) -> None:
    import_tiny(engine, business, settings)
    version = data_version(session, business)
    text = (
        (TINY_DIR / "customers.csv")
        .read_text()
        .replace("Alma Café,retail,North,1000", "Alma Café Two,retail,West,1200.5")
    )
    result = run(engine, business, settings, "customers", text)
    assert (result.inserted, result.updated, result.unchanged) == (0, 1, 3)
    assert result.message == "Imported 4 customers (1 updated, 3 unchanged)."
    alma = session.scalars(
        select(Customer).where(Customer.business_id == business.id, Customer.customer_code == "A1")
    ).one()
    assert (alma.name, alma.region, alma.credit_limit_micros) == ("Alma Café Two", "West", 1200_500000)
    assert data_version(session, business) == version + 1


def test_an_order_gets_exactly_the_lines_of_the_file(
    engine: Engine, business: Business, settings: Settings, session: Session
) -> None:
    import_tiny(engine, business, settings)
    header = "order_id,order_date,customer_code,sku,quantity,unit_price,unit_cost,discount,status,sales_rep,storefront\n"
    # O1 keeps only its P1 line, with a new quantity; O3 changes status only; O10 is new.
    text = header + (
        "O1,2025-01-05,A1,P1,12,15,10,0,completed,ana,M\n"
        "O3,2025-02-01,C3,P2,20,10,4,0,completed,ana,M\n"
        "O10,2025-02-02,C3,P2,1,10,4,0,completed,ana,\n"
    )
    result = run(engine, business, settings, "sales", text)
    assert (result.ok, result.inserted, result.updated, result.unchanged) == (True, 1, 2, 0)
    assert "1 sales line no longer in the file removed" in result.message
    session.expire_all()
    sales = {s.order_id: s for s in session.scalars(select(Sale).where(Sale.business_id == business.id))}
    o1_lines = session.scalars(select(SaleLine).where(SaleLine.sale_id == sales["O1"].id)).all()
    assert [(line.quantity, line.net_micros) for line in o1_lines] == [(12, 180_000000)]
    assert (sales["O1"].net_micros, sales["O1"].cost_micros) == (180_000000, 120_000000)
    assert sales["O3"].status == "completed"
    assert sales["O10"].storefront_id is None
    assert sales["O2"].net_micros == 1330_000000  # not in the file: untouched
    assert table_counts(session)["sale_lines"] >= 10


def test_optional_columns_take_defaults_and_keep_stored_values(
    engine: Engine, business: Business, settings: Settings, session: Session
) -> None:
    import_tiny(engine, business, settings, ("storefronts", "customers", "products"))
    # Header names in another order, other case and with spaces.
    text = (
        " Region ,NAME,customer_type,Customer_Code\nNorth,Alma Café,retail,A1\nWest,Zed Store,wholesale,Z9\n"
    )
    result = run(engine, business, settings, "customers", text)
    assert (result.ok, result.inserted, result.updated, result.unchanged) == (True, 1, 0, 1), result.errors
    customers = {
        c.customer_code: c
        for c in session.scalars(select(Customer).where(Customer.business_id == business.id))
    }
    assert (customers["A1"].email, customers["A1"].credit_limit_micros) == ("alma@example.com", 1000_000000)
    assert (customers["Z9"].email, customers["Z9"].credit_limit_micros, customers["Z9"].active) == (
        "",
        0,
        True,
    )

    sales = "order_id,order_date,customer_code,sku,quantity,unit_price,status\nN1,2025-05-01,Z9,P2,3,10,completed\n"
    result = run(engine, business, settings, "sales", sales)
    assert result.ok, result.errors
    n1 = session.scalars(select(Sale).where(Sale.business_id == business.id, Sale.order_id == "N1")).one()
    line = session.scalars(select(SaleLine).where(SaleLine.sale_id == n1.id)).one()
    assert (n1.storefront_id, n1.sales_rep, line.discount, line.unit_cost_micros) == (None, "", 0, 4_000000)
    assert (n1.net_micros, n1.cost_micros) == (30_000000, 12_000000)


def test_formula_like_text_is_stored_verbatim(
    engine: Engine, business: Business, settings: Settings, session: Session
) -> None:
    text = 'code,name,region\nF1,=1+2,+SUM(A1)\nF2,@x,"-2+3"\nF3,"=HYPERLINK(""http://x"")",\tTab\n'
    result = run(engine, business, settings, "storefronts", text)
    assert result.ok, result.errors
    stored = session.execute(
        select(Storefront.code, Storefront.name, Storefront.region)
        .where(Storefront.business_id == business.id)
        .order_by(Storefront.code)
    ).all()
    assert [tuple(r) for r in stored] == [
        ("F1", "=1+2", "+SUM(A1)"),
        ("F2", "@x", "-2+3"),
        ("F3", '=HYPERLINK("http://x")', "Tab"),
    ]


@pytest.mark.parametrize(
    "data",
    [
        "\ufeffcode,name,region\r\nM,Main Street,North\r\n\r\n,,\r\n\r\n".encode(),
        b"code,name,region\rM,Main Street,North\r",
        b'code,name,region\n"M","Main\nStreet",North',
    ],
    ids=["bom-crlf-blank-lines", "cr-only", "quoted-newline-no-final-newline"],
)
def test_csv_dialect_details(engine: Engine, business: Business, settings: Settings, data: bytes) -> None:
    result = run(engine, business, settings, "storefronts", data)
    assert (result.ok, result.rows, result.inserted) == (True, 1, 1), result.errors


# --- rejected files --------------------------------------------------------------------------------

SALES_HEADER = "order_id,order_date,customer_code,sku,quantity,unit_price,unit_cost,discount,status,sales_rep,storefront\n"
GOOD_SALE = "N1,2025-05-01,A1,P1,1,15,10,0,completed,ana,M\n"
NUMBERED_HEADER = SALES_HEADER.replace("\n", ",line_no\n")

ERROR_CASES = [
    # (id, entity, file content, expected text, (row, column) of the first error or None)
    (
        "missing column",
        "customers",
        "customer_code,name,customer_type\nA9,X,retail\n",
        "required column 'region' is missing",
        (1, "region"),
    ),
    (
        "unknown column",
        "products",
        "sku,name,category,unit_cost,unit_price,colour\nP9,X,Y,1,2,red\n",
        "unknown column 'colour'",
        (1, "colour"),
    ),
    (
        "unknown sku",
        "sales",
        SALES_HEADER + "N1,2025-05-01,A1,NOPE,1,15,10,0,completed,ana,M\n",
        "unknown sku 'nope'",
        (2, "sku"),
    ),
    (
        "unknown customer",
        "sales",
        SALES_HEADER + "N1,2025-05-01,Q7,P1,1,15,10,0,completed,ana,M\n",
        "unknown customer_code 'q7'",
        (2, "customer_code"),
    ),
    (
        "unknown storefront",
        "sales",
        SALES_HEADER + "N1,2025-05-01,A1,P1,1,15,10,0,completed,ana,X\n",
        "unknown storefront 'x'",
        (2, "storefront"),
    ),
    (
        "unknown order",
        "payments",
        "payment_id,order_id,paid_at,amount,method\nY9,O404,2025-01-05,10,card\n",
        "unknown order_id 'o404'",
        (2, "order_id"),
    ),
    (
        "unknown storefront inventory",
        "inventory",
        "storefront,sku,quantity,as_of\nZ,P1,3,2025-01-01\n",
        "import the storefronts file first",
        (2, "storefront"),
    ),
    (
        "bad number",
        "products",
        'sku,name,category,unit_cost,unit_price\nP9,X,Y,1,"12,50"\n',
        "'12,50' is not a number",
        (2, "unit_price"),
    ),
    (
        "bad number text",
        "sales",
        SALES_HEADER + "N1,2025-05-01,A1,P1,two,15,10,0,completed,ana,M\n",
        "'two' is not a number",
        (2, "quantity"),
    ),
    (
        "bad date",
        "sales",
        SALES_HEADER + "N1,31/01/2025,A1,P1,1,15,10,0,completed,ana,M\n",
        "'31/01/2025' is not a date",
        (2, "order_date"),
    ),
    (
        "bad datetime",
        "payments",
        "payment_id,order_id,paid_at,amount,method\nY9,O1,yesterday,10,card\n",
        "is not a date and time",
        (2, "paid_at"),
    ),
    (
        "negative inventory",
        "inventory",
        "storefront,sku,quantity,as_of\nM,P1,-1,2025-01-01\n",
        "'-1' is negative",
        (2, "quantity"),
    ),
    (
        "zero sales quantity",
        "sales",
        SALES_HEADER + "N1,2025-05-01,A1,P1,0,15,10,0,completed,ana,M\n",
        "quantity must be more than 0",
        (2, "quantity"),
    ),
    (
        "negative forecast",
        "forecasts",
        "cycle,customer_code,sku,sales_rep,quantity,submitted_at\n2025-01,A1,P1,ana,-2,2025-01-01\n",
        "is negative",
        (2, "quantity"),
    ),
    (
        "negative price",
        "products",
        "sku,name,category,unit_cost,unit_price\nP9,X,Y,1,-5\n",
        "'-5' is negative",
        (2, "unit_price"),
    ),
    (
        "negative amount",
        "payments",
        "payment_id,order_id,paid_at,amount,method\nY9,O1,2025-01-05,-10,card\n",
        "is negative",
        (2, "amount"),
    ),
    (
        "negative credit limit",
        "customers",
        "customer_code,name,customer_type,region,credit_limit\nA9,X,retail,N,-1\n",
        "is negative",
        (2, "credit_limit"),
    ),
    (
        "discount above 1",
        "sales",
        SALES_HEADER + "N1,2025-05-01,A1,P1,1,15,10,1.5,completed,ana,M\n",
        "outside 0–1",
        (2, "discount"),
    ),
    (
        "too many decimals",
        "products",
        "sku,name,category,unit_cost,unit_price\nP9,X,Y,1.1234567,2\n",
        "more than 6 decimals",
        (2, "unit_cost"),
    ),
    (
        "duplicate key",
        "customers",
        "customer_code,name,customer_type,region\nA9,X,retail,N\nA8,Y,retail,N\nA9,Z,retail,N\n",
        "duplicate of row 2",
        (4, "customer_code"),
    ),
    (
        "duplicate line_no",
        "sales",
        NUMBERED_HEADER
        + GOOD_SALE.replace("\n", ",1\n")
        + GOOD_SALE.replace("P1", "P2").replace("\n", ",1\n"),
        "duplicate of row 2: order 'n1' has line_no 1 twice",
        (3, "line_no"),
    ),
    (
        "line_no not a whole number",
        "sales",
        NUMBERED_HEADER + GOOD_SALE.replace("\n", ",1.5\n"),
        "'1.5' is not a line number; write a whole number from 1 to 999,999,999",
        (2, "line_no"),
    ),
    (
        "line_no zero",
        "sales",
        NUMBERED_HEADER + GOOD_SALE.replace("\n", ",0\n"),
        "is not a line number",
        (2, "line_no"),
    ),
    (
        "line_no empty",
        "sales",
        NUMBERED_HEADER + GOOD_SALE.replace("\n", ",\n"),
        "every line needs a line_no",
        (2, "line_no"),
    ),
    (
        "order header differs",
        "sales",
        SALES_HEADER + GOOD_SALE + "N1,2025-05-02,A1,P2,1,15,10,0,completed,ana,M\n",
        "differs from row 2",
        (3, "order_date"),
    ),
    (
        "bad enum",
        "customers",
        "customer_code,name,customer_type,region\nA9,X,vip,N\n",
        "'vip' is not one of: retail, wholesale",
        (2, "customer_type"),
    ),
    (
        "bad status",
        "sales",
        SALES_HEADER + "N1,2025-05-01,A1,P1,1,15,10,0,paid,ana,M\n",
        "is not one of: draft, completed",
        (2, "status"),
    ),
    (
        "bad method",
        "payments",
        "payment_id,order_id,paid_at,amount,method\nY9,O1,2025-01-05,10,cheque\n",
        "is not one of: cash, card",
        (2, "method"),
    ),
    (
        "bad active",
        "customers",
        "customer_code,name,customer_type,region,active\nA9,X,retail,N,maybe\n",
        "is not true or false",
        (2, "active"),
    ),
    (
        "bad cycle",
        "forecasts",
        "cycle,customer_code,sku,sales_rep,quantity,submitted_at\n2025-13,A1,P1,ana,2,2025-01-01\n",
        "is not a cycle",
        (2, "cycle"),
    ),
    ("empty required", "storefronts", "code,name,region\nM2,,North\n", "a value is required", (2, "name")),
    (
        "text too long",
        "storefronts",
        "code,name,region\n" + "X" * 65 + ",N,R\n",
        "at most 64 are allowed",
        (2, "code"),
    ),
    ("empty file", "customers", "", "the file has no data rows", (0, "")),
    (
        "header only",
        "customers",
        "customer_code,name,customer_type,region\n",
        "the file has no data rows",
        (0, ""),
    ),
    ("blank lines only", "customers", "\n\n\n", "the file has no data rows", (0, "")),
    ("semicolons", "storefronts", "code;name;region\nM;Main;North\n", "separated by ';'", (1, "")),
    (
        "extra values",
        "storefronts",
        "code,name,region\nM2,Main,North,surplus\n",
        "values in 4 columns",
        (2, ""),
    ),
    (
        "bad encoding",
        "storefronts",
        "code,name,region\nM2,Caf\xe9,North\n".encode("latin-1"),
        "save it as 'csv utf-8'",
        (2, ""),
    ),
    (
        "utf-16",
        "storefronts",
        "code,name,region\nM2,Main,North\n".encode("utf-16"),
        "not utf-8 text",
        (1, ""),
    ),
]


@pytest.mark.parametrize(
    ("entity", "content", "expected", "first"), [c[1:] for c in ERROR_CASES], ids=[c[0] for c in ERROR_CASES]
)
def test_rejected_file_changes_nothing(
    engine: Engine,
    loaded: Business,
    settings: Settings,
    session: Session,
    entity: str,
    content: str | bytes,
    expected: str,
    first: tuple[int, str],
) -> None:
    before, version = table_counts(session), data_version(session, loaded)
    result = run(engine, loaded, settings, entity, content, username="ana")
    assert not result.ok
    assert expected.lower() in everything(result), result.errors
    assert (result.errors[0].row, result.errors[0].column) == first
    assert result.message.startswith("Rejected: ") and result.message.endswith("nothing was imported.")
    assert (result.inserted, result.updated, result.unchanged) == (0, 0, 0)
    assert table_counts(session) == before
    assert data_version(session, loaded) == version
    batch = session.scalars(
        select(ImportBatch)
        .where(ImportBatch.business_id == loaded.id)
        .order_by(ImportBatch.id.desc())
        .limit(1)
    ).one()
    assert (batch.status, batch.error_count, batch.username) == ("rejected", len(result.errors), "ana")


@pytest.mark.parametrize("filename", ["customers.txt", "customers.xls", "customers", "customers.csv.zip"])
def test_wrong_file_type(
    engine: Engine, loaded: Business, settings: Settings, session: Session, filename: str
) -> None:
    before = table_counts(session)
    result = run(engine, loaded, settings, "customers", (TINY_DIR / "customers.csv").read_bytes(), filename)
    assert not result.ok
    assert "wrong file type" in result.message.lower() and ".csv and .xlsx" in result.message
    assert table_counts(session) == before


def test_every_bad_row_is_reported(engine: Engine, loaded: Business, settings: Settings) -> None:
    text = "customer_code,name,customer_type,region,credit_limit\nA9,,vip,N,x\nA8,ok,retail,N,1\nA7,X,retail,,-1\n"
    result = run(engine, loaded, settings, "customers", text)
    assert result.message == "Rejected: 2 rows have problems; nothing was imported."
    assert [(e.row, e.column) for e in result.errors] == [
        (2, "name"),
        (2, "customer_type"),
        (2, "credit_limit"),
        (4, "region"),
        (4, "credit_limit"),
    ]


def test_error_list_is_capped_but_counted(engine: Engine, loaded: Business, settings: Settings) -> None:
    bad = MAX_REPORTED_ERRORS + 500
    text = "code,name,region\n" + "".join(f"S{i},,North\n" for i in range(bad))
    result = run(engine, loaded, settings, "storefronts", text)
    assert len(result.errors) == MAX_REPORTED_ERRORS + 1
    assert result.errors[-1] == RowError(0, "", "and 500 more problems not listed")
    assert result.message == f"Rejected: {bad:,} rows have problems; nothing was imported."


def test_references_resolve_within_the_business_only(
    engine: Engine, loaded: Business, settings: Settings, session: Session
) -> None:
    other = new_business(engine, "Other")
    assert run(
        engine, other, settings, "customers", "customer_code,name,customer_type,region\nZZ,Zed,retail,N\n"
    ).ok
    assert run(engine, other, settings, "products", "sku,name,category,unit_cost,unit_price\nPX,X,Y,1,2\n").ok
    before = table_counts(session)
    result = run(
        engine, loaded, settings, "sales", SALES_HEADER + "N1,2025-05-01,ZZ,PX,1,15,10,0,completed,ana,M\n"
    )
    assert not result.ok
    assert [(e.row, e.column) for e in result.errors] == [(2, "customer_code"), (2, "sku")]
    assert "no such customer in this business" in result.errors[0].reason
    assert table_counts(session) == before


def test_size_limit_is_checked_before_parsing(engine: Engine, loaded: Business, settings: Settings) -> None:
    small = settings.with_changes(max_upload_bytes=1024 * 1024)
    data = b"code,name,region\n" + b"\xff" * (1024 * 1024 + 512 * 1024)  # not even UTF-8: never parsed
    result = run(engine, loaded, small, "storefronts", data)
    assert not result.ok
    assert (
        result.message == "Rejected: the file is 1.5 MB, over the 1.0 MB upload limit "
        "(set TALLYBOARD_MAX_UPLOAD_MB to raise it); nothing was imported."
    )


# --- Excel files -----------------------------------------------------------------------------------


def workbook_bytes(rows: list[list[Any]]) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def test_xlsx_with_typed_cells(
    engine: Engine, loaded: Business, settings: Settings, session: Session
) -> None:
    products = workbook_bytes(
        [["SKU", "Name", "Category", "Unit_Cost", "Unit_Price"], [1001, "Numbered", "X", 2, 0.1 + 0.2]]
    )
    result = run(engine, loaded, settings, "products", products, "products.xlsx")
    assert (result.ok, result.inserted) == (True, 1), result.errors
    numbered = session.scalars(
        select(Product).where(Product.business_id == loaded.id, Product.sku == "1001")
    ).one()
    assert (numbered.unit_cost_micros, numbered.unit_price_micros) == (2_000000, 300_000)

    sales = workbook_bytes(
        [
            SALES_HEADER.strip().split(","),
            ["X1", dt.datetime(2025, 6, 1), "A1", 1001, 4, 2.5, None, 0.25, "Completed", "ana", "M"],
            ["X1", dt.date(2025, 6, 1), "A1", "P1", 1.5, 15, 10, 0, "completed", "ana", "M"],
            [None, None, None, None, None, None, None, None, None, None, None],
        ]
    )
    result = run(engine, loaded, settings, "sales", sales, "sales.xlsx")
    assert (result.ok, result.rows, result.inserted) == (True, 2, 2), result.errors
    x1 = session.scalars(select(Sale).where(Sale.business_id == loaded.id, Sale.order_id == "X1")).one()
    assert (x1.order_date, x1.status) == (dt.date(2025, 6, 1), "completed")
    assert (x1.net_micros, x1.cost_micros) == (7_500000 + 22_500000, 8_000000 + 15_000000)

    payments = workbook_bytes(
        [
            ["payment_id", "order_id", "paid_at", "amount", "method"],
            ["XP", "X1", dt.datetime(2025, 6, 2, 14, 30), 30, "card"],
        ]
    )
    assert run(engine, loaded, settings, "payments", payments, "payments.xlsx").ok
    paid = session.scalars(
        select(Payment).where(Payment.business_id == loaded.id, Payment.payment_id == "XP")
    ).one()
    assert (paid.paid_at, paid.amount_micros) == (dt.datetime(2025, 6, 2, 14, 30), 30_000000)

    forecasts = workbook_bytes(
        [
            ["cycle", "customer_code", "sku", "sales_rep", "quantity", "submitted_at"],
            [dt.datetime(2025, 7, 1), "A1", "P1", "ana", 3, dt.date(2025, 6, 20)],
        ]
    )
    assert run(engine, loaded, settings, "forecasts", forecasts, "forecasts.xlsx").ok
    forecast = session.scalars(select(Forecast).where(Forecast.business_id == loaded.id)).one()
    assert (forecast.cycle, forecast.submitted_at) == ("2025-07", dt.datetime(2025, 6, 20))

    # The same workbook again: nothing changes.
    assert run(engine, loaded, settings, "sales", sales, "sales.xlsx").unchanged == 2


def test_xlsx_errors_name_rows_and_columns(
    engine: Engine, loaded: Business, settings: Settings, session: Session
) -> None:
    before = table_counts(session)
    sales = workbook_bytes(
        [
            SALES_HEADER.strip().split(","),
            ["X1", 45000, "A1", "P1", 1, 15, 10, 0, "completed", "ana", "M"],
            ["X2", dt.date(2025, 6, 1), "A1", "P1", True, 15, 10, 0, "completed", "ana", "M"],
        ]
    )
    result = run(engine, loaded, settings, "sales", sales, "sales.xlsx")
    assert not result.ok
    assert [(e.row, e.column) for e in result.errors] == [(2, "order_date"), (3, "quantity")]
    assert table_counts(session) == before


def test_xlsx_that_is_not_a_zip(engine: Engine, loaded: Business, settings: Settings) -> None:
    result = run(
        engine, loaded, settings, "customers", (TINY_DIR / "customers.csv").read_bytes(), "customers.xlsx"
    )
    assert not result.ok
    assert result.message == "Rejected: the file is not a valid Excel (.xlsx) file; nothing was imported."


def test_zip_that_is_not_a_workbook(engine: Engine, loaded: Business, settings: Settings) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hello.txt", "hello")
    result = run(engine, loaded, settings, "customers", buffer.getvalue(), "customers.xlsx")
    assert "not a valid Excel" in result.message


def test_xlsx_that_would_expand_too_far_is_refused_unopened(
    engine: Engine, loaded: Business, settings: Settings, session: Session
) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/worksheets/sheet1.xml", b"<" + b" " * (3 * 1024 * 1024))
    data = buffer.getvalue()
    assert len(data) < 20_000
    limited = settings.with_changes(max_xlsx_expanded_bytes=2 * 1024 * 1024)
    before = table_counts(session)
    result = run(engine, loaded, limited, "customers", data, "customers.xlsx")
    assert not result.ok
    assert (
        "would expand to 3.0 MB, over the 2.0 MB limit (set TALLYBOARD_MAX_XLSX_EXPANDED_MB to raise it)"
        in (result.message)
    )
    assert table_counts(session) == before


def test_entities_are_the_public_list() -> None:
    assert ENTITIES == ("customers", "products", "storefronts", "sales", "payments", "forecasts", "inventory")
    with pytest.raises(ValueError, match="unknown entity"):
        import_file(None, 1, "orders", "x.csv", b"", None)  # type: ignore[arg-type]


BatchLine = tuple[str, str, int, str]  # order_id, sku, quantity, unit_price


def test_many_batches_match_an_independent_total(
    engine: Engine, loaded: Business, settings: Settings, session: Session
) -> None:
    """More lines than one write batch and more orders than one read chunk, checked against plain sums."""
    rows: list[BatchLine] = [
        (f"B{order:05d}", sku, 1 + order % 7, f"{order % 50}.25")
        for order in range(4_000)
        for sku in ("P1", "P2")[: 1 + order % 2]
    ]
    assert len(rows) > BATCH_ROWS

    def csv_text(rows: list[BatchLine]) -> str:
        return SALES_HEADER + "".join(
            f"{o},2025-05-01,A1,{s},{q},{p},1,0.1,completed,ana,M\n" for o, s, q, p in rows
        )

    def expected_net(rows: list[BatchLine]) -> int:
        return sum(round(q * Decimal(p) * Decimal("0.9") * 1_000_000) for _, _, q, p in rows)

    def stored_net() -> int:
        session.expire_all()
        ours = (Sale.business_id == loaded.id, Sale.order_id.like("B%"))
        order_total = session.scalar(select(func.sum(Sale.net_micros)).where(*ours))
        line_total = session.scalar(select(func.sum(SaleLine.net_micros)).join(Sale).where(*ours))
        assert order_total == line_total
        return int(order_total or 0)

    seen: list[tuple[int, int]] = []
    result = run(engine, loaded, settings, "sales", csv_text(rows), progress=lambda d, t: seen.append((d, t)))
    assert (result.ok, result.inserted) == (True, len(rows)), result.errors
    assert len(seen) > 3 and seen[-1][0] == seen[-1][1]
    assert stored_net() == expected_net(rows)

    # Quantities change on orders ending in 7; orders ending in 99 are left out of the second file.
    changed = [(o, s, q + 1 if o.endswith("7") else q, p) for o, s, q, p in rows if not o.endswith("99")]
    result = run(engine, loaded, settings, "sales", csv_text(changed))
    bumped = sum(1 for o, *_ in changed if o.endswith("7"))
    assert (result.inserted, result.updated, result.unchanged) == (0, bumped, len(changed) - bumped)
    assert "removed" not in result.message  # an order left out of a file stays as it was
    assert stored_net() == expected_net([r for r in rows if r[0].endswith("99")] + changed)
