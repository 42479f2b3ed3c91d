"""How codes read for people: `bank_transfer` is "Bank transfer", `wholesale` is "Wholesale".

A column in CODE_COLUMNS holds codes from a fixed vocabulary (payment methods, customer types,
statuses, segments, ...). Every surface a person reads shows their labels: the pages, the CSV,
Excel and PDF files, the email and the charts. The JSON document and the API's JSON keep the codes
(scripts filter on them), and so do the `--param`/URL filter values. A code missing from LABELS
reads as its words ("on_time" -> "On time"); any other value (a name, a number) is left as it is.
Streamlit-free, so the pages, the exporters and the mail all import it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from analytics.formatting import CellFormatter, cell_formatter
from analytics.report import Column

# Per column key: code -> label. Only codes whose label is not simply their words need listing,
# but the known vocabularies are listed whole so the table documents them.
LABELS: dict[str, dict[str, str]] = {
    "method": {
        "cash": "Cash",
        "card": "Card",
        "bank_transfer": "Bank transfer",
        "mobile": "Mobile",
        "credit_note": "Credit note",
    },
    "customer_type": {"retail": "Retail", "wholesale": "Wholesale"},
    "status": {
        # sales
        "draft": "Draft",
        "completed": "Completed",
        "void": "Void",
        "refunded": "Refunded",
        # stock
        "in_stock": "In stock",
        "low_stock": "Low stock",
        "out_of_stock": "Out of stock",
        # forecast submissions
        "on_time": "On time",
        "late": "Late",
        "missing": "Missing",
    },
    "segment": {"new": "New", "retained": "Retained", "reactivated": "Reactivated", "lost": "Lost"},
    "movement": {"fast": "Fast", "normal": "Normal", "slow": "Slow", "none": "Not sold"},
    "direction": {"over": "Over", "under": "Under", "exact": "Exact"},
    "item_type": {"product": "Product", "customer": "Customer"},
    "event_type": {},
    # the report parameter compare= (what KPIs are compared with)
    "compare": {
        "previous": "Previous period",
        "last_year": "Same period last year",
        "custom": "Custom dates",
    },
}
CODE_COLUMNS = frozenset(LABELS)
# The report parameter (filter) of the same name holds the same codes.
CODE_FILTERS = frozenset({"customer_type", "payment_method"})
LABELS["payment_method"] = LABELS["method"]  # the filter holds the codes of the column

_CODE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")


def words(code: str) -> str:
    """A snake_case code as words: 'bank_transfer' -> 'Bank transfer'."""
    return code.replace("_", " ").capitalize()


def label(column: str, value: Any) -> Any:
    """The label of `value` in code column `column`; any other value (or column) as it is."""
    if column not in LABELS or value.__class__ is not str:
        return value
    known = LABELS[column].get(value)
    if known is not None:
        return known
    return words(value) if _CODE.fullmatch(value) else value


def labeller(column: str) -> Callable[[Any], Any] | None:
    """`label` for one column, or None when the column holds no codes (nothing to do per cell)."""
    if column not in LABELS:
        return None
    table = LABELS[column]

    def labelled(value: Any) -> Any:
        if value.__class__ is not str:
            return value
        known = table.get(value)
        if known is not None:
            return known
        return words(value) if _CODE.fullmatch(value) else value

    return labelled


def column_formatter(column: Column, currency: str = "EUR") -> CellFormatter:
    """A cell of `column` as people read it: analytics.formatting's text for its kind, a code's label."""
    formatted = cell_formatter(column.kind, currency)
    named = labeller(column.key)
    if named is None:
        return formatted
    return lambda value: formatted(named(value))
