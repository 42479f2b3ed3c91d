"""Issue 13: the daemon's log keeps its own INFO lines but not fontTools' font-subsetting chatter (a
dozen INFO lines for every PDF fpdf2 writes); at DEBUG everything shows."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Logging set up as the daemon and its workers do (or as plain basicConfig), then a PDF with an
# embedded, subsetted font — what every PDF report and email image does.
SCRIPT = """
import logging, sys
from pathlib import Path
import matplotlib
from fpdf import FPDF
if sys.argv[1] == "plain":
    logging.basicConfig(level="INFO")
else:
    from scheduling.workers import configure_logging
    configure_logging(int(sys.argv[1]) if sys.argv[1].isdigit() else sys.argv[1])
logging.getLogger("scheduler").info("tick: 1 window claimed")
pdf = FPDF()
pdf.add_page()
pdf.add_font("DejaVu", fname=str(Path(matplotlib.get_data_path()) / "fonts/ttf/DejaVuSans.ttf"))
pdf.set_font("DejaVu", size=12)
pdf.cell(text="Revenue €1,234.50 · Café")
assert pdf.output()[:4] == b"%PDF"
"""


def log_of(level: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, level], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stderr


def test_plain_logging_shows_the_font_subsetting_at_info() -> None:
    assert "INFO:fontTools.subset" in log_of("plain")  # what the daemon's log was full of


@pytest.mark.parametrize("level", ["INFO", "20"])  # the daemon's --log-level; a worker's number
def test_the_daemon_logs_its_own_info_but_not_font_subsetting(level: str) -> None:
    log = log_of(level)
    assert "INFO scheduler: tick: 1 window claimed" in log
    assert "fontTools" not in log


def test_at_debug_the_font_subsetting_shows_again() -> None:
    assert "fontTools.subset" in log_of("DEBUG")
