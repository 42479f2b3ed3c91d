"""The report builder's widgets: templates (apply, delete, save as), column choice per table and formats.

Applying a template fills the widgets of ui/filters.report_params by their session-state keys
("builder_period", "builder_start", "builder_end", "builder_o_<option>", "builder_f_<filter>").
"""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from analytics.definition import ReportDefinition
from analytics.report import ReportParams
from core.errors import TallyboardError
from exporters import EXPORTERS
from reports.registry import definition
from runs import saved
from runs.access import allowed_reports
from runs.files import format_label
from runs.runner import generations_used
from runs.saved import SavedInfo, SavedSetup
from ui import report_view
from ui.context import PageContext
from ui.filters import dimension_choices
from ui.formatting import without_paths
from ui.tables import show_table

PAGE = "builder"
REPORT_KEY, FORMATS_KEY, TEMPLATE_KEY, NOTICE_KEY = (
    "builder_report",
    "builder_formats",
    "builder_template",
    "builder_notice",
)
FORMAT_ORDER = ("xlsx", "csv", "pdf", "json")


def reports(ctx: PageContext) -> list[ReportDefinition]:
    return allowed_reports(ctx.scope)


def templates(ctx: PageContext) -> list[SavedInfo]:
    """System templates (created on first use), the business's templates and the user's saved reports."""
    with ctx.session() as session:
        saved.ensure_system_templates(session, ctx.business_id)
        return saved.list_saved(session, ctx.scope, ctx.user_id)


def notice() -> None:
    """The message a callback left (applied, saved, deleted)."""
    message = st.session_state.pop(NOTICE_KEY, None)
    if message:
        kind, text = message
        (st.success if kind == "ok" else st.error)(text)


def template_bar(ctx: PageContext, items: Sequence[SavedInfo]) -> None:
    """Pick a template or saved report, apply it in one click, or delete your own."""
    by_id = {i.id: i for i in items}
    left, apply_col, delete_col = st.columns([5, 1, 1], vertical_alignment="bottom")
    chosen = left.selectbox(
        "Start from a template or saved report",
        list(by_id),
        format_func=lambda i: f"{by_id[i].name} — {by_id[i].kind}",
        index=None,
        placeholder="Choose a template…",
        key=TEMPLATE_KEY,
    )
    apply_col.button(
        "Apply",
        on_click=_apply,
        args=(ctx, chosen),
        disabled=chosen is None,
        key="builder_apply",
        width="stretch",
    )
    info = by_id.get(chosen) if chosen is not None else None
    can_delete = (
        info is not None and not info.system and (info.owner_id == ctx.user_id or ctx.role == "admin")
    )
    delete_col.button(
        "Delete",
        on_click=_delete,
        args=(ctx, chosen),
        disabled=not can_delete,
        key="builder_delete",
        help="Delete this saved report or template (yours, or any as an admin).",
        width="stretch",
    )


def _apply(ctx: PageContext, saved_id: int | None) -> None:
    if saved_id is None:
        return
    try:
        with ctx.session() as session:
            setup = saved.apply(session, ctx.scope, ctx.user_id, saved_id, tz=ctx.timezone)
    except TallyboardError as exc:
        st.session_state[NOTICE_KEY] = ("error", without_paths(str(exc)))
        return
    _fill_widgets(ctx, setup)
    st.session_state[NOTICE_KEY] = ("ok", f"Applied “{setup.name}”. Change anything below, then Generate.")


def _fill_widgets(ctx: PageContext, setup: SavedSetup) -> None:
    state = st.session_state
    defn = definition(setup.slug)
    params = setup.params
    state[REPORT_KEY] = setup.slug
    if params.start and params.end:
        state[f"{PAGE}_period"], state[f"{PAGE}_start"], state[f"{PAGE}_end"] = (
            "custom",
            params.start,
            params.end,
        )
    else:
        state[f"{PAGE}_period"] = params.period or defn.default_period
    for spec in defn.options:
        if spec.choices:
            value = params.options.get(spec.name, spec.default)
            state[f"{PAGE}_o_{spec.name}"] = value if value in spec.choices else spec.default
    if defn.filters:
        known = dimension_choices(ctx)
        for dim in defn.filters:
            state[f"{PAGE}_f_{dim}"] = [v for v in params.filters.get(dim, ()) if v in known.get(dim, {})]
    for key in [k for k in state if str(k).startswith(f"{PAGE}_cols_{setup.slug}_")]:
        del state[key]
    for table, cols in params.columns.items():
        state[f"{PAGE}_cols_{setup.slug}_{table}"] = list(cols)
    state[FORMATS_KEY] = [f for f in setup.formats if f in EXPORTERS] or [format_choices()[0]]


