"""The one way the system writes CSV: every text cell escaped against formula injection.

A spreadsheet opening a CSV runs a cell that starts with `=`, `+`, `-` or `@` (and, in some, a tab or a
carriage return before one) as a formula: `=HYPERLINK(...)` or `=cmd|' /C calc'!A0` in an opted-out
address or a suppression's detail would run on the operator's machine. OWASP's rule
(https://owasp.org/www-community/attacks/CSV_Injection): prefix such a cell with a single quote; the csv
module quotes every cell holding a separator, a quote or a line break, so no cell breaks into the next.
Numbers are written as they are (a negative number is a number, not a formula).

Every CSV export writes through `csv_lines`; tests/test_csv_safety.py refuses `csv.writer` /
`csv.DictWriter` anywhere else in the product. `unescape_cell` reverses the prefix for an import that reads
our own exports back.
"""
from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
ESCAPE_PREFIX = "'"


def safe_cell(value: Any) -> Any:
    """The cell as it may be written: text that a spreadsheet would run gets a leading single quote."""
    if value is None or isinstance(value, (bool, int, float, Decimal, dt.date, dt.time)):
        return value
    text = str(value)
    return ESCAPE_PREFIX + text if text.startswith(FORMULA_TRIGGERS) else text


def unescape_cell(text: str) -> str:
    """The original text of a cell `safe_cell` escaped (an untouched cell comes back unchanged)."""
    if text.startswith(ESCAPE_PREFIX) and text[1:].startswith(FORMULA_TRIGGERS):
        return text[1:]
    return text


class _Echo:
    """A write-only file for csv.writer that hands each line back (for a streaming response)."""

    def write(self, value: str) -> str:
        return value


def csv_lines(rows: Iterable[Iterable[Any]]) -> Iterator[str]:
    """Each row as one escaped CSV line, for a StreamingHttpResponse."""
    writer = csv.writer(_Echo())
    for row in rows:
        yield writer.writerow([safe_cell(cell) for cell in row])

