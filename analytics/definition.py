"""A report's declaration: slug, title, the parameters it takes and the function that builds it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from analytics.query import ReportContext
    from analytics.report import Report, ReportParams


@dataclass(frozen=True)
class OptionSpec:
    """A report-specific parameter (e.g. granularity) with its allowed values and default."""

    name: str
    help: str
    default: str
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReportDefinition:
    slug: str
    title: str
    description: str
    build: Callable[[ReportContext, ReportParams], Report]
    filters: tuple[str, ...] = ()
    options: tuple[OptionSpec, ...] = field(default_factory=tuple)
    uses_period: bool = True
    default_period: str = "last_month"
