"""Report parameter widgets: period presets or a custom range, dimension filters and report options."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace

import streamlit as st

from analytics.definition import OptionSpec
from analytics.dimensions import DIMENSION_LABELS, dimension_values
from analytics.periods import PERIOD_LABELS, RELATIVE_PERIODS, resolve
from analytics.report import ReportParams
from reports.registry import definition
from snapshots.store import Snapshot
from ui.context import PageContext

CUSTOM = "custom"
OPTION_LABELS = {"granularity": "Granularity"}


@st.cache_data(ttl=3600, max_entries=64, show_spinner=False)
def _choices(_snapshot: Snapshot, business_id: int, data_token: str) -> dict[str, dict[str, str]]:
    # Keyed by data token: an import replaces the token, so lists refresh without a timer.
    return dimension_values(_snapshot)


def dimension_choices(ctx: PageContext) -> dict[str, dict[str, str]]:
    """Filter values of the caller's business ({dimension: {value: label}}), cached per data token."""
    snapshot = ctx.snapshot
    return _choices(snapshot, ctx.business_id, snapshot.token)


def report_params(
    ctx: PageContext, page: str, slugs: Sequence[str], *, option_defaults: Mapping[str, str] | None = None
) -> ReportParams:
    """Draw the period picker, the filters and options of the reports `slugs`; return the params.

    Filters and options are the union over the reports (use `for_report` to narrow them per
    report). `option_defaults` overrides a report option's default for this page (e.g. daily
    buckets on a page that opens on one month). Stops the page when the custom range is invalid.
    """
    defns = [definition(s) for s in slugs]
    options = _options(defns[0].options if len(defns) == 1 else [o for d in defns for o in d.options])
    top = st.columns([2, 1.2, 1.2, *([1.2] * len(options)), max(0.2, 3 - 1.2 * len(options))])
    default = defns[0].default_period
    period_key, last_key, start_key, end_key = (
        f"{page}_{k}" for k in ("period", "last_preset", "start", "end")
    )
    # Defaults go in as index/value (not only into session state): if a run is cut short by a
    # rerun, the browser draws the widget from its default, which must match the server's value.
    with top[0]:
        preset = st.selectbox(
            "Period",
            [*RELATIVE_PERIODS, CUSTOM],
            index=[*RELATIVE_PERIODS, CUSTOM].index(default),
            format_func=lambda p: PERIOD_LABELS.get(p, p),
            key=period_key,
            on_change=_prefill_custom,
            args=(page, ctx.timezone, default),
        )
    start: dt.date | None = None
    end: dt.date | None = None
    if preset == CUSTOM:
        shown = resolve(st.session_state.get(last_key, default), dt.datetime.now(dt.UTC), ctx.timezone)
        start = top[1].date_input(
            "From", st.session_state.get(start_key, shown.start), key=start_key, format="YYYY-MM-DD"
        )
        end = top[2].date_input(
            "To", st.session_state.get(end_key, shown.end), key=end_key, format="YYYY-MM-DD"
        )
    else:
        st.session_state[last_key] = preset
        shown = resolve(preset, dt.datetime.now(dt.UTC), ctx.timezone)
        # The preset's dates, shown read-only so the range is never a guess.
        top[1].date_input(
            "From", shown.start, disabled=True, key=f"{page}_from_{preset}", format="YYYY-MM-DD"
        )
        top[2].date_input("To", shown.end, disabled=True, key=f"{page}_to_{preset}", format="YYYY-MM-DD")
    chosen_options = {
        spec.name: top[3 + i].selectbox(
            OPTION_LABELS.get(spec.name, spec.name.replace("_", " ").capitalize()),
            spec.choices,
            index=_default_index(spec, (option_defaults or {}).get(spec.name, spec.default)),
            format_func=str.capitalize,
            help=spec.help,
            key=f"{page}_o_{spec.name}",
        )
        for i, spec in enumerate(options)
    }
    filters = _filters(ctx, page, _union(d.filters for d in defns))
    if preset == CUSTOM:
        if not isinstance(start, dt.date) or not isinstance(end, dt.date):
            st.info("Pick both a start and an end date.")
            st.stop()
        if end < start:
            st.error(
                f"The end date ({end:%d %b %Y}) is before the start date ({start:%d %b %Y}). "
                "Pick an end date on or after the start."
            )
            st.stop()
        return ReportParams(start=start, end=end, tz=ctx.timezone, filters=filters, options=chosen_options)
    return ReportParams(period=preset, tz=ctx.timezone, filters=filters, options=chosen_options)


def _prefill_custom(page: str, tz: str, default: str) -> None:
    """On switching to "Custom range": start from the dates of the preset chosen before."""
    if st.session_state.get(f"{page}_period") != CUSTOM:
        return
    shown = resolve(st.session_state.get(f"{page}_last_preset", default), dt.datetime.now(dt.UTC), tz)
    st.session_state[f"{page}_start"] = shown.start
    st.session_state[f"{page}_end"] = shown.end


def for_report(params: ReportParams, slug: str) -> ReportParams:
    """The params narrowed to the filters and options report `slug` takes."""
    defn = definition(slug)
    names = {o.name for o in defn.options}
    return replace(
        params,
        filters={k: v for k, v in params.filters.items() if k in defn.filters},
        options={k: v for k, v in params.options.items() if k in names},
    )


def ignored_filters(params: ReportParams, slug: str) -> list[str]:
    """Labels of the chosen filters that report `slug` cannot apply."""
    defn = definition(slug)
    return [DIMENSION_LABELS.get(k, k) for k, v in params.filters.items() if v and k not in defn.filters]


def _options(specs: Sequence[OptionSpec]) -> list[OptionSpec]:
    # Only options with a fixed list of choices get a widget; free-text ones keep their defaults.
    seen: dict[str, OptionSpec] = {}
    for spec in specs:
        if spec.choices and spec.name not in seen:
            seen[spec.name] = spec
    return list(seen.values())


def _default_index(spec: OptionSpec, default: str) -> int:
    return spec.choices.index(default) if default in spec.choices else 0


def _labeller(labels: dict[str, str]) -> Callable[[str], str]:
    def label(value: str) -> str:
        return labels.get(value, value)

    return label


def _union(groups: Iterable[Sequence[str]]) -> list[str]:
    out: list[str] = []
    for group in groups:
        for dim in group:
            if dim not in out:
                out.append(dim)
    return out


def _filters(ctx: PageContext, page: str, dims: Sequence[str]) -> dict[str, tuple[str, ...]]:
    if not dims:
        return {}
    picks = {d: st.session_state.get(f"{page}_f_{d}") or [] for d in dims}
    active = [
        f"{DIMENSION_LABELS[d]}: {v[0] if len(v) == 1 else f'{len(v)} selected'}"
        for d, v in picks.items()
        if v
    ]
    label = (
        "Filtered by " + " · ".join(active)
        if active
        else "Filters: " + ", ".join(DIMENSION_LABELS[d].lower() for d in dims)
    )
    with st.expander(label, expanded=False, icon=":material/filter_list:"):
        choices = dimension_choices(ctx)
        cols = st.columns(min(len(dims), 4))
        chosen: dict[str, tuple[str, ...]] = {}
        for i, dim in enumerate(dims):
            values = choices.get(dim, {})
            picked = cols[i % len(cols)].multiselect(
                DIMENSION_LABELS[dim],
                list(values),
                format_func=_labeller(values),
                placeholder="All",
                key=f"{page}_f_{dim}",
            )
            if picked:
                chosen[dim] = tuple(picked)
        return chosen
