"""Texts a lender configures (reason texts and codes, decision band labels) that reach people
and spreadsheets: the one rule for what they may hold.

OWASP's CSV injection rule: a cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a
carriage return is read as a formula by spreadsheets. Such texts are refused when a lender's
configuration is loaded (:func:`check_text`), and any that reach an export anyway (an older
record) are neutralised there (:func:`neutral_cell`).
"""

from __future__ import annotations

from typing import Any, Final

FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")
#: The longest configured text: a reason is one sentence.
MAX_TEXT_CHARS: Final = 500


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot be a configured label or reason text, or None."""
    if not text.strip():
        return "is empty"
    if text.startswith(FORMULA_STARTS):
        return f"starts with {text[0]!r}, which spreadsheets read as a formula"
    if not text.isprintable():
        return "holds a control character (line break, tab, ...)"
    if len(text) > MAX_TEXT_CHARS:
        return f"runs over {MAX_TEXT_CHARS} characters"
    return None


def neutral_cell(cell: Any) -> Any:
    """A CSV cell a spreadsheet shows as text: a leading ``'`` before a text that starts with a
    formula character (OWASP). Numbers and other texts pass as they are."""
    if isinstance(cell, str) and cell.startswith(FORMULA_STARTS):
        return "'" + cell
    return cell


def sql_literal(text: str) -> str:
    """``text`` as an SQL string literal (quotes doubled), the same in DuckDB and Trino: every
    value the query engine and monitor's aggregates put in their SQL."""
    return "'" + text.replace("'", "''") + "'"
