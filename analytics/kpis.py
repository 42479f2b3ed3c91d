"""Comparison KPIs: a figure in an earlier period and the change since, named alike in every report,
written by the builders (`compared_periods`, `comparison_kpis`) and read back by the page and the
email (`comparisons`, `chosen_comparison`, `headline_kpis`): one naming rule for both sides.

For figure `revenue` labelled "Revenue" against the previous period: `revenue_previous`
("Revenue, previous period (1–4 Nov 2026)") and `revenue_change_pct` ("Revenue change vs 1–4 Nov
2026": short enough for a KPI card); against a year before: `revenue_year_ago` and
`revenue_yoy_pct`; against the dates of compare=custom: `revenue_compared` ("Revenue, 27–30 Nov
2026") and `revenue_compared_change_pct`. A rate (kind "pct") without a relative change compares
in percentage points. The compared periods are `compared_periods`: the report period's
`previous()` and `year_before()`, and the custom dates; the report keeps them (`Report.compared`),
and its JSON parameters state them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from analytics.formatting import format_cell, format_change
from analytics.periods import Period
from analytics.query import change
from analytics.report import ColumnKind, Kpi, Report, ReportParams

Figure = Decimal | int | float | None


@dataclass(frozen=True)
class Baseline:
    """What a figure is compared with: its key suffixes, the words of its labels and the `compare=`
    choice that makes it the one the user chose."""

    suffix: str  # of the earlier figure's key; also the key of Report.compared ("previous")
    change_suffix: str  # of the change's key
    label: str  # "Revenue, <label> (<dates>)"; the change is "Revenue change vs <dates>"
    choice: str  # the compare= value that picks it
    # False: the figure's label is the dates alone ("Revenue, 27–30 Nov 2026"): dates the user chose
    # need no words, and the label stays short enough for a KPI card
    named: bool = True

    @property
    def against(self) -> str:
        """'vs previous period' or 'vs a year before'."""
        return f"vs {self.label}"


PREVIOUS = Baseline("previous", "change_pct", "previous period", "previous")
YEAR_AGO = Baseline("year_ago", "yoy_pct", "a year before", "last_year")
COMPARED = Baseline("compared", "compared_change_pct", "compared period", "custom", named=False)
BASELINES = (PREVIOUS, YEAR_AGO, COMPARED)

# KPI keys that compare a headline KPI with another period; shown as changes, not as KPIs of their own.
COMPARISON_SUFFIXES = tuple(f"_{s}" for b in BASELINES for s in (b.suffix, b.change_suffix))


def compared_periods(period: Period, params: ReportParams) -> dict[str, Period]:
    """The periods a report over `period` compares with, by baseline suffix: always the previous
    period and the same period a year before, and with compare=custom the chosen dates."""
    out = {PREVIOUS.suffix: period.previous(), YEAR_AGO.suffix: period.year_before()}
    custom = params.compared_period()
    if custom is not None:
        out[COMPARED.suffix] = custom
    return out


def compared(
    key: str,
    label: str,
    kind: ColumnKind,
    current: Figure,
    before: Figure,
    baseline: Baseline,
    period: Period,
    *,
    with_change: bool = True,
) -> list[Kpi]:
    """The figure in the baseline's `period` and (unless `with_change` is False) its relative change
    to `current` (None when there is nothing to compare with); the labels state the dates."""
    dates = period.describe()
    what = f"{baseline.label} ({dates})" if baseline.named else dates
    kpis = [Kpi(f"{key}_{baseline.suffix}", f"{label}, {what}", before, kind)]
    if with_change:
        kpis.append(
            Kpi(
                f"{key}_{baseline.change_suffix}",
                f"{label} change vs {dates}",
                change(current, before),
                "pct",
            )
        )
    return kpis


def comparison_kpis(
    key: str,
    label: str,
    kind: ColumnKind,
    current: Figure,
    before: Mapping[str, Figure],
    periods: Mapping[str, Period],
    *,
    with_change: bool = True,
) -> list[Kpi]:
    """The figure in each compared period (`periods`, from `compared_periods`; `before` holds the
    figure per period, by the same keys) and its change: previous period, a year before, then the
    custom dates."""
    return [
        kpi
        for b in BASELINES
        if b.suffix in periods
        for kpi in compared(
            key, label, kind, current, before[b.suffix], b, periods[b.suffix], with_change=with_change
        )
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

    @property
    def dates(self) -> str:
        """The compared period as `Period.describe` writes it ('1–4 Nov 2026'); "" without one."""
        return self.period.describe() if self.period is not None else ""

    @property
    def against_dates(self) -> str:
        """'vs 1–4 Nov 2026': what the change is against, by its dates (the label without dates)."""
        return f"vs {self.dates}" if self.period is not None else self.label


def headline_kpis(report: Report) -> list[Kpi]:
    """The KPIs that are not comparisons of another KPI."""
    return [k for k in report.kpis if not k.key.endswith(COMPARISON_SUFFIXES)]


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float | Decimal) and not isinstance(value, bool) else None


def comparison(report: Report, kpi: Kpi, baseline: Baseline) -> Comparison | None:
    """The KPI's change against `baseline` (None where the report has no such comparison, or
    nothing to compare with)."""
    values = {k.key: _number(k.value) for k in report.kpis}
    compared_period = report.compared.get(baseline.suffix)
    change_key, before_key = f"{kpi.key}_{baseline.change_suffix}", f"{kpi.key}_{baseline.suffix}"
    if change_key in values:
        value = values[change_key]
        return Comparison(baseline, value, "%", compared_period) if value is not None else None
    if kpi.kind == "pct" and before_key in values:
        # A rate compares in percentage points, not as a change of a change.
        now, before = values.get(kpi.key), values[before_key]
        if now is not None and before is not None:
            return Comparison(baseline, now - before, "pp", compared_period)
    return None


def comparisons(report: Report, kpi: Kpi) -> tuple[Comparison | None, Comparison | None]:
    """The KPI's change vs the previous period and vs a year before (None where the report has none)."""
    return comparison(report, kpi, PREVIOUS), comparison(report, kpi, YEAR_AGO)


