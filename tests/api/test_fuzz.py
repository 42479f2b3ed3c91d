"""A schemathesis fuzz run of the live API's own OpenAPI document: no 5xx, every answer as documented
(status, content type, headers, schema), schema-violating requests refused, and no endpoint without
its token. Not checked: `positive_data_acceptance`, because a request can fit the document and still
be wrong (start without end, a filter the chosen report does not take: 400, naming the parameter)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.api.conftest import Api

RATE_LIMIT_PER_HOUR = 0  # the fuzz run generates hundreds of reports: no hourly limit on this server
EXAMPLES = 15
SEED = 11


@pytest.mark.slow
def test_schemathesis_finds_nothing(api: Api, tmp_path: Path) -> None:
    """As an admin: every report (the audit log too) and every run of the business."""
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        f"{api.url}/api/v1/openapi.json",
        "--header",
        f"Authorization: Bearer {api.tokens['admin']}",
        "--checks",
        "all",
        "--exclude-checks",
        "positive_data_acceptance",
        "--max-examples",
        str(EXAMPLES),
        "--seed",
        str(SEED),
        "--workers",
        "2",
        "--no-color",
    ]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "", "NO_COLOR": "1"}
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    assert "passed" in output and " 0 passed" not in output
