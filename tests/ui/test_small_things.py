"""Issue 13's small things below the browser: times in the business's named zone, no server paths in
messages, code labels in tables, column widths that fit the page, the one-table CSV download."""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
from decimal import Decimal

import pandas as pd
import pytest

from analytics.report import Column, Table
from ui.formatting import SERVER_PATH, local_text, without_paths, zone_abbreviation
from ui.tables import (
    PAGE_WIDTH_PX,
    TEXT_MAX_PX,
    display_frame,
    fit_columns,
    plain_widths,
    table_csv,
    text_px,
)

# The dataframe's row-selection column (a table whose rows open a detail) takes about this much.
ROW_MARKER_PX = 34
# Half the main column at 1440 px with the sidebar open (Overview's Top 10 tables side by side),
# measured in Chromium: the box is 482 px, its scroll area 480.
HALF_PAGE_PX = 480


# --- one time zone, named ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stored", "tz", "fmt", "expected"),
    [
        (dt.datetime(2026, 12, 4, 7, 20), "Europe/Berlin", "%Y-%m-%d %H:%M", "2026-12-04 08:20 CET"),
        (dt.datetime(2026, 7, 4, 6, 20), "Europe/Berlin", "%H:%M", "08:20 CEST"),
        (dt.datetime(2026, 7, 4, 6, 20, tzinfo=dt.UTC), "UTC", "%H:%M", "06:20 UTC"),
        (dt.datetime(2026, 12, 7, 12, 30), "America/New_York", "%a %H:%M", "Mon 07:30 EST"),
        # A zone whose short name is an offset ("+08") is named by its IANA name instead.
        (dt.datetime(2026, 12, 4, 0, 0), "Asia/Dubai", "%H:%M", "04:00 Asia/Dubai"),
        (None, "Europe/Berlin", "%H:%M", "—"),
    ],
)
def test_times_read_in_the_named_zone(stored: dt.datetime | None, tz: str, fmt: str, expected: str) -> None:
    assert local_text(stored, tz, fmt) == expected


def test_the_zone_name_follows_daylight_saving() -> None:
    assert zone_abbreviation("Europe/Berlin", dt.datetime(2026, 1, 15, 12)) == "CET"
    assert zone_abbreviation("Europe/Berlin", dt.datetime(2026, 7, 15, 12)) == "CEST"


# --- no server paths --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            "SMTP is not set up: emails are written as .eml files to /srv/tb/data/outbox instead.",
            f"SMTP is not set up: emails are written as .eml files to {SERVER_PATH} instead.",
        ),
        (
            "[Errno 13] Permission denied: '/var/lib/tb/reports/b1/3/kpi.pdf'",
            f"[Errno 13] Permission denied: '{SERVER_PATH}'",
        ),
        ("Cannot open C:\\tally\\data\\secret.key now", f"Cannot open {SERVER_PATH} now"),
        # Not paths: a URL, a date, words with a slash, a single slash.
        ("See https://example.com/a/b/c for it", "See https://example.com/a/b/c for it"),
        ("Due 2026/12/04, and/or later, 1/2 done", "Due 2026/12/04, and/or later, 1/2 done"),
        ("Admin → Email", "Admin → Email"),
    ],
)
def test_messages_for_people_carry_no_server_paths(message: str, expected: str) -> None:
    assert without_paths(message) == expected


# --- labels for codes -------------------------------------------------------------------------------


def test_tables_show_the_labels_of_codes() -> None:
    table = Table(
        "t",
        "T",
        [Column("method", "Method"), Column("customer_type", "Type"), Column("movement", "Movement")],
        pd.DataFrame(
            {
                "method": ["bank_transfer", "credit_note", "cash"],
                "customer_type": ["wholesale", "retail", None],
                "movement": ["none", "fast", "slow"],
            },
            dtype=object,
        ),
    )
    shown = display_frame(table)
    assert list(shown["method"]) == ["Bank transfer", "Credit note", "Cash"]
    assert list(shown["customer_type"]) == ["Wholesale", "Retail", ""]
    assert list(shown["movement"]) == ["Not sold", "Fast", "Slow"]  # the table's label, not "None"
    assert list(table.frame["method"]) == ["bank_transfer", "credit_note", "cash"]  # the data keeps codes


# --- widths that fit the page ----------------------------------------------------------------------


def top_products() -> Table:
    """Overview's Top 10 products as the page shows it (the demo's longest names)."""
    names = ["LED Bulb Single", "Chopped Tomatoes 2.5 kg", "Ballpoint Pens Box of 10", "Veggie Crisps 150 g"]
    return Table(
        "top_products",
        "Top 10 products",
        [
            Column("product_name", "Product"),
            Column("quantity", "Quantity", "quantity"),
            Column("revenue", "Revenue", "money"),
            Column("share_pct", "Share of revenue", "pct"),
            Column("margin_pct", "Margin %", "pct"),
        ],
        pd.DataFrame(
            {
                "product_name": names,
                "quantity": [Decimal(374), Decimal(103), Decimal(32), Decimal(582)],
                "revenue": [Decimal("1606.92"), Decimal("1499.00"), Decimal("1133.68"), Decimal("1105.55")],
                "share_pct": [0.031, 0.029, 0.022, 0.021],
                "margin_pct": [0.248, 0.316, 0.466, 0.371],
            },
            dtype=object,
        ),
    )


