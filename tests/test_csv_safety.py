"""Every CSV the system writes is escaped against formula injection (OWASP's rule), through one writer."""
from __future__ import annotations

import ast
import csv
import io
from decimal import Decimal
from pathlib import Path

import pytest

from outreach.csv_safety import csv_lines, safe_cell, unescape_cell

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("outreach", "contacts", "campaigns", "messaging", "analytics")
THE_WRITER = ROOT / "outreach" / "csv_safety.py"


@pytest.mark.parametrize("cell", ["=1+1", "+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1",
                                  "=HYPERLINK(\"http://evil.example\",\"x\")", "=cmd|' /C calc'!A0"])
def test_a_cell_a_spreadsheet_would_run_gets_a_leading_quote(cell: str) -> None:
    assert safe_cell(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["dana@acme.example", "acme.example", "a=b", "", "'quoted"])
def test_a_harmless_cell_is_written_unchanged(cell: str) -> None:
    assert safe_cell(cell) == cell


@pytest.mark.parametrize("value", [-5, 2.5, Decimal("-1.10"), None, True])
def test_numbers_and_empty_cells_are_not_text_and_stay_as_they_are(value) -> None:
    assert safe_cell(value) is value


@pytest.mark.parametrize("cell", ["=1+1", "+15551234567", "plain"])
def test_unescaping_gives_back_the_original_text(cell: str) -> None:
    assert unescape_cell(safe_cell(cell)) == cell


def test_the_streamed_lines_read_back_escaped() -> None:
    text = "".join(csv_lines([("value", "detail"), ("x@acme.example", "=HYPERLINK(\"http://e.example\")")]))
    assert list(csv.reader(io.StringIO(text)))[1] == ["x@acme.example", "'=HYPERLINK(\"http://e.example\")"]


def _raw_csv_writers(source: str) -> list[int]:
    """Lines that build a csv.writer / csv.DictWriter (or a bare writer imported from csv)."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("writer", "DictWriter") and (not isinstance(func, ast.Attribute)
                                                     or getattr(func.value, "id", "") == "csv"):
                lines.append(node.lineno)
    return lines


def test_no_product_module_writes_csv_but_through_the_shared_writer() -> None:
    offenders = [f"{path.relative_to(ROOT)}:{line}"
                 for package in PRODUCT for path in sorted((ROOT / package).rglob("*.py"))
                 if "tests" not in path.parts and path != THE_WRITER
                 for line in _raw_csv_writers(path.read_text())]
    assert offenders == []


def test_the_scan_finds_a_raw_writer() -> None:
    assert _raw_csv_writers("import csv\nw = csv.writer(f)\nd = csv.DictWriter(f, fieldnames=[])\n") == [2, 3]
