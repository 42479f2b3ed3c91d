"""ABC classification (SPEC section 2): one SQL building block shared by customer and product reports."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pandas as pd

# Class limits as integer percentages, so the comparison stays exact on integer micros.
A_LIMIT_PCT = 80
B_LIMIT_PCT = 95
CLASSES = ("A", "B", "C")


def abc_sql(source: str, key: str, value: str = "revenue") -> str:
    """SQL selecting every row of `source` plus its ABC columns, ranked by `value` DESC, `key` ASC.

    `source` is a relation (CTE name or parenthesised subquery) with one row per item, `key` its
    unique code column and `value` an integer micros column (the item's revenue). Added columns:
    rank (1.. over all rows, value DESC then key), abc_cumulative (micros, including the item),
    abc_total (micros over the classified items), cumulative_share_pct (DOUBLE fraction) and
    abc_class ('A' while the cumulative share is <= 80 %, 'B' while <= 95 %, else 'C'; the first
    item is always 'A'). Only items with value > 0 are classified; the others get NULL ABC columns
    and rank after them. Boundaries are compared exactly as cumulative * 100 <= total * limit.
    Names come from code, never from user input.
    """
    return f"""
        SELECT ranked.* EXCLUDE (abc_position),
               CASE WHEN abc_position IS NOT NULL THEN CAST(abc_cumulative AS DOUBLE) / abc_total END
                   AS cumulative_share_pct,
               CASE
                   WHEN abc_position IS NULL THEN NULL
                   WHEN abc_position = 1 OR abc_cumulative * 100 <= abc_total * {A_LIMIT_PCT} THEN 'A'
                   WHEN abc_cumulative * 100 <= abc_total * {B_LIMIT_PCT} THEN 'B'
                   ELSE 'C'
               END AS abc_class
        FROM (
            SELECT item.*,
                   ROW_NUMBER() OVER (ORDER BY item.{value} > 0 DESC, item.{value} DESC, item.{key}) AS rank,
                   CASE WHEN item.{value} > 0 THEN ROW_NUMBER() OVER abc_window END AS abc_position,
                   CASE WHEN item.{value} > 0 THEN SUM(item.{value}) OVER abc_window END AS abc_cumulative,
                   CASE WHEN item.{value} > 0
                        THEN SUM(item.{value}) OVER (PARTITION BY item.{value} > 0) END AS abc_total
            FROM {source} AS item
            WINDOW abc_window AS (
                PARTITION BY item.{value} > 0 ORDER BY item.{value} DESC, item.{key}
                ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
            )
        ) AS ranked
    """


def abc_summary(items: pd.DataFrame, count_name: str) -> pd.DataFrame:
    """Per ABC class of `items` (columns abc_class, revenue as Decimal): the count (named
    `count_name`), revenue and share of the classified revenue. No rows when nothing is
    classified (an empty period), else one row per class A, B, C, zero when a class is empty."""
    classified = items[items["abc_class"].notna()]
    if classified.empty:
        return pd.DataFrame({"abc_class": [], count_name: [], "revenue": [], "share_pct": []})
    total = sum(classified["revenue"], Decimal(0))
    rows: list[dict[str, Any]] = []
    for cls in CLASSES:
        part = classified[classified["abc_class"] == cls]
        amount = sum(part["revenue"], Decimal(0))
        rows.append(
            {
                "abc_class": cls,
                count_name: len(part),
                "revenue": amount,
                "share_pct": float(amount / total) if total else None,
            }
        )
    return pd.DataFrame(rows)
