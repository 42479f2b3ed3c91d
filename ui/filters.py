"""Report parameter widgets kept in the page's URL: the period (a preset or custom dates), the dimension
filters (shown as removable chips), report options and, on Overview, what to compare with.

The URL (`st.query_params`) holds the view in the command line's `--param` keys and values: `period`,
`start`, `end`, `tz`, the filters comma-separated (`region=North,South`), options (`granularity`),
`compare`, `compare_start`, `compare_end`. So a copied link, a reload and Back/Forward open the same
view; values still at their defaults are left out. The dashboard pages share one period per browser
session (`SESSION_PERIOD`): Year to date chosen on Overview is what Sales opens on.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlencode

import streamlit as st
from streamlit.runtime.state import get_session_state

from analytics.definition import OptionSpec
from analytics.dimensions import DIMENSION_LABELS, dimension_values
from analytics.labels import label
from analytics.periods import PERIOD_LABELS, RELATIVE_PERIODS, Period, PeriodError, resolve, zone
from analytics.query import latest_period_with_data
from analytics.report import DIMENSIONS, ParamError, ReportParams
from reports.registry import definition
from snapshots.store import Snapshot
from ui.context import PageContext, entered, settled
from ui.navigation import report_pages

CUSTOM = "custom"
# The one period every dashboard opens on: a whole month compares like with like (a 4-day month to
# date looks like a crash next to a whole month) and is what scheduled reports send by default.
DEFAULT_PERIOD = "last_month"
SESSION_PERIOD = "dash_period"  # the session's PeriodChoice, shared by the dashboard pages
OPENING_NOTICE = "dash_opening_notice"  # (choice, text) when the default period had no data
OPTION_LABELS = {"granularity": "Granularity"}
COMPARE_CHOICES = ("previous", "last_year", CUSTOM)
COMPARE_KEYS = ("compare", "compare_start", "compare_end")
PERIOD_KEYS = ("period", "start", "end", "tz")


@dataclass(frozen=True)
class PeriodChoice:
    """A period as the user chose it: a relative name, or CUSTOM with its dates; `tz` only when a link
    named a zone other than the business's."""

    period: str = DEFAULT_PERIOD
    start: dt.date | None = None
    end: dt.date | None = None
    tz: str | None = None


@dataclass(frozen=True)
class View:
    """Everything the URL of a report page says (see `view_from_query`)."""

    period: PeriodChoice | None = None  # None: the link names no period
    filters: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    options: Mapping[str, str] = field(default_factory=dict)
    compare: Mapping[str, str] = field(default_factory=dict)
    problems: tuple[str, ...] = ()


# --- the URL, without Streamlit -----------------------------------------------------------------------


