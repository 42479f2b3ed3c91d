"""Exact money: amounts are stored as integer millionths of the currency unit ("micros")."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

MICROS = 1_000_000
_MICRO = Decimal("0.000001")
_CENT = Decimal("0.01")


def to_micros(value: Decimal | int | str) -> int:
    """Decimal amount -> integer micros, rounded half-even at the sixth decimal."""
    amount = value if isinstance(value, Decimal) else Decimal(value)
    return int((amount * MICROS).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def from_micros(micros: int | None) -> Decimal:
    """Integer micros -> exact Decimal (None counts as zero: an empty SUM)."""
    if micros is None:
        return Decimal(0)
    return (Decimal(int(micros)) / MICROS).quantize(_MICRO)


def to_cents(amount: Decimal) -> Decimal:
    """Round an exact amount half-even to cents, for display and files."""
    return amount.quantize(_CENT, rounding=ROUND_HALF_EVEN)


def line_net_micros(quantity: Decimal, unit_price: Decimal, discount: Decimal) -> int:
    """Line net = quantity x unit_price x (1 - discount), in micros."""
    return to_micros(quantity * unit_price * (1 - discount))


def line_cost_micros(quantity: Decimal, unit_cost: Decimal) -> int:
    """Line cost = quantity x unit_cost, in micros."""
    return to_micros(quantity * unit_cost)
