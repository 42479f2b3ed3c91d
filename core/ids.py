"""Row ids that come from outside (URLs, the command line, forms) checked before any look-up."""

from __future__ import annotations

# Primary keys are INTEGER columns: 32-bit in PostgreSQL (a larger value there is an error, not "no
# row"), 64-bit in SQLite. No row of either can have an id above this.
MAX_ID = 2**31 - 1


def storable_id(value: object) -> bool:
    """True for an id a row can have (1 .. 2**31 - 1). Anything else - 10**12 from a URL or the command
    line, say - names no row: callers answer NotFound as they do for a missing row."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_ID
