"""The README is complete and self-contained: its command table lists every command of manage.py (read
from the parser itself), it says how to run on another port, and every file it points at is in the
repository."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from manage import build_parser

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
# Runtime files the README describes: made by `make run` under TALLYBOARD_DATA_DIR, never in git.
RUNTIME = ("data/",)
# How a file's name ends, for a backticked word without a slash to count as one of the project's
# files (`manage.py`); names of outputs (`summary.csv`, `report.json`) are not paths.
FILE_ENDINGS = r"\w\.(py|md|toml|txt|cfg|ini|yaml|yml|sh)$"


def commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[str]:
    """Every command line the parser takes, as words: 'init-db', 'users set-password', ..."""
    found: list[str] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                nested = any(isinstance(a, argparse._SubParsersAction) for a in sub._actions)
                found += commands(sub, (*prefix, name)) if nested else [" ".join((*prefix, name))]
    return found


def section(title: str) -> str:
    """The README's section `## title` (up to the next `## `)."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", README, flags=re.S | re.M)
    assert match, f"README has no section '## {title}'"
    return match.group(1)


def test_the_command_table_lists_every_command() -> None:
    found = commands(build_parser())
    assert {"init-db", "report", "users ensure-demo", "schedules add", "smtp test"} <= set(found)
    rows = [line for line in section("Command line").splitlines() if line.startswith("| `")]
    missing = [
        command for command in found if not any(re.search(rf"`{re.escape(command)}[ `]", row) for row in rows)
    ]
    assert not missing, f"the README's command table lacks: {', '.join(missing)}"


def test_options_of_report_are_in_its_row() -> None:
    row = next(line for line in section("Command line").splitlines() if line.startswith("| `report SLUG"))
    report = next(
        sub
        for action in build_parser()._actions
        if isinstance(action, argparse._SubParsersAction)
        for name, sub in action.choices.items()
        if name == "report"
    )
    options = [o for a in report._actions for o in a.option_strings if o.startswith("--") and o != "--help"]
    assert options and all(option in row for option in options), options


def test_it_says_how_to_run_on_another_port() -> None:
    assert "make run PORT=8502" in README
    assert re.search(r"^PORT\s*\?=\s*8501$", (ROOT / "Makefile").read_text(), flags=re.M)


def _anchors() -> set[str]:
    """GitHub's anchors of the README's headings."""
    out = set()
    for heading in re.findall(r"^#+ (.+)$", README, flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", "")).replace(" ", "-")
        out.add(slug)
    return out


def pointed_at() -> list[str]:
    """Every link target, image source and backticked word of the README that looks like a path."""
    targets = re.findall(r"\]\(([^)\s]+)\)", README) + re.findall(r'\bsrc="([^"]+)"', README)
    for word in re.findall(r"`([^`\n]+)`", README):
        if re.search(r"[\s{}=$*<>|]|://|^[-/~]|\(", word):  # commands, patterns, URLs, API routes, code
            continue
        if "/" in word or re.search(FILE_ENDINGS, word):
            targets.append(word)
    return targets


def test_the_readme_points_at_nothing_outside_the_repository() -> None:
    assert "../" not in README, "a path out of the repository"
    assert not re.search(r"(?<![\w.])/(work|home|root|tmp)/", README), "a path on one machine"
    anchors = _anchors()
    missing = []
    for target in pointed_at():
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        if target.startswith("#"):
            if target[1:] not in anchors:
                missing.append(target)
            continue
        path = target.split("#")[0]
        if path.startswith(RUNTIME):
            continue
        if not (ROOT / path).exists():
            missing.append(target)
    assert not missing, f"the README points at what the repository does not hold: {missing}"
    assert re.search(r"^/?data/$", (ROOT / ".gitignore").read_text(), flags=re.M)  # runtime, not in git


def test_the_metric_definitions_are_in_the_repository() -> None:
    metrics = section("Metric definitions")
    assert "[docs/metrics.md](docs/metrics.md)" in metrics
    text = (ROOT / "docs" / "metrics.md").read_text(encoding="utf-8")
    for words in ("*Line net*", "*Revenue*", "*Gross profit*", "*Cash received*", "*Outstanding*", "MAPE",
                  "WAPE", "*ABC class*", "*Retention*", "*Stock status*", "half-even"):  # fmt: skip
        assert words in text, words