def _delete(ctx: PageContext, saved_id: int | None) -> None:
    if saved_id is None:
        return
    try:
        with ctx.session() as session:
            info = saved.get_saved(session, ctx.scope, ctx.user_id, saved_id)
            saved.delete(session, ctx.scope, ctx.user_id, saved_id)
    except TallyboardError as exc:
        st.session_state[NOTICE_KEY] = ("error", without_paths(str(exc)))
        return
    st.session_state.pop(TEMPLATE_KEY, None)
    st.session_state[NOTICE_KEY] = ("ok", f"Deleted “{info.name}”.")


def column_choice(ctx: PageContext, slug: str, params: ReportParams) -> dict[str, tuple[str, ...]]:
    """A multiselect per table (from a preview of the report), in the order picked; {} = every column."""
    report = report_view.report_or_error(ctx, slug, params)
    if report is None:
        st.stop()
    choice: dict[str, tuple[str, ...]] = {}
    changed = 0
    with st.expander("Columns", icon=":material/view_column:"):
        for name, table in report.tables.items():
            keys = [c.key for c in table.columns]
            labels = {c.key: c.label for c in table.columns}
            state_key = f"{PAGE}_cols_{slug}_{name}"
            current = st.session_state.setdefault(state_key, keys)
            if any(k not in labels for k in current):  # a saved choice naming columns the report lost
                st.session_state[state_key] = [k for k in current if k in labels]
            picked = st.multiselect(
                f"{table.title} ({table.row_count:,} rows)",
                keys,
                format_func=labels.__getitem__,
                key=state_key,
            )
            if not picked:
                st.caption("No column chosen: the file gets all of them.")
            elif picked != keys:
                choice[name] = tuple(picked)
                changed += 1
            show_table(table.select(picked or keys), report.currency, key=f"{state_key}_preview", height=160)
    if changed:
        st.caption(f"Column choice changed in {changed} table{'s' if changed > 1 else ''}.")
    return choice


def format_choices() -> list[str]:
    return [f for f in FORMAT_ORDER if f in EXPORTERS] + [f for f in EXPORTERS if f not in FORMAT_ORDER]


def format_picker() -> list[str]:
    options = format_choices()
    st.session_state.setdefault(FORMATS_KEY, [options[0]])
    return list(
        st.multiselect(
            "File formats", options, format_func=format_label, key=FORMATS_KEY, placeholder="Choose formats"
        )
    )


def rate_caption(ctx: PageContext) -> None:
    limit = ctx.settings.rate_limit_per_hour
    if limit <= 0:
        return
    with ctx.session() as session:
        used = generations_used(session, ctx.user_id)
    st.caption(f"{used} of {limit} generations used in the last hour (reusing a cached report is free).")


def save_form(ctx: PageContext, slug: str, params: ReportParams, formats: Sequence[str]) -> None:
    """'Save as…': a name and whether everyone in the business may use it as a template."""
    with st.popover("Save as…", icon=":material/bookmark_add:"):
        st.text_input("Name", key="builder_save_name", max_chars=saved.MAX_NAME)
        st.toggle("Share as a template with everyone in the business", key="builder_save_template")
        st.button(
            "Save",
            on_click=_save,
            args=(ctx, slug, params, tuple(formats)),
            key="builder_save",
            type="primary",
        )


def _save(ctx: PageContext, slug: str, params: ReportParams, formats: tuple[str, ...]) -> None:
    name = str(st.session_state.get("builder_save_name", ""))
    template = bool(st.session_state.get("builder_save_template", False))
    try:
        with ctx.session() as session:
            info = saved.save(
                session, ctx.scope, ctx.user_id, name, slug, params, formats, as_template=template
            )
    except TallyboardError as exc:
        st.session_state[NOTICE_KEY] = ("error", without_paths(str(exc)))
        return
    st.session_state[TEMPLATE_KEY] = info.id
    st.session_state["builder_save_name"] = ""
    st.session_state[NOTICE_KEY] = ("ok", f"Saved “{info.name}” as a {info.kind.lower()}.")