def view_from_query(
    query: Mapping[str, Sequence[str]],
    dims: Sequence[str],
    options: Sequence[OptionSpec] = (),
    *,
    compare: bool = False,
    choices: Mapping[str, Mapping[str, str]] | None = None,
) -> View:
    """Read a page's URL query ({key: [values]}) the way the command line reads `--param`: what it says
    about the period, the filters `dims`, the `options` and (when `compare`) the comparison.

    Wrong values are left out and named in `problems` (one sentence each); `choices`, when given, are the
    known values per dimension, and unknown ones are left out too. Keys of no concern are ignored.
    """
    flat = {k: ",".join(v for v in values if v is not None) for k, values in query.items()}
    problems: list[str] = []
    period: PeriodChoice | None = None
    tz: str | None = None
    if flat.get("tz"):
        try:
            zone(flat["tz"])
            tz = flat["tz"]
        except PeriodError as exc:
            problems.append(str(exc))
    if flat.get("start") or flat.get("end"):
        try:
            params = ReportParams.from_mapping({"start": flat.get("start", ""), "end": flat.get("end", "")})
            period = PeriodChoice(CUSTOM, params.start, params.end, tz)
        except ParamError as exc:
            problems.append(str(exc) if flat.get("start") and flat.get("end") else _one_date(flat))
    elif flat.get("period"):
        if flat["period"] in RELATIVE_PERIODS:
            period = PeriodChoice(flat["period"], tz=tz)
        else:
            problems.append(
                f"Unknown period {flat['period']!r}; choose one of: {', '.join(RELATIVE_PERIODS)}."
            )
    if period is None and tz:
        period = PeriodChoice(tz=tz)  # a zone alone (or with a wrong period): the default period, there
    filters: dict[str, tuple[str, ...]] = {}
    for dim in dims:
        values = tuple(dict.fromkeys(v.strip() for v in flat.get(dim, "").split(",") if v.strip()))
        if not values:
            continue
        known = choices.get(dim) if choices is not None else None
        if known is not None:
            unknown = [v for v in values if v not in known]
            if unknown:
                problems.append(f"{DIMENSION_LABELS.get(dim, dim)} {', '.join(unknown)} is not in your data.")
            values = tuple(v for v in values if v in known)
        if values:
            filters[dim] = values
    chosen: dict[str, str] = {}
    for spec in options:
        raw = flat.get(spec.name)
        if raw:
            if spec.choices and raw not in spec.choices:
                problems.append(f"Unknown {spec.name} {raw!r}; choose one of: {', '.join(spec.choices)}.")
            else:
                chosen[spec.name] = raw
    compared: dict[str, str] = {}
    if compare and flat.get("compare"):
        kind = flat["compare"]
        if kind not in COMPARE_CHOICES:
            problems.append(f"Unknown compare {kind!r}; choose one of: {', '.join(COMPARE_CHOICES)}.")
        elif kind == CUSTOM:
            try:
                params = ReportParams.from_mapping(
                    {"start": flat.get("compare_start", ""), "end": flat.get("compare_end", "")}
                )
                assert params.start is not None and params.end is not None
                compared = {
                    "compare": CUSTOM,
                    "compare_start": params.start.isoformat(),
                    "compare_end": params.end.isoformat(),
                }
            except ParamError as exc:
                problems.append(f"Comparison dates: {exc}")
        else:
            compared = {"compare": kind}
    return View(period, filters, chosen, compared, tuple(problems))


def _one_date(flat: Mapping[str, str]) -> str:
    if flat.get("start"):
        return "The link gives a start date but no end date."
    return "The link gives an end date but no start date."


def query_from_view(
    period: PeriodChoice,
    filters: Mapping[str, Sequence[str]],
    options: Mapping[str, str],
    compare: Mapping[str, str],
    *,
    default_period: str = DEFAULT_PERIOD,
    default_options: Mapping[str, str] | None = None,
    dims: Sequence[str] = tuple(DIMENSIONS),
) -> dict[str, str]:
    """The URL query of a view in the command line's form, without the values still at their defaults:
    custom dates as `start` and `end`, filters comma-separated in `dims` order."""
    out: dict[str, str] = {}
    if period.period == CUSTOM and period.start and period.end:
        out["start"], out["end"] = period.start.isoformat(), period.end.isoformat()
    elif period.period != default_period:
        out["period"] = period.period
    if period.tz:
        out["tz"] = period.tz
    for dim in dims:
        if filters.get(dim):
            out[dim] = ",".join(filters[dim])
    for name, value in options.items():
        if value != (default_options or {}).get(name):
            out[name] = value
    if compare.get("compare") and compare["compare"] != "previous":
        out.update({k: compare[k] for k in COMPARE_KEYS if compare.get(k)})
    return out


def explicit_query(period: PeriodChoice, query: Mapping[str, str]) -> dict[str, str]:
    """`query` with the period always named: the form a shared link takes, so that it opens on the same
    period whatever the colleague's defaults are."""
    if "start" in query or "period" in query:
        return dict(query)
    return {"period": period.period, **query}


# --- widgets ------------------------------------------------------------------------------------------


@st.cache_data(ttl=3600, max_entries=64, show_spinner=False)
def _choices(_snapshot: Snapshot, business_id: int, data_token: str) -> dict[str, dict[str, str]]:
    # Keyed by data token: an import replaces the token, so lists refresh without a timer.
    return dimension_values(_snapshot)


def dimension_choices(ctx: PageContext) -> dict[str, dict[str, str]]:
    """Filter values of the caller's business ({dimension: {value: label}}), cached per data token."""
    snapshot = ctx.snapshot
    return _choices(snapshot, ctx.business_id, snapshot.token)


def shares_period(page: str) -> bool:
    """True for the dashboard pages: they share the session's period."""
    return any(p.key == page and p.section == "Dashboards" for p in report_pages())


