"""How fresh a business's data is: version, last change, rows per entity, and its import history."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.models import (
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

# What the Data page counts, in import order: (label, model).
COUNTED: tuple[tuple[str, Any], ...] = (
    ("Customers", Customer),
    ("Products", Product),
    ("Storefronts", Storefront),
    ("Orders", Sale),
    ("Sales lines", SaleLine),
    ("Payments", Payment),
    ("Forecasts", Forecast),
    ("Inventory levels", InventoryLevel),
)


@dataclass(frozen=True)
class Freshness:
    """`updated_at` is naive UTC (None before the first import); `rows` maps label -> row count."""

    data_version: int
    updated_at: dt.datetime | None
    rows: dict[str, int]


@dataclass(frozen=True)
class ImportRecord:
    id: int
    created_at: dt.datetime
    entity: str
    filename: str
    status: str
    rows: int
    inserted: int
    updated: int
    unchanged: int
    error_count: int
    message: str
    username: str


def data_freshness(session: Session, business_id: int) -> Freshness:
    """Data version, last change and row counts per entity of one business (one query per entity)."""
    business = session.get(Business, business_id)
    if business is None:
        raise LookupError(f"No business with id {business_id}.")
    rows = {
        label: int(session.scalar(select(func.count(model.id)).where(model.business_id == business_id)) or 0)
        for label, model in COUNTED
    }
    return Freshness(int(business.data_version or 0), business.data_updated_at, rows)


def import_history(session: Session, business_id: int, *, limit: int = 50) -> list[ImportRecord]:
    """The business's newest import files first, accepted and rejected."""
    batches = session.scalars(
        select(ImportBatch)
        .where(ImportBatch.business_id == business_id)
        .order_by(ImportBatch.created_at.desc(), ImportBatch.id.desc())
        .limit(limit)
    ).all()
    return [
        ImportRecord(
            b.id,
            b.created_at,
            b.entity,
            b.filename,
            b.status,
            b.rows,
            b.inserted,
            b.updated,
            b.unchanged,
            b.error_count,
            b.message,
            b.username,
        )
        for b in batches
    ]
