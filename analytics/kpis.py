"""Comparison KPIs: a figure in an earlier period and the change since, named alike in every report.

For figure `revenue` labelled "Revenue" against the previous period: `revenue_previous`
("Revenue, previous period") and `revenue_change_pct` ("Revenue change vs previous period");
against a year before: `revenue_year_ago` and `revenue_yoy_pct`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from analytics.query import change
from analytics.report import ColumnKind, Kpi

Figure = Decimal | int | float | None


@dataclass(frozen=True)
class Baseline:
    """What a figure is compared with: its key suffixes and the words of its labels."""

    suffix: str  # of the earlier figure's key
    change_suffix: str  # of the change's key
    label: str  # "Revenue, <label>", "Revenue change vs <label>"


PREVIOUS = Baseline("previous", "change_pct", "previous period")
YEAR_AGO = Baseline("year_ago", "yoy_pct", "a year before")


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
