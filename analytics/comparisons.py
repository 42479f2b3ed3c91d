"""How a headline KPI compares with the previous period and with a year before: one rule for the page and the email.

A report carries its comparisons as further KPIs named after the headline one: `<key>_change_pct`
and `<key>_yoy_pct` (relative changes), `<key>_previous` and `<key>_year_ago` (the values then).
A rate (kind "pct") without a relative change compares in percentage points. The compared periods
are the report period's `previous()` and `year_before()`, as the report builders compute them.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from analytics.periods import Period
from analytics.report import Kpi, Report

# KPI keys that compare a headline KPI with another period; shown as changes, not as KPIs of their own.
COMPARISON_SUFFIXES = ("_previous", "_year_ago", "_change_pct", "_yoy_pct")

Against = Literal["previous", "year_ago"]
AGAINST_TEXT: dict[Against, str] = {"previous": "vs previous period", "year_ago": "vs a year before"}


@dataclass(frozen=True)
class Comparison:
    """One change of a KPI: `change` is a fraction (0.109 = +10.9 %) or, with unit "pp", a difference of rates."""

    against: Against
    change: float
    unit: Literal["%", "pp"]
    period: Period | None  # the compared period (None for an all-time report)

    @property
    def direction(self) -> Literal["up", "down", "flat"]:
        shown = round(self.change * 100, 1)
        return "up" if shown > 0 else "down" if shown < 0 else "flat"

    @property
    def text(self) -> str:
        """'+10.9 %' or '-1.2 pp'."""
        return format_change(self.change, self.unit) or ""

    @property
    def label(self) -> str:
        """'vs previous period' or 'vs a year before'."""
        return AGAINST_TEXT[self.against]


def format_change(value: float | None, unit: str = "%") -> str | None:
    """A signed change: '+12.3 %' for relative changes, '+1.2 pp' for percentage points; None if unknown."""
    if value is None:
        return None
    return f"{value * 100:+.1f} {unit}"


def headline_kpis(report: Report) -> list[Kpi]:
    """The KPIs that are not comparisons of another KPI."""
    return [k for k in report.kpis if not k.key.endswith(COMPARISON_SUFFIXES)]


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float | Decimal) and not isinstance(value, bool) else None


def comparisons(report: Report, kpi: Kpi) -> tuple[Comparison | None, Comparison | None]:
    """The KPI's change vs the previous period and vs a year before (None where the report has none)."""
    values = {k.key: _number(k.value) for k in report.kpis}
    period = report.period
    out: list[Comparison | None] = []
    pairs: tuple[tuple[Against, str], ...] = (("previous", "change_pct"), ("year_ago", "yoy_pct"))
    for against, rel in pairs:
        compared = None
        if period is not None:
            compared = period.previous() if against == "previous" else period.year_before()
        change: float | None = None
        unit: Literal["%", "pp"] = "%"
        if f"{kpi.key}_{rel}" in values:
            change = values[f"{kpi.key}_{rel}"]
        elif kpi.kind == "pct" and f"{kpi.key}_{against}" in values:
            # A rate compares in percentage points, not as a change of a change.
            now, before = values.get(kpi.key), values[f"{kpi.key}_{against}"]
            change = now - before if now is not None and before is not None else None
            unit = "pp"
        out.append(Comparison(against, change, unit, compared) if change is not None else None)
    return out[0], out[1]