def test_top_10_products_fits_half_the_page_with_its_row_marker() -> None:
    table = top_products()
    fits = fit_columns(table.columns, display_frame(table), "EUR")
    assert sum(f.width for f in fits.values()) + ROW_MARKER_PX <= HALF_PAGE_PX
    # every header shows whole: a width at least its text's; the long one is shortened, with help
    assert all(f.width >= text_px(f.label) + 16 for f in fits.values())
    assert (fits["share_pct"].label, fits["share_pct"].help) == ("Share", "Share of revenue")
    assert (fits["revenue"].label, fits["revenue"].help) == ("Revenue", None)
    # the longest name shows whole
    assert fits["product_name"].width >= text_px("Ballpoint Pens Box of 10") + 16
    assert not any(f.pinned for f in fits.values())  # it fits: nothing to pin


def test_two_codes_in_one_table_keep_their_long_labels() -> None:
    cols = [Column("customer_code", "Customer code"), Column("storefront_code", "Storefront code")]
    frame = pd.DataFrame({"customer_code": ["C1"], "storefront_code": ["NTH"]}, dtype="string")
    fits = fit_columns(cols, frame)
    assert [f.label for f in fits.values()] == ["Customer code", "Storefront code"]
    alone = fit_columns(cols[:1], frame)
    assert (alone["customer_code"].label, alone["customer_code"].help) == ("Code", "Customer code")


def test_a_table_too_wide_for_the_page_pins_its_names() -> None:
    measures = [Column(f"m{i}", f"Measure number {i}", "money") for i in range(12)]
    cols = [Column("customer_code", "Customer code"), Column("customer_name", "Customer"), *measures]
    frame = pd.DataFrame(
        {
            "customer_code": ["C0001"],
            "customer_name": ["Gasthaus Zum Löwen"],
            **{f"m{i}": [1.5] for i in range(12)},
        }
    )
    fits = fit_columns(cols, frame)
    assert sum(f.width for f in fits.values()) > PAGE_WIDTH_PX
    assert [k for k, f in fits.items() if f.pinned] == ["customer_code", "customer_name"]


def test_a_long_name_is_capped() -> None:
    cols = [Column("product_name", "Product")]
    frame = pd.DataFrame({"product_name": ["A very long product name " * 5]}, dtype="string")
    assert fit_columns(cols, frame)["product_name"].width == TEXT_MAX_PX


def test_plain_tables_fit_the_page_and_times_stay_whole() -> None:
    when = "2026-12-04 21:21 CET"
    frame = pd.DataFrame(
        {
            "Run": [6, 5],
            "Report": ["Customer performance", "Gross profit"],
            "Status": ["failed: Unknown report 'payments_summary'; reports are: " + "x, " * 40, "completed"],
            "By": ["cli", "manager"],
            "When": [when, when],
            "Period": ["1–30 Nov 2026 (last month)", "1–30 Nov 2026 (last month)"],
            "Formats": ["CSV, Excel, PDF", "PDF"],
            "Rows": [360, 12_000],
            "Size": ["47 KB", "1.2 MB"],
            "Time (s)": [0.4, 12.5],
        }
    )
    widths = plain_widths(frame, cap=170)
    assert sum(widths.values()) <= PAGE_WIDTH_PX
    assert widths["When"] >= text_px(when) + 16  # a time is never cut
    assert widths["Status"] < widths["Period"]  # the cut error gives first
    assert all(w >= text_px(name) + 16 for name, w in widths.items())  # headers whole


# --- the one-table CSV ------------------------------------------------------------------------------


def test_the_one_table_csv_has_every_row_as_the_exporter_writes_it() -> None:
    rows = 6_000  # more than the page shows (ui/tables.MAX_ROWS)
    frame = pd.DataFrame(
        {
            "method": ["bank_transfer", "cash"] * (rows // 2),
            "revenue": [Decimal(i) / 100 for i in range(rows)],
        },
        dtype=object,
    )
    table = Table(
        "by_method", "By method", [Column("method", "Method"), Column("revenue", "Revenue", "money")], frame
    )
    data = table_csv(table)
    assert data.startswith(codecs.BOM_UTF8)
    parsed = list(csv.reader(io.StringIO(data[len(codecs.BOM_UTF8) :].decode("utf-8"), newline="")))
    assert parsed[0] == ["method", "revenue"]  # column keys, as the CSV export has them
    assert len(parsed) == rows + 1
    assert [Decimal(r[1]) for r in parsed[1:]] == [Decimal(i) / 100 for i in range(rows)]
    assert {r[0] for r in parsed[1:]} <= {"bank_transfer", "cash", "Bank transfer", "Cash"}
