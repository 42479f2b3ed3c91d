"""What people read for the codes of the test data, written out here (not taken from analytics.labels),
so the exporters' labels are checked against an independent list."""

from __future__ import annotations

HUMAN = {
    "bank_transfer": "Bank transfer",
    "credit_note": "Credit note",
    "in_stock": "In stock",
    "low_stock": "Low stock",
    "out_of_stock": "Out of stock",
    "none": "Not sold",
    "on_time": "On time",
}
# The columns whose values are codes.
CODE_KEYS = {
    "method",
    "customer_type",
    "status",
    "segment",
    "movement",
    "direction",
    "item_type",
    "event_type",
}


def human(value: str) -> str:
    """A code as people read it: 'bank_transfer' -> 'Bank transfer', 'wholesale' -> 'Wholesale'."""
    return HUMAN.get(value, value[:1].upper() + value[1:].replace("_", " "))
