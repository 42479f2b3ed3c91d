"""Time zone names from outside (URLs, the command line) that name a folder or are too long for a file
name are refused like any unknown zone, never with a file-system error."""

from __future__ import annotations

import pytest

from analytics.periods import PeriodError, zone
from analytics.report import ParamError, ReportParams


@pytest.mark.parametrize("name", ["America", "Europe", "a" * 300, "Etc/" + "b" * 300])
def test_a_zone_name_that_is_no_zone_file_is_an_unknown_zone(name: str) -> None:
    with pytest.raises(PeriodError, match="Unknown time zone"):
        zone(name)
    with pytest.raises(ParamError, match="Unknown time zone"):
        ReportParams.from_pairs([f"tz={name}"])