def chosen_baseline(params: ReportParams) -> Baseline:
    """The baseline the user chose with `compare=` (the previous period by default)."""
    return next((b for b in BASELINES if b.choice == params.compare), PREVIOUS)


def chosen_comparison(report: Report, kpi: Kpi) -> Comparison | None:
    """The KPI's change against what the user chose to compare with (`compare=`): the previous
    period, the same period last year or the custom dates."""
    return comparison(report, kpi, chosen_baseline(report.params))


@dataclass(frozen=True)
class SideBySideRow:
    """One headline KPI: its figure in the report's period, in each compared period, and the changes."""

    kpi: Kpi
    before: tuple[Kpi | None, ...]  # the figure in each compared period (None: not compared there)
    changes: tuple[Comparison | None, ...]  # the change against each (None: nothing to compare with)


@dataclass(frozen=True)
class SideBySide:
    """Period-vs-period: the headline KPIs of the report's period beside the same KPIs in each
    compared period — first the one the user chose (`compare=`), then the others — with the
    change. One reading for Overview, the PDF and the Excel summary."""

    period: Period
    baselines: tuple[Baseline, ...]
    periods: tuple[Period, ...]  # the compared periods, in the order of `baselines`
    rows: tuple[SideBySideRow, ...]

    @property
    def headings(self) -> list[str]:
        """The dates of the report's period and of each compared period ('1–30 Nov 2026', ...)."""
        return [dates_of(p) for p in (self.period, *self.periods)]

    @property
    def covered(self) -> set[str]:
        """The keys of the comparison KPIs the rows show (their figures and changes): what a
        renderer showing this table leaves out of its list of KPIs."""
        return {
            key
            for row in self.rows
            for baseline, before in zip(self.baselines, row.before, strict=True)
            if before is not None
            for key in (before.key, f"{row.kpi.key}_{baseline.change_suffix}")
        }

    @property
    def columns(self) -> list[str]:
        """Column headings as people read them: 'Key figure', the period's dates, then for each
        compared period its dates and 'Change vs <dates>'."""
        now, *before = self.headings
        return ["Key figure", now, *(h for dates in before for h in (dates, f"Change vs {dates}"))]

    def texts(self, currency: str) -> list[list[str]]:
        """Each row's cells as text, in the order of `columns` ('—' where there is no figure or
        nothing to compare with)."""
        out = []
        for row in self.rows:
            cells = [row.kpi.label, format_cell(row.kpi.value, row.kpi.kind, currency)]
            for before, moved in zip(row.before, row.changes, strict=True):
                cells.append(format_cell(before.value, before.kind, currency) if before is not None else "—")
                cells.append(moved.text if moved is not None else "—")
            out.append(cells)
        return out


def dates_of(period: Period) -> str:
    """The period's dates alone, without the name it was resolved from: '1–30 Nov 2026'."""
    return Period(period.start, period.end).describe()


def side_by_side(report: Report, *, every: bool = False, chosen_only: bool = False) -> SideBySide | None:
    """The report's headline KPIs side by side with the compared periods (None for a report
    without comparisons); with `chosen_only`, with the one the user chose alone. A compared period
    with the same dates as one before it is left out; so are the KPIs no period compares, unless
    `every`."""
    if report.period is None or not report.compared:
        return None
    chosen = chosen_baseline(report.params)
    seen = {(report.period.start, report.period.end)}
    baselines: list[Baseline] = []
    order = (chosen,) if chosen_only else (chosen, *(b for b in BASELINES if b is not chosen))
    for baseline in order:
        period = report.compared.get(baseline.suffix)
        if period is not None and (period.start, period.end) not in seen:
            seen.add((period.start, period.end))
            baselines.append(baseline)
    by_key = {k.key: k for k in report.kpis}
    rows = []
    for kpi in headline_kpis(report):
        before = tuple(by_key.get(f"{kpi.key}_{b.suffix}") for b in baselines)
        if every or any(b is not None for b in before):
            rows.append(SideBySideRow(kpi, before, tuple(comparison(report, kpi, b) for b in baselines)))
    if not baselines or not any(any(b is not None for b in r.before) for r in rows):
        return None
    periods = tuple(report.compared[b.suffix] for b in baselines)
    return SideBySide(report.period, tuple(baselines), periods, tuple(rows))
