"""The one writer of every CSV under results/summary: spreadsheet-safe cells.

A text cell that begins with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is
read as a formula by spreadsheet programs (Excel, LibreOffice, Google Sheets), so manifest
text such as ``claims.source: "=HYPERLINK(...)"`` would run there. Such cells are written
with a leading ``'`` (the spreadsheets' own "this is text" mark), except genuine numbers:
``-0.25`` or ``-inf`` stays a number. Numeric columns are never touched. A bare carriage
return inside a text becomes a newline: the CSV writer quotes a field holding a newline but
not one holding only a CR, which a spreadsheet would read as the start of a new row.

Floats are rounded here, for every table alike, to the digits that were measured (no
``-34.699999999999996``), by the column's kind (``rounded``): a quantity with a unit to that
unit's resolution (``_ms`` 4 decimals: timed in ns, kept to 0.1 us; ``_s`` 3; rates and
GFLOP/s 2; ``_mb`` 1), a p-value to 3 significant digits (``1.23e-07`` stays
informative), anything else (ratios, shares, percentages) to 4 decimals but never fewer
than 4 significant digits, so that a small value (a logit difference of ``3.052e-05``) is
not rounded away.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pandas as pd

from reproscope.runtime.atomic import replacing

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


#: Decimals kept by column-name ending, for quantities with a unit.
_DECIMALS = (("_ms", 4), ("_s", 3), ("_ips", 2), ("_qps", 2), ("_gflops", 2), ("_mb", 1))
P_VALUE_DIGITS = 3
DIGITS = 4


def _significant(value: float, digits: int, min_decimals: int = 0) -> float:
    """``value`` to ``digits`` significant digits, or ``min_decimals`` if that keeps more."""
    if not math.isfinite(value) or value == 0.0:
        return value
    decimals = digits - 1 - math.floor(math.log10(abs(value)))
    return round(value, max(decimals, min_decimals))


def rounded(table: pd.DataFrame) -> pd.DataFrame:
    """Floats rounded to what was measured, by column kind (see the module)."""
    out = table.copy()
    for column in out.columns:
        if out[column].dtype.kind != "f":
            continue
        name = str(column)
        unit = next((d for end, d in _DECIMALS if name.endswith(end)), None)
        if name.startswith("latency_ms_"):
            unit = 4
        if name.startswith("p_value") or name.endswith("p_value"):
            out[column] = out[column].map(lambda v: _significant(v, P_VALUE_DIGITS))
        elif unit is not None:
            out[column] = out[column].round(unit)
        else:
            out[column] = out[column].map(lambda v: _significant(v, DIGITS, DIGITS))
    return out


def write_csv(table: pd.DataFrame, path: str | Path) -> None:
    """Write ``table`` to ``path`` (no index), floats rounded, every text cell neutralised."""
    with replacing(path) as tmp:  # whole or not at all (a kill, a full disk)
        safe_table(rounded(table)).to_csv(tmp, index=False)