def keeps_url(page: str) -> bool:
    """True for the report pages (their view lives in the URL); the builder keeps its own state."""
    return any(p.key == page for p in report_pages())


def session_period(ctx: PageContext) -> PeriodChoice:
    """The period the dashboards show in this browser session; the first time, the one they open on
    (see `opening_period`)."""
    found = st.session_state.get(SESSION_PERIOD)
    if isinstance(found, PeriodChoice):
        return found
    choice = opening_period(ctx)
    st.session_state[SESSION_PERIOD] = choice
    return choice


def opening_period(ctx: PageContext) -> PeriodChoice:
    """The default period; when it holds no sales (data that ends last year, an import of old records),
    the period of the same kind around the latest sale, remembered with a notice for the pages to show
    (see `opening_notice`)."""
    default = resolve(DEFAULT_PERIOD, dt.datetime.now(dt.UTC), ctx.timezone)
    snapshot = ctx.snapshot
    found = _latest(snapshot, ctx.business_id, snapshot.token, default.start, default.end, DEFAULT_PERIOD)
    if found is None or found.end >= default.start:  # no sales at all, or some in the default period
        return PeriodChoice()
    choice = PeriodChoice(CUSTOM, found.start, found.end)
    st.session_state[OPENING_NOTICE] = (
        choice,
        f"No sales in {PERIOD_LABELS[DEFAULT_PERIOD].lower()} ({default.describe().split(' (')[0]}): "
        f"showing {found.describe()}, the latest {_kind(DEFAULT_PERIOD)} with sales.",
    )
    return choice


@st.cache_data(ttl=3600, max_entries=64, show_spinner=False)
def _latest(
    _snapshot: Snapshot, business_id: int, data_token: str, start: dt.date, end: dt.date, name: str
) -> Period | None:
    # Every new browser session asks once; the answer only changes with the data (its token) or the day.
    return latest_period_with_data(_snapshot, Period(start, end, name))


def _kind(period: str) -> str:
    """'month' for last_month: what the fallback period is, in words."""
    for word in ("month", "quarter", "year", "week"):
        if word in period:
            return word
    return "period"


def opening_notice(choice: PeriodChoice) -> str | None:
    """The notice of `opening_period` while the dashboards still show the period it opened on."""
    found = st.session_state.get(OPENING_NOTICE)
    if isinstance(found, tuple) and found[0] == choice:
        return str(found[1])
    return None


def _query() -> dict[str, list[str]]:
    return {key: st.query_params.get_all(key) for key in st.query_params}


# Widget keys are written before their widgets are drawn. A widget whose key was written in this run gets
# no default of its own (with both, Streamlit logs a warning with a stack trace). Every other widget gets
# its current value as its default: Streamlit sends a value written to a widget's key to the browser only
# in the run that wrote it, and when the browser draws the widget first from a later run (a rerun right
# after the login that opened a link did that), it would start from the widget's default and send that
# back (the link's region filter was dropped after the login).


def _set_widget(key: str, value: Any) -> None:
    if key not in st.session_state or st.session_state[key] != value:
        st.session_state[key] = value


def _widget_default(key: str, fallback: Any = None) -> Any:
    """The widget's default: none when its key was written in this run (by `_set_widget`, a callback or
    other code before the widgets: a chip's ✕, a click on a bar, a template — Streamlit's own test for a
    value set through session state), else its value (`fallback` without one)."""
    if get_session_state().is_new_state_value(key):
        return None
    return st.session_state.get(key, fallback)


def _widget_index(key: str, choices: Sequence[str], fallback: str) -> int:
    """A select box's default position (see `_widget_default`): 0, its own default, when written in this
    run; a value not among `choices` stands for `fallback`."""
    value = _widget_default(key, fallback)
    if value is None:
        return 0
    chosen = value if value in choices else fallback
    return list(choices).index(chosen) if chosen in choices else 0


def _apply_period(page: str, choice: PeriodChoice) -> None:
    _set_widget(f"{page}_period", choice.period)
    if choice.period == CUSTOM and choice.start and choice.end:
        _set_widget(f"{page}_start", choice.start)
        _set_widget(f"{page}_end", choice.end)
    st.session_state[f"{page}_tz"] = choice.tz


