"""CSV that a spreadsheet opens as data, never as formulas: every CSV Carnet writes goes through ``writer``.

A cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is read by Excel or LibreOffice as a
formula (``=HYPERLINK(…)`` in a document title chosen by a practitioner would become a live link in the
patient's trail). Such a cell is prefixed with an apostrophe, which spreadsheets show as text (OWASP's "CSV
injection" advice). Only strings are touched: a number stays a number.
"""

import csv
from collections.abc import Iterable
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """``value`` with a leading apostrophe if a spreadsheet would read it as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


class SafeWriter:
    """``csv.writer`` whose rows are neutralised cell by cell (``writerow`` returns what the file's write did)."""

    def __init__(self, fileobj, **options) -> None:
        self._writer = csv.writer(fileobj, **options)

    def writerow(self, row: Iterable[Any]):
        return self._writer.writerow([safe_cell(value) for value in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def writer(fileobj, **options) -> SafeWriter:
    """A CSV writer on ``fileobj`` (same options as ``csv.writer``) that neutralises formula-like cells."""
    return SafeWriter(fileobj, **options)
