"""CSV for people's spreadsheets: rows to text with formula injection neutralised.

A cell beginning with = + - @ (or a tab / carriage return) is run as a formula by Excel and its kin
(OWASP "CSV injection"); such text cells get a leading apostrophe. Numbers are written as they are.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> object:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return "" if value is None else value


def csv_text(rows: Iterable[Iterable[object]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in rows:
        writer.writerow([safe_cell(v) for v in row])
    return buffer.getvalue()