def _apply_view(
    page: str,
    view: View,
    dims: Sequence[str],
    options: Sequence[OptionSpec],
    option_defaults: Mapping[str, str],
    *,
    entering: bool,
    default_period: str,
) -> None:
    """Set the page's widgets to what its URL says. What the URL leaves out is the default, except the
    period of a page just entered from another one (see `report_params`)."""
    if view.period is not None:
        _apply_period(page, view.period)
    elif not entering:
        _apply_period(page, PeriodChoice(default_period))
    for dim in dims:
        _set_widget(f"{page}_f_{dim}", list(view.filters.get(dim, ())))
    for spec in options:
        _set_widget(f"{page}_o_{spec.name}", view.options.get(spec.name, option_defaults[spec.name]))
    compare = dict(view.compare) or {"compare": "previous"}
    _set_widget(f"{page}_compare", compare["compare"])
    if compare["compare"] == CUSTOM:
        _set_widget(f"{page}_compare_start", dt.date.fromisoformat(compare["compare_start"]))
        _set_widget(f"{page}_compare_end", dt.date.fromisoformat(compare["compare_end"]))


def report_params(
    ctx: PageContext,
    page: str,
    slugs: Sequence[str],
    *,
    option_defaults: Mapping[str, str] | None = None,
    compare: bool = False,
) -> ReportParams:
    """Draw the period picker, the filters and options of the reports `slugs` (and with `compare` the
    "Compare with" control); keep them in the URL; return the params.

    Filters and options are the union over the reports (use `for_report` to narrow them per report).
    `option_defaults` overrides a report option's default for this page (e.g. daily buckets on a page
    that opens on one month). Stops the page when the custom range is invalid.

    On a report page the URL wins whenever it changed under the page (a link, a reload, Back/Forward).
    A page entered from another one through the menu has a URL without a period: a dashboard then
    shows the session's period, another page the period it had.
    """
    defns = [definition(s) for s in slugs]
    options = _options(defns[0].options if len(defns) == 1 else [o for d in defns for o in d.options])
    defaults = {o.name: (option_defaults or {}).get(o.name, o.default) for o in options}
    dims = _union(d.filters for d in defns)
    shared = shares_period(page)
    default_period = DEFAULT_PERIOD if shared else defns[0].default_period
    synced = keeps_url(page)
    url_keys = _url_keys(dims, options, compare)
    url_key = f"{page}_url"
    applied = False  # the URL changed under the page and was applied in this run
    if synced:
        ours = {k: v for k, v in _query().items() if k in url_keys}
        # A page just entered (the menu, Back/Forward from another page) lost its widgets' state with the
        # page it left: its URL is applied even when it is the one it last wrote.
        if ours != st.session_state.get(url_key) or entered(page):
            view = view_from_query(ours, dims, options, compare=compare, choices=dimension_choices(ctx))
            _apply_view(
                page,
                view,
                dims,
                options,
                defaults,
                entering=entered(page),
                default_period=default_period,
            )
            st.session_state[f"{page}_problems"] = view.problems
            applied = True
    if f"{page}_period" not in st.session_state:
        _apply_period(page, session_period(ctx) if shared else PeriodChoice(default_period))

    widths = [2, 1.5, 1.5, *([1.3] * len(options)), *([2] if compare else []), 1.4]
    top = st.columns([*widths, max(0.1, 10.5 - sum(widths))], vertical_alignment="bottom")
    choice = _period_widgets(ctx, page, top, default_period)
    chosen_options = {
        spec.name: top[3 + i].selectbox(
            OPTION_LABELS.get(spec.name, spec.name.replace("_", " ").capitalize()),
            spec.choices,
            index=_widget_index(f"{page}_o_{spec.name}", spec.choices, defaults[spec.name]),
            format_func=str.capitalize,
            help=spec.help,
            key=f"{page}_o_{spec.name}",
        )
        for i, spec in enumerate(options)
    }
    compared = _compare_widget(page, top[3 + len(options)]) if compare else {}
    filters = _filters(ctx, page, dims)
    if choice is None:
        st.stop()
    if shared:
        st.session_state[SESSION_PERIOD] = choice
        notice = opening_notice(choice)
        if notice:
            st.info(notice, icon=":material/history:")
    if synced:
        wanted = query_from_view(
            choice,
            filters,
            chosen_options,
            compared,
            default_period=default_period,
            default_options=defaults,
            dims=dims,
        )
        _write_url(wanted, url_keys)
        written = {k: [v] for k, v in wanted.items()}
        # What was wrong with the link shows until the view changes (reruns of the same view keep it).
        if not applied and st.session_state.get(url_key) != written:
            st.session_state.pop(f"{page}_problems", None)
        st.session_state[url_key] = written
        for problem in st.session_state.get(f"{page}_problems", ()):
            st.warning(f"This link could not be opened as it is: {problem}", icon=":material/link_off:")
        st.session_state[f"{page}_link"] = explicit_query(choice, wanted)
        with top[-2]:
            copy_link(page)
    settled(page)
    # The comparison goes to the report only when it is not the default (the previous period).
    flat: dict[str, Any] = {
        "tz": choice.tz or ctx.timezone,
        **chosen_options,
        **query_from_view(PeriodChoice(), {}, {}, compared),
    }
    if choice.period == CUSTOM:
        flat.update(start=choice.start, end=choice.end)
    else:
        flat["period"] = choice.period
    return replace(ReportParams.from_mapping(flat), filters=filters)


