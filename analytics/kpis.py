"""Comparison KPIs: a figure in an earlier period and the change since, named alike in every report,
written by the builders (`compared`, `comparison_kpis`) and read back by the page and the email
(`comparisons`, `headline_kpis`): one naming rule for both sides.

For figure `revenue` labelled "Revenue" against the previous period: `revenue_previous`
("Revenue, previous period") and `revenue_change_pct` ("Revenue change vs previous period");
against a year before: `revenue_year_ago` and `revenue_yoy_pct`. A rate (kind "pct") without a
relative change compares in percentage points. The compared periods are the report period's
`previous()` and `year_before()`, as the builders compute them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from analytics.formatting import format_change
from analytics.periods import Period
from analytics.query import change
from analytics.report import ColumnKind, Kpi, Report

Figure = Decimal | int | float | None


@dataclass(frozen=True)
class Baseline:
    """What a figure is compared with: its key suffixes and the words of its labels."""

    suffix: str  # of the earlier figure's key
    change_suffix: str  # of the change's key
    label: str  # "Revenue, <label>", "Revenue change vs <label>"
    period_of: Callable[[Period], Period]  # the compared period of a report period

    @property
    def against(self) -> str:
        """'vs previous period' or 'vs a year before'."""
        return f"vs {self.label}"


PREVIOUS = Baseline("previous", "change_pct", "previous period", Period.previous)
YEAR_AGO = Baseline("year_ago", "yoy_pct", "a year before", Period.year_before)
BASELINES = (PREVIOUS, YEAR_AGO)

# KPI keys that compare a headline KPI with another period; shown as changes, not as KPIs of their own.
COMPARISON_SUFFIXES = tuple(f"_{s}" for b in BASELINES for s in (b.suffix, b.change_suffix))


def compared(
    key: str,
    label: str,
    kind: ColumnKind,
    current: Figure,
    before: Figure,
    baseline: Baseline,
    *,
    with_change: bool = True,
) -> list[Kpi]:
    """The figure in the baseline period and (unless `with_change` is False) its relative change
    to `current` (None when there is nothing to compare with)."""
    kpis = [Kpi(f"{key}_{baseline.suffix}", f"{label}, {baseline.label}", before, kind)]
    if with_change:
        kpis.append(
            Kpi(
                f"{key}_{baseline.change_suffix}",
                f"{label} change vs {baseline.label}",
                change(current, before),
                "pct",
            )
        )
    return kpis


def comparison_kpis(
    key: str, label: str, kind: ColumnKind, current: Figure, previous: Figure, year_ago: Figure
) -> list[Kpi]:
    """The previous period's figure and change, then the year before's: four KPIs."""
    return [
        *compared(key, label, kind, current, previous, PREVIOUS),
        *compared(key, label, kind, current, year_ago, YEAR_AGO),
    ]


@dataclass(frozen=True)
class Comparison:
    """One change of a KPI: `change` is a fraction (0.109 = +10.9 %) or, with unit "pp", a difference of rates."""

    baseline: Baseline
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
        return self.baseline.against


def headline_kpis(report: Report) -> list[Kpi]:
    """The KPIs that are not comparisons of another KPI."""
    return [k for k in report.kpis if not k.key.endswith(COMPARISON_SUFFIXES)]


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float | Decimal) and not isinstance(value, bool) else None


def comparisons(report: Report, kpi: Kpi) -> tuple[Comparison | None, Comparison | None]:
    """The KPI's change vs the previous period and vs a year before (None where the report has none)."""
    values = {k.key: _number(k.value) for k in report.kpis}
    out: list[Comparison | None] = []
    for baseline in BASELINES:
        compared_period = baseline.period_of(report.period) if report.period is not None else None
        change_key, before_key = f"{kpi.key}_{baseline.change_suffix}", f"{kpi.key}_{baseline.suffix}"
        found: Comparison | None = None
        if change_key in values:
            value = values[change_key]
            found = Comparison(baseline, value, "%", compared_period) if value is not None else None
        elif kpi.kind == "pct" and before_key in values:
            # A rate compares in percentage points, not as a change of a change.
            now, before = values.get(kpi.key), values[before_key]
            if now is not None and before is not None:
                found = Comparison(baseline, now - before, "pp", compared_period)
        out.append(found)
    return out[0], out[1]
