"""The demo data generator: shape, exact money, determinism, one transaction, and the stories it tells."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, NamedTuple

import pandas as pd
import pytest
from sqlalchemy import Engine, exists, func, select
from sqlalchemy.orm import Session

from core.db import make_sessionmaker
from core.models import (
    AuditEvent,
    Business,
    Customer,
    Forecast,
    InventoryLevel,
    Payment,
    Product,
    Sale,
    SaleLine,
    Storefront,
)
from core.money import from_micros, line_cost_micros, line_net_micros
from ingest.demo import REGIONS, REPS, DemoSummary, has_data, load_demo

TODAY = dt.date(2026, 11, 21)
ROWS = 20_000


class Loaded(NamedTuple):
    summary: DemoSummary
    progress: list[tuple[int, int]]


def _code() -> str:
    return f"demo_{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def demo(engine: Engine) -> Loaded:
    calls: list[tuple[int, int]] = []
    summary = load_demo(engine, _code(), rows=ROWS, today=TODAY, progress=lambda d, t: calls.append((d, t)))
    return Loaded(summary, calls)


@pytest.fixture
def db(engine: Engine) -> Any:
    with make_sessionmaker(engine)() as session:
        yield session


def _frame(session: Session, query: Any) -> pd.DataFrame:
    result = session.execute(query)
    return pd.DataFrame(result.all(), columns=list(result.keys()))


def _count(session: Session, model: Any, business_id: int) -> int:
    return (
        session.scalar(select(func.count()).select_from(model).where(model.business_id == business_id)) or 0
    )


def test_summary_matches_the_database(demo: Loaded, db: Session) -> None:
    s = demo.summary
    assert (s.customers, s.products, s.storefronts, s.lines, s.inventory) == (500, 300, 3, ROWS, 900)
    assert 190 <= s.audit_events <= 210
    for model, expected in (
        (Customer, s.customers),
        (Product, s.products),
        (Storefront, s.storefronts),
        (Sale, s.sales),
        (SaleLine, s.lines),
        (Payment, s.payments),
        (Forecast, s.forecasts),
        (InventoryLevel, s.inventory),
        (AuditEvent, s.audit_events),
    ):
        assert _count(db, model, s.business_id) == expected, model.__name__
    assert s.seconds > 0


def test_business_is_created_with_demo_settings(demo: Loaded, db: Session) -> None:
    business = db.get(Business, demo.summary.business_id)
    assert business is not None
    assert (business.name, business.currency, business.timezone) == (
        "Demo Trading Co.",
        "EUR",
        "Europe/Berlin",
    )
    assert business.data_version == 1
    assert business.data_updated_at is not None


def test_customers_products_storefronts_have_the_asked_shape(demo: Loaded, db: Session) -> None:
    bid = demo.summary.business_id
    customers = _frame(
        db,
        select(
            Customer.name,
            Customer.customer_type,
            Customer.region,
            Customer.credit_limit_micros,
            Customer.email,
            Customer.active,
        ).where(Customer.business_id == bid),
    )
    assert customers["customer_type"].value_counts().to_dict() == {"retail": 400, "wholesale": 100}
    assert sorted(customers["region"].unique()) == sorted(REGIONS)
    assert customers["name"].is_unique
    assert (customers["credit_limit_micros"] > 0).all()
    by_type = customers.groupby("customer_type")["credit_limit_micros"].median()
    assert by_type["wholesale"] > 3 * by_type["retail"]
    names = " ".join(customers["name"])
    assert "€" in names and "₱" in names and "ü" in names and "ø" in names
    assert customers["email"].map(lambda e: e.isascii() and "@" in e).all()
    assert 0.85 < customers["active"].mean() < 1

    products = _frame(
        db,
        select(
            Product.category, Product.unit_cost_micros, Product.unit_price_micros, Product.reorder_level
        ).where(Product.business_id == bid),
    )
    assert products["category"].value_counts().tolist() == [20] * 15
    margin = 1 - products["unit_cost_micros"] / products["unit_price_micros"]
    loss_makers = (margin < 0).sum()
    assert 1 <= loss_makers <= 5
    assert margin[margin >= 0].between(0.0999, 0.6001).all()
    assert (products["reorder_level"] > 0).all()
    assert (products["unit_price_micros"] % 10_000 == 0).all()  # whole cents

    storefronts = db.execute(
        select(Storefront.code, Storefront.region).where(Storefront.business_id == bid)
    ).all()
    assert len(storefronts) == 3
    assert {region for _, region in storefronts} <= set(REGIONS)


def test_every_sale_total_equals_the_sum_of_its_lines(demo: Loaded, db: Session) -> None:
    bid = demo.summary.business_id
    lines = (
        select(
            SaleLine.sale_id,
            func.sum(SaleLine.net_micros).label("net"),
            func.sum(SaleLine.cost_micros).label("cost"),
            func.count().label("n"),
        )
        .where(SaleLine.business_id == bid)
        .group_by(SaleLine.sale_id)
        .subquery()
    )
    query = (
        select(func.count())
        .select_from(Sale)
        .outerjoin(lines, lines.c.sale_id == Sale.id)
        .where(Sale.business_id == bid)
    )
    mismatched = query.where(
        (lines.c.net.is_(None)) | (lines.c.net != Sale.net_micros) | (lines.c.cost != Sale.cost_micros)
    )
    assert db.scalar(mismatched) == 0
    per_order = db.execute(select(lines.c.n, func.count()).group_by(lines.c.n)).all()
    assert {n for n, _ in per_order} == {1, 2, 3, 4, 5, 6}


def test_line_money_follows_the_spec_exactly(demo: Loaded, db: Session) -> None:
    rows = db.execute(
        select(
            SaleLine.quantity,
            SaleLine.unit_price_micros,
            SaleLine.unit_cost_micros,
            SaleLine.discount,
            SaleLine.net_micros,
            SaleLine.cost_micros,
        ).where(SaleLine.business_id == demo.summary.business_id)
    ).all()
    assert len(rows) == ROWS
    for quantity, price, cost, discount, net, line_cost in rows:
        q = Decimal(str(quantity))
        assert line_net_micros(q, from_micros(price), Decimal(str(discount))) == net
        assert line_cost_micros(q, from_micros(cost)) == line_cost
    discounts = Counter(round(float(d), 2) for *_, d, _, _ in rows)
    assert discounts[0.0] > ROWS / 2 and discounts[0.05] > 0 and discounts[0.1] > 0 and discounts[0.15] > 0


def test_no_product_twice_in_an_order(demo: Loaded, db: Session) -> None:
    duplicates = (
        select(SaleLine.sale_id, SaleLine.product_id)
        .where(SaleLine.business_id == demo.summary.business_id)
        .group_by(SaleLine.sale_id, SaleLine.product_id)
        .having(func.count() > 1)
    )
    assert db.execute(duplicates).first() is None


def test_progress_is_reported_up_to_the_total(demo: Loaded) -> None:
    done = [d for d, _ in demo.progress]
    assert done == sorted(done)
    assert demo.progress[-1] == (ROWS, ROWS)
    assert {t for _, t in demo.progress} == {ROWS}


def test_statuses_reps_and_storefronts_are_mixed(demo: Loaded, db: Session) -> None:
    sales = _frame(
        db,
        select(Sale.status, Sale.sales_rep, Sale.storefront_id, Customer.region)
        .join(Customer, Customer.id == Sale.customer_id)
        .where(Sale.business_id == demo.summary.business_id),
    )
    share = sales["status"].value_counts(normalize=True)
    assert 0.90 < share["completed"] < 0.96
    for status in ("draft", "void", "refunded"):
        assert 0.005 < share[status] < 0.06, status
    assert sorted(sales["sales_rep"].unique()) == sorted(REPS)
    assert sales["storefront_id"].nunique() == 3


def test_sales_span_three_years_ending_today_with_season_and_growth(demo: Loaded, db: Session) -> None:
    bid = demo.summary.business_id
    first, last = db.execute(
        select(func.min(Sale.order_date), func.max(Sale.order_date)).where(Sale.business_id == bid)
    ).one()
    assert dt.date(2023, 11, 22) <= first <= dt.date(2023, 11, 25)
    assert TODAY - dt.timedelta(days=3) <= last <= TODAY
    sales = _frame(
        db,
        select(Sale.order_date, Sale.net_micros).where(Sale.business_id == bid, Sale.status == "completed"),
    )
    sales["order_date"] = pd.to_datetime(sales["order_date"])
    by_month = sales.groupby(sales["order_date"].dt.month)["net_micros"].sum()
    assert by_month[12] > 1.4 * by_month[7]
    assert by_month[12] == by_month.max()
    year_ago = pd.Timestamp(TODAY - dt.timedelta(days=365))
    this_year = sales.loc[sales["order_date"] > year_ago, "net_micros"].sum()
    last_year = sales.loc[
        (sales["order_date"] <= year_ago) & (sales["order_date"] > year_ago - pd.Timedelta(days=365)),
        "net_micros",
    ].sum()
    assert 1.03 < this_year / last_year < 1.35
    weekday = sales.groupby(sales["order_date"].dt.day_of_week).size()
    assert weekday[6] < 0.6 * weekday[4]  # Sundays are quiet


def test_payments_tell_the_usual_stories(demo: Loaded, db: Session) -> None:
    bid = demo.summary.business_id
    payments = _frame(
        db,
        select(
            Payment.sale_id,
            Payment.paid_at,
            Payment.amount_micros,
            Payment.method,
            Sale.status,
            Sale.order_date,
            Sale.net_micros,
        )
        .join(Sale, Sale.id == Payment.sale_id)
        .where(Payment.business_id == bid),
    )
    assert set(payments["method"]) == {"cash", "card", "bank_transfer", "mobile", "credit_note"}
    assert "draft" not in set(payments["status"])
    assert (payments["status"] == "void").sum() > 0  # taken, then voided: the reports must ignore these
    assert (payments["paid_at"].dt.date <= TODAY).all()
    # Settling payments pay the exact net (which may hold fractions of a cent), so nothing phantom stays open.
    assert (payments["amount_micros"] > 0).all()
    delay = (payments["paid_at"].dt.normalize() - pd.to_datetime(payments["order_date"])).dt.days
    assert (delay >= 0).all()
    assert (delay > 30).sum() > 0  # late payers
    refunded = payments[payments["status"] == "refunded"]
    assert (refunded["method"] == "credit_note").sum() > 0

    completed = payments[payments["status"] == "completed"]
    paid = completed.groupby("sale_id").agg(paid=("amount_micros", "sum"), net=("net_micros", "first"))
    assert (paid["paid"] <= paid["net"]).all()
    assert (paid["paid"] < paid["net"]).sum() > 0  # partly paid
    assert (paid["paid"] == paid["net"]).mean() > 0.8  # mostly settled to the micro

    recent = db.scalar(
        select(func.count())
        .select_from(Sale)
        .where(
            Sale.business_id == bid,
            Sale.status == "completed",
            Sale.order_date > TODAY - dt.timedelta(days=30),
            ~exists().where(Payment.sale_id == Sale.id),
        )
    )
    assert recent and recent > 0  # unpaid recent sales


def test_some_wholesale_customers_are_over_their_credit_limit(demo: Loaded, db: Session) -> None:
    bid = demo.summary.business_id
    sales = _frame(
        db,
        select(Sale.id, Sale.customer_id, Sale.net_micros).where(
            Sale.business_id == bid, Sale.status == "completed"
        ),
    )
    payments = _frame(db, select(Payment.sale_id, Payment.amount_micros).where(Payment.business_id == bid))
    customers = _frame(
        db,
        select(Customer.id, Customer.customer_type, Customer.credit_limit_micros).where(
            Customer.business_id == bid
        ),
    )
    paid = payments.groupby("sale_id")["amount_micros"].sum()
    sales["outstanding"] = (sales["net_micros"] - sales["id"].map(paid).fillna(0)).clip(lower=0)
    outstanding = sales.groupby("customer_id")["outstanding"].sum()
    customers["outstanding"] = customers["id"].map(outstanding).fillna(0)
    over = customers[customers["outstanding"] > customers["credit_limit_micros"]]
    assert 1 <= len(over) <= 8
    assert set(over["customer_type"]) == {"wholesale"}


def test_forecasts_are_biased_late_missing_and_revised(demo: Loaded, db: Session) -> None:
    bid = demo.summary.business_id
    forecasts = _frame(
        db,
        select(
            Forecast.cycle,
            Forecast.customer_id,
            Forecast.product_id,
            Forecast.sales_rep,
            Forecast.quantity,
            Forecast.submitted_at,
        ).where(Forecast.business_id == bid),
    )
    assert sorted(forecasts["sales_rep"].unique()) == sorted(REPS)
    assert forecasts["cycle"].nunique() == 36
    assert (forecasts["submitted_at"].dt.date < TODAY).all()
    cycle_start = pd.to_datetime(forecasts["cycle"] + "-01")
    late = forecasts["submitted_at"] >= cycle_start
    assert 0.03 < late.mean() < 0.30
    key = ["cycle", "customer_id", "product_id"]
    submissions = forecasts.groupby(key).size()
    assert (submissions > 1).sum() > 0  # re-submissions
    assert (submissions <= 2).all()

    # Missing: a key account with forecasts before and after a cycle, but none in it.
    cycles = sorted(forecasts["cycle"].unique())
    per_customer = forecasts.groupby("customer_id")["cycle"].agg(set)
    gaps = sum(
        1
        for seen in per_customer
        for i, cycle in enumerate(cycles[1:-1], 1)
        if cycle not in seen and cycles[i - 1] in seen and cycles[i + 1] in seen
    )
    assert gaps > 0

    # Bias over the latest submissions against completed quantities, whole months before today's.
    latest = forecasts.sort_values("submitted_at").groupby(key).tail(1)
    latest = latest[latest["cycle"] < TODAY.strftime("%Y-%m")]
    lines = _frame(
        db,
        select(Sale.customer_id, SaleLine.product_id, Sale.order_date, SaleLine.quantity)
        .join(Sale, Sale.id == SaleLine.sale_id)
        .where(Sale.business_id == bid, Sale.status == "completed"),
    )
    lines["cycle"] = pd.to_datetime(lines["order_date"]).dt.strftime("%Y-%m")
    actual = lines.groupby(key)["quantity"].sum().rename("actual")
    merged = latest.join(actual, on=key).fillna({"actual": 0})
    bias = (merged["quantity"].sum() - merged["actual"].sum()) / merged["actual"].sum()
    assert 0.0 < bias < 0.35


def test_inventory_has_out_of_stock_and_low_items(demo: Loaded, db: Session) -> None:
    stock = _frame(
        db,
        select(
            InventoryLevel.storefront_id, InventoryLevel.quantity, InventoryLevel.as_of, Product.reorder_level
        )
        .join(Product, Product.id == InventoryLevel.product_id)
        .where(InventoryLevel.business_id == demo.summary.business_id),
    )
    assert len(stock) == 900 and set(stock["as_of"]) == {TODAY}
    out = stock["quantity"] == 0
    low = ~out & (stock["quantity"] <= stock["reorder_level"])
    assert 0.01 < out.mean() < 0.10
    assert 0.04 < low.mean() < 0.20
    assert (~out & ~low).mean() > 0.7


def test_audit_events_cover_logins_imports_exports_and_user_changes(demo: Loaded, db: Session) -> None:
    events = db.execute(
        select(AuditEvent.at, AuditEvent.event_type, AuditEvent.detail, AuditEvent.ip).where(
            AuditEvent.business_id == demo.summary.business_id
        )
    ).all()
    types = {e.event_type for e in events}
    assert {"login", "login_failed", "import", "export"} <= types
    assert any(t.startswith("user_") for t in types)
    assert all(isinstance(e.detail, dict) and e.ip.startswith("10.0.0.") for e in events)
    assert all(TODAY - dt.timedelta(days=181) <= e.at.date() < TODAY for e in events)


def test_same_seed_and_day_give_the_same_data(engine: Engine) -> None:
    def snapshot(code: str, seed: int) -> dict[str, Sequence[Any]]:
        summary = load_demo(engine, code, rows=3000, seed=seed, today=TODAY)
        bid = summary.business_id
        with make_sessionmaker(engine)() as s:
            return {
                "sales": s.execute(
                    select(
                        Sale.order_id,
                        Sale.order_date,
                        Sale.status,
                        Sale.net_micros,
                        Sale.cost_micros,
                        Sale.sales_rep,
                    )
                    .where(Sale.business_id == bid)
                    .order_by(Sale.order_id)
                ).all(),
                "lines": s.execute(
                    select(Sale.order_id, Product.sku, SaleLine.quantity, SaleLine.net_micros)
                    .join(Sale, Sale.id == SaleLine.sale_id)
                    .join(Product, Product.id == SaleLine.product_id)
                    .where(SaleLine.business_id == bid)
                    .order_by(Sale.order_id, Product.sku)
                ).all(),
                "payments": s.execute(
                    select(Payment.payment_id, Payment.paid_at, Payment.amount_micros, Payment.method)
                    .where(Payment.business_id == bid)
                    .order_by(Payment.payment_id)
                ).all(),
                "customers": s.execute(
                    select(Customer.customer_code, Customer.name, Customer.credit_limit_micros)
                    .where(Customer.business_id == bid)
                    .order_by(Customer.customer_code)
                ).all(),
                "forecasts": s.execute(
                    select(
                        Forecast.cycle,
                        Customer.customer_code,
                        Product.sku,
                        Forecast.quantity,
                        Forecast.submitted_at,
                    )
                    .join(Customer, Customer.id == Forecast.customer_id)
                    .join(Product, Product.id == Forecast.product_id)
                    .where(Forecast.business_id == bid)
                    .order_by(Forecast.cycle, Customer.customer_code, Product.sku, Forecast.submitted_at)
                ).all(),
            }

    first = snapshot(_code(), 7)
    second = snapshot(_code(), 7)
    other = snapshot(_code(), 8)
    assert len(first["sales"]) > 900
    assert first == second
    assert first["sales"] != other["sales"]


def test_loading_twice_is_refused_and_has_data_says_why(engine: Engine, demo: Loaded, db: Session) -> None:
    code = db.scalar(select(Business.code).where(Business.id == demo.summary.business_id))
    assert code is not None
    assert has_data(engine, code)
    assert not has_data(engine, _code())
    with pytest.raises(ValueError, match=rf"Business '{code}' already has data"):
        load_demo(engine, code, rows=100, today=TODAY)
    assert _count(db, Sale, demo.summary.business_id) == demo.summary.sales


def test_an_existing_empty_business_is_filled(engine: Engine, business: Business) -> None:
    assert not has_data(engine, business.code)
    summary = load_demo(engine, business.code, rows=500, today=TODAY)
    assert summary.business_id == business.id and summary.lines == 500
    assert has_data(engine, business.code)
    with make_sessionmaker(engine)() as s:
        reloaded = s.get(Business, business.id)
        assert reloaded is not None
        assert reloaded.name == business.name  # not renamed
        assert reloaded.data_version == business.data_version + 1


def test_a_business_with_other_data_is_refused(engine: Engine, business: Business) -> None:
    with make_sessionmaker(engine)() as s:
        s.add(
            Customer(
                business_id=business.id,
                customer_code="X1",
                name="Existing",
                customer_type="retail",
                region="North",
            )
        )
        s.commit()
    with pytest.raises(ValueError, match="already has data"):
        load_demo(engine, business.code, rows=100, today=TODAY)


def test_a_failure_leaves_nothing_behind(engine: Engine) -> None:
    code = _code()

    def stop(done: int, total: int) -> None:
        raise RuntimeError("stopped")

    with pytest.raises(RuntimeError, match="stopped"):
        load_demo(engine, code, rows=2000, today=TODAY, progress=stop)
    with make_sessionmaker(engine)() as s:
        assert s.scalar(select(Business.id).where(Business.code == code)) is None
    assert not has_data(engine, code)


def test_later_inserts_get_fresh_ids(engine: Engine, demo: Loaded) -> None:
    bid = demo.summary.business_id
    with make_sessionmaker(engine)() as s:
        customer_id = s.scalar(select(Customer.id).where(Customer.business_id == bid).limit(1))
        product_id = s.scalar(select(Product.id).where(Product.business_id == bid).limit(1))
        assert customer_id is not None and product_id is not None
        sale = Sale(
            business_id=bid,
            order_id="EXTRA-1",
            order_date=TODAY,
            customer_id=customer_id,
            status="draft",
            net_micros=0,
            cost_micros=0,
        )
        s.add(sale)
        s.flush()
        s.add(
            SaleLine(
                business_id=bid,
                sale_id=sale.id,
                line_no=1,
                product_id=product_id,
                quantity=1,
                unit_price_micros=0,
                unit_cost_micros=0,
                discount=0,
                net_micros=0,
                cost_micros=0,
            )
        )
        s.add(
            Payment(
                business_id=bid,
                payment_id="EXTRA-P1",
                sale_id=sale.id,
                paid_at=dt.datetime.combine(TODAY, dt.time()),
                amount_micros=0,
                method="cash",
            )
        )
        s.flush()
        s.rollback()


def test_today_defaults_to_the_current_date(engine: Engine) -> None:
    summary = load_demo(engine, _code(), rows=300)
    with make_sessionmaker(engine)() as s:
        last = s.scalar(select(func.max(Sale.order_date)).where(Sale.business_id == summary.business_id))
    assert last is not None and dt.date.today() - dt.timedelta(days=30) <= last <= dt.date.today()


@pytest.mark.parametrize("rows", [0, -5])
def test_rows_must_be_positive(engine: Engine, rows: int) -> None:
    with pytest.raises(ValueError, match="rows"):
        load_demo(engine, _code(), rows=rows)
