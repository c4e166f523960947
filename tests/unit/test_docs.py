"""The README is the front door and its links, commands and fields match the code."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest
from credit_explainer.cli import build_parser
from credit_schema import FEATURES, NULLABLE_FEATURES

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def _prose(path: Path) -> str:
    return FENCE.sub("", path.read_text(encoding="utf-8"))


def _anchors(path: Path) -> set[str]:
    """GitHub's heading ids: lower case, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"^#+ (.+)$", _prose(path), re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def _table_rows(section: str) -> list[list[str]]:
    """Cells of a README section's table, header and rule left out."""
    text = _prose(README).split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in text.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows[2:]]


def test_readme_is_short_and_gives_both_commands() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 250
    assert "make demo" in text and "make test" in text
    assert "make test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves(page: Path) -> None:
    broken = []
    for target in LINK.findall(_prose(page)):
        if re.match(r"[a-z]+:", target):
            continue  # absolute URL
        file_part, _, anchor = target.partition("#")
        path = (page.parent / file_part).resolve() if file_part else page
        if not path.exists():
            broken.append(f"{target}: no file")
        elif anchor and anchor not in _anchors(path):
            broken.append(f"{target}: no heading #{anchor}")
    assert not broken, broken


def test_readme_lists_every_cli_command() -> None:
    actions = build_parser()._actions
    sub = next(a for a in actions if isinstance(a, argparse._SubParsersAction))
    # Aliases (serve for serve-model) share their command's parser and prog.
    commands = {name for name, p in sub.choices.items() if p.prog.endswith(f" {name}")}
    listed = {row[0].strip("`") for row in _table_rows("The command")}
    assert listed == commands


def test_readme_lists_the_applicant_fields_in_model_order() -> None:
    rows = _table_rows("The applicant (built-in example)")
    assert tuple(row[0].strip("`") for row in rows) == FEATURES
    assert {row[0].strip("`") for row in rows if row[2].startswith("yes")} == NULLABLE_FEATURES


def test_make_help_lists_every_target() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    phony = {t for line in re.findall(r"^\.PHONY:(.*)$", makefile, re.MULTILINE) for t in line.split()}
    helped = set(re.findall(r'^\t@echo "make ([\w-]+)', makefile, re.MULTILINE))
    assert phony - {"help"} == helped
