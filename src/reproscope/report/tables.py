"""The one writer of every CSV under results/summary: spreadsheet-safe cells.

A text cell that begins with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is
read as a formula by spreadsheet programs (Excel, LibreOffice, Google Sheets), so manifest
text such as ``claims.source: "=HYPERLINK(...)"`` would run there. Such cells are written
with a leading ``'`` (the spreadsheets' own "this is text" mark), except genuine numbers:
``-0.25`` or ``-inf`` stays a number. Numeric columns are never touched. A bare carriage
return inside a text becomes a newline: the CSV writer quotes a field holding a newline but
not one holding only a CR, which a spreadsheet would read as the start of a new row.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pandas as pd

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_BARE_CR = re.compile(r"\r(?!\n)")


def _is_number(text: str) -> bool:
    try:
        value = float(text)
    except ValueError:
        return False
    return not math.isnan(value) or text.strip().lower() == "nan"


def neutralise(value: Any) -> Any:
    """One cell: a text that a spreadsheet would evaluate gets a leading "'"."""
    if not isinstance(value, str):
        return value
    if value.startswith(FORMULA_STARTS) and not (value[0] in "+-" and _is_number(value)):
        value = "'" + value
    return _BARE_CR.sub("\n", value)


def safe_table(table: pd.DataFrame) -> pd.DataFrame:
    """The table with every text cell (and column name) neutralised."""
    out = table.copy()
    for column in out.columns:
        if out[column].dtype.kind in "O":
            out[column] = out[column].map(neutralise)
        elif out[column].dtype.kind not in "biufcmMb?":
            out[column] = out[column].astype(object).map(neutralise)
    out.columns = [neutralise(str(c)) for c in out.columns]
    return out


def write_csv(table: pd.DataFrame, path: str | Path) -> None:
    """Write ``table`` to ``path`` (no index), every text cell neutralised."""
    safe_table(table).to_csv(path, index=False)
