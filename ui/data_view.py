"""The Data page's pieces: import one file with a progress bar, its result or row errors, freshness, import history."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

import pandas as pd
import streamlit as st

from ingest.freshness import Freshness, ImportRecord
from ingest.importer import COLUMNS, ENTITIES, OPTIONAL_COLUMNS, ImportResult, import_file
from runs.files import format_bytes
from ui.context import PageContext
from ui.formatting import local_text, without_paths
from ui.tables import plain_table

ENTITY_LABELS = {
    "customers": "Customers",
    "products": "Products",
    "storefronts": "Storefronts",
    "sales": "Sales (one row per order line)",
    "payments": "Payments",
    "forecasts": "Forecasts",
    "inventory": "Inventory levels",
}
RESULT_KEY = "data_result"


def import_form(ctx: PageContext) -> None:
    """Entity, file and an Import button; the result is kept in session state for `show_result`."""
    left, right = st.columns([1, 2])
    entity = left.selectbox(
        "What the file holds", ENTITIES, format_func=ENTITY_LABELS.__getitem__, key="data_entity"
    )
    upload = right.file_uploader(
        "CSV or Excel file (header row with the field names; ISO dates; '.' decimal point)",
        type=["csv", "xlsx"],
        key="data_file",
        help=f"Up to {format_bytes(ctx.settings.max_upload_bytes)} per file.",
    )
    optional = OPTIONAL_COLUMNS.get(entity, frozenset())
    st.caption(
        "Columns: " + ", ".join(f"{c} (optional)" if c in optional else c for c in COLUMNS[entity]) + "."
    )
    if st.button(
        "Import", type="primary", icon=":material/upload:", disabled=upload is None, key="data_import"
    ):
        assert upload is not None
        data = upload.getvalue()
        if len(data) > ctx.settings.max_upload_bytes:
            st.error(
                f"The file is {format_bytes(len(data))}; the limit is {format_bytes(ctx.settings.max_upload_bytes)} "
                "(set TALLYBOARD_MAX_UPLOAD_MB to raise it). Split it into smaller files, or import it with "
                "`python manage.py import`, which takes files of any size."
            )
            return
        bar = st.progress(0.0, text="Checking every row…")

        def progress(done: int, total: int) -> None:
            bar.progress(min(done / max(total, 1), 1.0), text=f"{done:,} of {total:,} rows")

        st.session_state[RESULT_KEY] = import_file(
            ctx.engine,
            ctx.business_id,
            entity,
            upload.name,
            data,
            ctx.settings,
            username=ctx.username,
            progress=progress,
        )
        bar.empty()
        if st.session_state[RESULT_KEY].ok:
            # Build the reports' copy of the new data now, in the background: pages keep answering
            # from the previous copy ("Refreshing data…") until it is ready.
            threading.Thread(target=_refresh, args=(ctx,), daemon=True).start()


def _refresh(ctx: PageContext) -> None:
    try:
        ctx.store.refresh(ctx.business_id)
    except Exception:  # the next page view or the daemon's tick builds it; say why in the log
        logging.getLogger(__name__).exception(
            "refreshing the report data of business %s failed", ctx.business_id
        )


def show_result() -> None:
    result: ImportResult | None = st.session_state.get(RESULT_KEY)
    if result is None:
        return
    if result.ok:
        st.success(f"{result.filename}: {without_paths(result.message)}", icon=":material/check_circle:")
        return
    nothing = "" if "nothing was imported" in result.message.lower() else " Nothing was imported."
    st.error(f"{result.filename}: {without_paths(result.message)}{nothing}", icon=":material/error:")
    st.caption("Fix these rows in the file and import it again (row 1 is the header row).")
    st.dataframe(errors_frame(result), hide_index=True, width="stretch", key="data_errors")


def errors_frame(result: ImportResult) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "Row": [e.row or None for e in result.errors],
            "Column": [e.column or "(whole row)" if e.row else "(file)" for e in result.errors],
            "Problem": [without_paths(e.reason) for e in result.errors],
        }
    ).astype({"Row": "Int64"})


def freshness(ctx: PageContext, fresh: Freshness) -> None:
    cols = st.columns(3)
    cols[0].metric(
        "Last data change",
        local_text(fresh.updated_at, ctx.timezone) if fresh.updated_at else "never",
        border=True,
    )
    cols[1].metric(
        "Data version", f"{fresh.data_version:,}", border=True, help="Goes up with every accepted import."
    )
    cols[2].metric("Rows in total", f"{sum(fresh.rows.values()):,}", border=True)
    counts = pd.DataFrame({"Data": list(fresh.rows), "Rows": list(fresh.rows.values())})
    st.dataframe(
        counts,
        hide_index=True,
        width=480,
        column_config={"Rows": st.column_config.NumberColumn(format="%,d")},
        key="data_counts",
    )


def history(ctx: PageContext, records: Sequence[ImportRecord]) -> None:
    if not records:
        st.caption("No imports yet.")
        return
    frame = pd.DataFrame(
        {
            "When": [local_text(r.created_at, ctx.timezone) for r in records],
            "Data": [ENTITY_LABELS.get(r.entity, r.entity) for r in records],
            "File": [r.filename for r in records],
            "Status": [r.status for r in records],
            "Rows": [r.rows for r in records],
            "Inserted": [r.inserted for r in records],
            "Updated": [r.updated for r in records],
            "Errors": [r.error_count for r in records],
            "By": [r.username for r in records],
            "Message": [r.message for r in records],
        }
    )
    plain_table(frame, key="data_history", caps={"File": 160, "Message": 240})
