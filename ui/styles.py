"""The app's few CSS rules, drawn once per run by ui/dashboard: what Streamlit's layout does not do.

- KPI labels wrap instead of ending in "…" ("Products with negative gross profit").
- Up to 640 px wide (a phone): KPI cards two per row with a smaller value, the chart toolbar (plotly's
  modebar) hidden so it never covers a chart's title (Streamlit's full-screen button stays), and tables
  scroll inside their box.
"""

from __future__ import annotations

import streamlit as st

PHONE_MAX_PX = 640  # Streamlit stacks columns below this width

CSS = f"""
<style>
[data-testid="stMetricLabel"] .stMarkdownEllipsis,
[data-testid="stMetricLabel"] p {{
  white-space: normal !important; overflow: visible !important; text-overflow: clip !important;
  overflow-wrap: anywhere;
}}
[data-testid="stMetricLabel"] {{ height: auto !important; min-height: 1.5rem; }}
@media (max-width: {PHONE_MAX_PX}px) {{
  [data-testid="stHorizontalBlock"]:has(> [data-testid="stColumn"] [data-testid="stMetric"]) {{
    flex-flow: row wrap !important; gap: 0.5rem !important;
  }}
  [data-testid="stHorizontalBlock"]:has(> [data-testid="stColumn"] [data-testid="stMetric"])
    > [data-testid="stColumn"] {{
    flex: 1 1 calc(50% - 0.25rem) !important; width: calc(50% - 0.25rem) !important;
    min-width: calc(50% - 0.25rem) !important; max-width: calc(50% - 0.25rem) !important;
  }}
  [data-testid="stMetricValue"] {{ font-size: 1.35rem !important; }}
  [data-testid="stMetricValue"] > div {{ overflow-wrap: anywhere; white-space: normal !important; }}
  div:has(> [data-testid="stMetricDeltaDescription"]) {{ flex-wrap: wrap !important; row-gap: 0.15rem; }}
  [data-testid="stMetricDeltaDescription"], [data-testid="stMetricDeltaDescription"] * {{
    white-space: normal !important; overflow: visible !important; text-overflow: clip !important;
  }}
  .stPlotlyChart .modebar-container {{ display: none !important; }}
  [data-testid="stDataFrame"] {{ max-width: 100% !important; overflow: hidden; }}
}}
</style>
"""


def inject() -> None:
    """Add the app's CSS to the page (a style-only st.html takes no space)."""
    st.html(CSS)
