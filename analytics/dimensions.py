"""The values each dimension filter can take in one business's data, for filter pickers."""

from __future__ import annotations

from analytics.labels import CODE_FILTERS
from analytics.labels import label as code_label
from snapshots.store import Snapshot

# dimension -> SQL over the snapshot giving (value, label) rows in display order.
_QUERIES: dict[str, str] = {
    # Customer regions (sales) and storefront regions (stock) share one filter.
    "region": "SELECT DISTINCT region, region FROM ("
    "SELECT region FROM customers UNION SELECT storefront_region FROM storefronts) "
    "WHERE region IS NOT NULL AND region <> '' ORDER BY 1",
    "category": "SELECT DISTINCT category, category FROM products WHERE category IS NOT NULL "
    "AND category <> '' ORDER BY 1",
    "storefront": "SELECT storefront_code, storefront_code || ' — ' || storefront_name FROM storefronts "
    "ORDER BY 1",
    "customer_type": "SELECT DISTINCT customer_type, customer_type FROM customers "
    "WHERE customer_type IS NOT NULL ORDER BY 1",
    "sales_rep": "SELECT DISTINCT sales_rep, sales_rep FROM ("
    "SELECT sales_rep FROM sales UNION SELECT sales_rep FROM forecasts) "
    "WHERE sales_rep IS NOT NULL AND sales_rep <> '' ORDER BY 1",
    "customer": "SELECT customer_code, customer_code || ' — ' || customer_name FROM customers ORDER BY 1",
    "product": "SELECT sku, sku || ' — ' || product_name FROM products ORDER BY 1",
    "payment_method": "SELECT DISTINCT method, method FROM payments WHERE method IS NOT NULL ORDER BY 1",
}

DIMENSION_LABELS: dict[str, str] = {
    "region": "Region",
    "category": "Category",
    "storefront": "Storefront",
    "customer_type": "Customer type",
    "sales_rep": "Sales rep",
    "customer": "Customer",
    "product": "Product",
    "payment_method": "Payment method",
}


def dimension_values(
    snapshot: Snapshot, dimensions: tuple[str, ...] = tuple(_QUERIES)
) -> dict[str, dict[str, str]]:
    """For each dimension, its values in the snapshot's business mapped to a label, in display order.

    Values are what ReportParams.filters expect (codes for storefront, customer and product;
    names otherwise); labels add the name to a code ("C001 — Alpha Ltd") or say a code in words
    ("bank_transfer" -> "Bank transfer"). Empty when no data.
    """
    unknown = [d for d in dimensions if d not in _QUERIES]
    if unknown:
        raise KeyError(f"Unknown dimension {unknown[0]!r}; dimensions are: {', '.join(_QUERIES)}.")
    db = snapshot.connect()
    try:
        out: dict[str, dict[str, str]] = {}
        for dim in dimensions:
            rows = db.execute(_QUERIES[dim]).fetchall()
            out[dim] = {
                str(value): str(
                    code_label(dim, value) if dim in CODE_FILTERS else label if label is not None else value
                )
                for value, label in rows
            }
        return out
    finally:
        db.close()