def _url_keys(dims: Sequence[str], options: Sequence[OptionSpec], compare: bool) -> set[str]:
    return {*PERIOD_KEYS, *dims, *(o.name for o in options), *(COMPARE_KEYS if compare else ())}


def _write_url(wanted: Mapping[str, str], ours: Iterable[str]) -> None:
    """Make the URL say `wanted` (keys of other concerns stay); a change adds a browser history entry."""
    current = {k: ",".join(st.query_params.get_all(k)) for k in st.query_params}
    keep = {k: v for k, v in current.items() if k not in set(ours)}
    target = {**keep, **wanted}
    if target != current:
        st.query_params.from_dict(target)


_COPY_HTML = (
    '<button type="button" class="tb-copy" title="Copy a link to this view">'
    '<svg aria-hidden="true" viewBox="0 0 24 24" width="16" height="16"><path fill="currentColor" '
    'd="M3.9 12a3.1 3.1 0 0 1 3.1-3.1h4V7H7a5 5 0 0 0 0 10h4v-1.9H7A3.1 3.1 0 0 1 3.9 12zM8 13h8v-2H8v2zm9-6h-4'
    'v1.9h4a3.1 3.1 0 0 1 0 6.2h-4V17h4a5 5 0 0 0 0-10z"/></svg>'
    '<span class="tb-label">Copy link</span></button>'
)
_COPY_CSS = """
.tb-copy { font: inherit; font-size: 0.95rem; padding: 0.4rem 0.8rem; min-height: 2.5rem; cursor: pointer;
  border: 1px solid rgba(49, 51, 63, 0.2); border-radius: 0.5rem; background: #fff; color: inherit;
  white-space: nowrap; display: inline-flex; align-items: center; gap: 0.4rem; }
.tb-copy:hover { border-color: #1f6feb; color: #1f6feb; }
"""
# The link is built in the browser (the server does not know the address the browser uses): this
# page's address plus the query of its view, with the period always named.
_COPY_JS = """
export default function(component) {
  const { data, parentElement } = component;
  const button = parentElement.querySelector('button');
  const label = parentElement.querySelector('.tb-label');
  const link = () => {
    const url = new URL(window.location.pathname, window.location.origin);
    url.search = data && data.query ? data.query : '';
    return url.toString();
  };
  button.dataset.link = link();
  button.onclick = async () => {
    const text = link();
    button.dataset.link = text;
    let copied = false;
    try {
      await navigator.clipboard.writeText(text);
      copied = true;
    } catch (error) {
      const area = document.createElement('textarea');
      area.value = text;
      document.body.appendChild(area);
      area.select();
      try { copied = document.execCommand('copy'); } catch (e) { copied = false; }
      area.remove();
    }
    label.textContent = copied ? 'Link copied' : 'Copy this link: ' + text;
    setTimeout(() => { label.textContent = 'Copy link'; }, copied ? 2500 : 15000);
  };
}
"""
_copy_button = st.components.v2.component("tallyboard_copy_link", html=_COPY_HTML, css=_COPY_CSS, js=_COPY_JS)


