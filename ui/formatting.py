"""How values look on the pages: st.column_config formats per column kind, times in the business's
named time zone ("2026-12-04 08:20 CET"), codes as their labels.

Everything else (values, currency symbols, changes, code labels) comes from analytics.formatting and
analytics.labels, the modules every surface shares.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from analytics.formatting import currency_symbol
from analytics.labels import label
from analytics.periods import zone
from core.clock import named_time, zone_name

MISSING_TIME = "—"


def column_format(kind: str, currency: str = "EUR") -> str | None:
    """The st.column_config printf format for a column kind (pct values are shown ×100)."""
    if kind == "money":
        return f"{currency_symbol(currency)}%,.2f"
    if kind == "pct":
        return "%.1f %%"
    if kind == "int":
        return "%,d"
    if kind == "quantity":
        return "%,.0f"
    if kind == "number":
        return "%,.2f"
    return None


def in_zone(when: dt.datetime, tz: str) -> dt.datetime:
    """Instant `when` (naive = UTC, as stored) as an aware time in zone `tz`."""
    aware = when if when.tzinfo else when.replace(tzinfo=dt.UTC)
    return aware.astimezone(zone(tz))


def zone_abbreviation(tz: str, when: dt.datetime | None = None) -> str:
    """The zone's short name at `when` (default now): 'CET', 'CEST', 'UTC'; its IANA name when the zone
    has no letters for it (a bare offset such as '+08' says less than 'Asia/Manila')."""
    return zone_name(tz, when or dt.datetime.now(dt.UTC))


def local_text(when: dt.datetime | None, tz: str, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A stored time (naive UTC) as people read it: local time in `tz`, named — '2026-12-04 08:20 CET'.
    None reads as '—'."""
    if when is None:
        return MISSING_TIME
    return named_time(when, tz, fmt)


def code_label(column: str, value: Any) -> Any:
    """A code of column `column` as its label ("bank_transfer" -> "Bank transfer"); anything else as it is."""
    return label(column, value)


# A file-system path in a message (an OSError's file, a folder in a setting): absolute, two or more
# parts, not part of a URL ("https://host/a/b") or a date ("2026/12/04").
_PATH = re.compile(r"(?<![\w:/.])(?:[A-Za-z]:\\|/)(?:[\w.@+-]+[/\\])+(?:[\w.@+-]*[\w@+-])?")
SERVER_PATH = "(a path on the server)"


def without_paths(text: str) -> str:
    """`text` with the server's file paths left out: people using the app never see server paths."""
    return _PATH.sub(SERVER_PATH, text)
