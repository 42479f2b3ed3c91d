"""dimension_values: the filter choices of one business, from its snapshot."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from analytics.dimensions import dimension_values
from core.settings import Settings
from snapshots.store import SnapshotStore
from tests.conftest import new_business
from tests.factories import insert_tiny


def test_tiny_business_values_and_labels(engine: Engine, settings: Settings) -> None:
    business = new_business(engine)
    insert_tiny(engine, business.id)
    values = dimension_values(SnapshotStore(engine, settings.snapshot_dir).current(business.id))
    assert list(values["region"]) == ["East", "North", "South"]
    assert list(values["customer_type"]) == ["retail", "wholesale"]
    assert values["customer_type"] == {"retail": "Retail", "wholesale": "Wholesale"}  # codes in words
    assert values["payment_method"]["bank_transfer"] == "Bank transfer"
    assert values["customer"]["A1"] == "A1 — Alma Café"
    assert list(values["customer"]) == ["A1", "B2", "C3", "D4"]
    assert values["storefront"] == {"M": "M — Main Street"}
    assert set(values["sales_rep"]) >= {"ana"}
    assert all(list(v) == sorted(v) for v in values.values())


def test_values_never_cross_businesses(engine: Engine, settings: Settings) -> None:
    full, empty = new_business(engine), new_business(engine)
    insert_tiny(engine, full.id)
    values = dimension_values(SnapshotStore(engine, settings.snapshot_dir).current(empty.id))
    assert values == {dim: {} for dim in values}
    assert set(values) == {
        "region",
        "category",
        "storefront",
        "customer_type",
        "sales_rep",
        "customer",
        "product",
        "payment_method",
    }


def test_unknown_dimension_is_refused(engine: Engine, settings: Settings) -> None:
    business = new_business(engine)
    with pytest.raises(KeyError, match="colour"):
        dimension_values(SnapshotStore(engine, settings.snapshot_dir).current(business.id), ("colour",))