def copy_link(page: str) -> None:
    """The "Copy link" button: puts the address of the page's current view on the clipboard."""
    _copy_button(data={"query": urlencode(link_query(page))}, key=f"{page}_copy_link", width="content")


def link_query(page: str) -> dict[str, str]:
    """The query of the page's current view with its period named (see `explicit_query`)."""
    found = st.session_state.get(f"{page}_link")
    return dict(found) if isinstance(found, dict) else {}


def _period_widgets(ctx: PageContext, page: str, top: Sequence[Any], default: str) -> PeriodChoice | None:
    """The Period box and its From/To dates; None (after saying why) when a custom range is unusable."""
    period_key, last_key, start_key, end_key = (
        f"{page}_{k}" for k in ("period", "last_preset", "start", "end")
    )
    options = [*RELATIVE_PERIODS, CUSTOM]
    with top[0]:
        preset = st.selectbox(
            "Period",
            options,
            index=_widget_index(period_key, options, default),
            format_func=lambda p: PERIOD_LABELS.get(p, p),
            key=period_key,
            on_change=_prefill_custom,
            args=(page, ctx.timezone, default),
        )
    tz = st.session_state.get(f"{page}_tz") or None
    now = dt.datetime.now(dt.UTC)
    if preset != CUSTOM:
        st.session_state[last_key] = preset
        shown = resolve(preset, now, tz or ctx.timezone)
        # The preset's dates, shown read-only so the range is never a guess.
        top[1].date_input(
            "From", shown.start, disabled=True, key=f"{page}_from_{preset}", format="YYYY-MM-DD"
        )
        top[2].date_input("To", shown.end, disabled=True, key=f"{page}_to_{preset}", format="YYYY-MM-DD")
        return PeriodChoice(preset, tz=tz)
    if start_key not in st.session_state or end_key not in st.session_state:
        shown = resolve(st.session_state.get(last_key, default), now, tz or ctx.timezone)
        _set_widget(start_key, st.session_state.get(start_key, shown.start))
        _set_widget(end_key, st.session_state.get(end_key, shown.end))
    start = top[1].date_input("From", _date_default(start_key), key=start_key, format="YYYY-MM-DD")
    end = top[2].date_input("To", _date_default(end_key), key=end_key, format="YYYY-MM-DD")
    if not isinstance(start, dt.date) or not isinstance(end, dt.date):
        st.info("Pick both a start and an end date.")
        return None
    if end < start:
        st.error(
            f"The end date ({end:%d %b %Y}) is before the start date ({start:%d %b %Y}). "
            "Pick an end date on or after the start."
        )
        return None
    return PeriodChoice(CUSTOM, start, end, tz)


def _prefill_custom(page: str, tz: str, default: str) -> None:
    """On switching to "Custom range": start from the dates of the preset chosen before."""
    if st.session_state.get(f"{page}_period") != CUSTOM:
        return
    shown = resolve(st.session_state.get(f"{page}_last_preset", default), dt.datetime.now(dt.UTC), tz)
    st.session_state[f"{page}_start"] = shown.start
    st.session_state[f"{page}_end"] = shown.end


