"""Row ids that come from outside (URLs, the command line, forms) checked before any look-up."""

from __future__ import annotations

MAX_ID = 2**63 - 1  # the largest BIGINT: SQLite raises OverflowError past it, PostgreSQL an error


def storable_id(value: object) -> bool:
    """True for an id a row can have (1 .. 2**63 - 1). Anything else - 2**70 from a URL or the command
    line, say - names no row: callers answer NotFound as they do for a missing row."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_ID