def _compare_widget(page: str, where: Any) -> dict[str, str]:
    """The "Compare with" box (previous period, same period last year, custom dates) and its dates."""
    key = f"{page}_compare"
    with where:
        kind = st.selectbox(
            "Compare with",
            COMPARE_CHOICES,
            index=_widget_index(key, COMPARE_CHOICES, "previous"),
            format_func=lambda c: str(label("compare", c)),
            key=key,
            help="The period the KPI cards compare with: the one before, the same dates a year "
            "earlier, or any dates you choose.",
        )
    if kind != CUSTOM:
        return {"compare": str(kind)}
    start_key, end_key = f"{key}_start", f"{key}_end"
    if start_key not in st.session_state or end_key not in st.session_state:
        today = dt.date.today()
        _set_widget(start_key, st.session_state.get(start_key, today.replace(year=today.year - 1, day=1)))
        _set_widget(end_key, st.session_state.get(end_key, today.replace(year=today.year - 1)))
    # A row of their own under the period's From and To (inside the box's column they were cut to "2026").
    dates = st.columns([2, 1.5, 1.5, 5.5], vertical_alignment="bottom")
    dates[0].caption("Compared with these dates:")
    start = dates[1].date_input("Compare from", _date_default(start_key), key=start_key, format="YYYY-MM-DD")
    end = dates[2].date_input("Compare to", _date_default(end_key), key=end_key, format="YYYY-MM-DD")
    if not isinstance(start, dt.date) or not isinstance(end, dt.date) or end < start:
        st.warning(
            "Pick comparison dates with the end on or after the start; comparing with the previous period."
        )
        return {"compare": "previous"}
    return {"compare": CUSTOM, "compare_start": start.isoformat(), "compare_end": end.isoformat()}


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
    # Only options with a fixed list of choices get a widget; free-text ones keep their defaults. The
    # comparison has its own control ("Compare with").
    seen: dict[str, OptionSpec] = {}
    for spec in specs:
        if spec.choices and spec.name not in seen and spec.name not in COMPARE_KEYS:
            seen[spec.name] = spec
    return list(seen.values())


def _date_default(key: str) -> dt.date | str:
    """A date box's default (see `_widget_default`): "today" stands for none (Streamlit's own default)."""
    value = _widget_default(key)
    return value if isinstance(value, dt.date) else "today"


def _labeller(labels: Mapping[str, str]) -> Callable[[str], str]:
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


# --- filters and chips --------------------------------------------------------------------------------


def add_filter(page: str, dim: str, value: str) -> None:
    """Filter the page to `value` of `dim` too (a click on a bar or slice): call from a callback."""
    key = f"{page}_f_{dim}"
    current = list(st.session_state.get(key) or [])
    if value not in current:
        st.session_state[key] = [*current, value]


def remove_filter(page: str, dim: str, value: str) -> None:
    key = f"{page}_f_{dim}"
    st.session_state[key] = [v for v in st.session_state.get(key) or [] if v != value]


def _filters(ctx: PageContext, page: str, dims: Sequence[str]) -> dict[str, tuple[str, ...]]:
    if not dims:
        return {}
    choices = dimension_choices(ctx)
    picks = {d: list(st.session_state.get(f"{page}_f_{d}") or []) for d in dims}
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
    # A key of its own keeps the panel open while several filters are picked (its label changes).
    # The panel's open state is tracked under its key and given back as its start state: a label that
    # changes (a filter picked) would otherwise close it while several filters are picked.
    opened = bool(st.session_state.get(f"{page}_filters_open", False))
    with st.expander(
        label, opened, key=f"{page}_filters_open", on_change=_no_op, icon=":material/filter_list:"
    ):
        cols = st.columns(min(len(dims), 4))
        chosen: dict[str, tuple[str, ...]] = {}
        for i, dim in enumerate(dims):
            values = choices.get(dim, {})
            key = f"{page}_f_{dim}"
            # A value no longer in the data (or from another business's link) would make the widget fail.
            if any(v not in values for v in st.session_state.get(key) or []):
                _set_widget(key, [v for v in st.session_state[key] if v in values])
            picked = cols[i % len(cols)].multiselect(
                DIMENSION_LABELS[dim],
                list(values),
                default=_widget_default(key),
                format_func=_labeller(values),
                placeholder="All",
                key=key,
            )
            if picked:
                chosen[dim] = tuple(picked)
    _chips(page, chosen, choices)
    return chosen


def _no_op() -> None:
    """The filters panel's change callback: its open state is tracked (and kept) by its key."""


def _chips(page: str, chosen: Mapping[str, Sequence[str]], choices: Mapping[str, Mapping[str, str]]) -> None:
    """One removable chip per active filter value: 'Region: North ✕'."""
    if not chosen:
        return
    with st.container(horizontal=True, gap="small", key=f"{page}_chips"):
        for dim, values in chosen.items():
            for value in values:
                label = choices.get(dim, {}).get(value, value)
                st.button(
                    f"{DIMENSION_LABELS.get(dim, dim)}: {label}",
                    key=f"{page}_chip_{dim}_{value}",
                    icon=":material/close:",
                    help="Remove this filter",
                    on_click=remove_filter,
                    args=(page, dim, value),
                    type="secondary",
                )
