"""Comparisons with confidence intervals and a verdict.

Method (stated in the README): configurations A and B are measured in the same rounds;
round r of each is a fresh process, and the rounds interleave the study's configurations
(reproscope.rounds). Each round gives each configuration one figure: its median latency, its
throughput or its highest valid rate; that figure already carries the round's own noise. The
per-round log ratios ``d_r = ln(B_r / A_r)`` are paired by round, so whatever disturbs a whole
round (another job on the machine, a frequency change) cancels. The ratio reported is
``exp(mean d)`` (the geometric mean of the per-round ratios of medians) and its 95 % CI is the
paired Student-t interval ``exp(mean d +- t(0.975, R-1) * sd(d) / sqrt(R))``. A t interval
rather than a bootstrap because studies run few rounds (3 by default), where a bootstrap
percentile interval is far too narrow; the t interval is exact when the log ratios are normal.
It needs 2 rounds at least.

The verdict is ``faster``/``slower`` only when the whole CI lies beyond a ``margin`` of 2 %
(the precision a measurement aims for) on one side: below ``1 / 1.02`` or above ``1.02``. So a
verdict says "different by more than 2 %, at 95 % confidence", which a rerun reproduces far
more often than "different at all"; otherwise ``no significant difference`` (or ``not enough
rounds``). ``faster`` always means B is the better one (lower latency, or higher throughput
or rate).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

FASTER, SLOWER, SAME = "faster", "slower", "no significant difference"
TOO_FEW = "not enough rounds"
MARGIN = 0.02

#: Student t 0.975 quantiles by degrees of freedom; between entries the smaller df is used,
#: which widens the interval (conservative).
_T975 = {
    1: 12.706,
    2: 4.303,
    3: 3.182,
    4: 2.776,
    5: 2.571,
    6: 2.447,
    7: 2.365,
    8: 2.306,
    9: 2.262,
    10: 2.228,
    12: 2.179,
    15: 2.131,
    20: 2.086,
    30: 2.042,
    60: 2.000,
    120: 1.980,
}


def t975(df: int) -> float:
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    return _T975[max(k for k in _T975 if k <= df)]


def log_mean_ci(values: Sequence[float]) -> tuple[float, float, float]:
    """``(geometric mean, ci_low, ci_high)`` of positive values, the 95 % Student-t interval
    of their mean log; the bounds are NaN with fewer than 2 values."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0 or not np.all(np.isfinite(v) & (v > 0)):
        raise ValueError(f"log_mean_ci() needs positive finite values, got {list(values)}")
    x = np.log(v)
    centre = float(x.mean())
    if x.size < 2:
        return math.exp(centre), math.nan, math.nan
    half = t975(x.size - 1) * float(x.std(ddof=1)) / math.sqrt(x.size)
    return math.exp(centre), math.exp(centre - half), math.exp(centre + half)


def ratio_ci(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, float]:
    """``(ratio, ci_low, ci_high)`` of B over A from their figures in paired rounds."""
    if len(a) == 0 or len(a) != len(b):
        raise ValueError(f"paired rounds needed: A has {len(a)}, B has {len(b)}")
    return log_mean_ci(np.asarray(b, dtype=np.float64) / np.asarray(a, dtype=np.float64))


def verdict(
    ratio: float, low: float, high: float, lower_is_better: bool = True, margin: float = MARGIN
) -> str:
    """``faster``, ``slower``, ``no significant difference`` or ``not enough rounds``, for B
    relative to A."""
    if math.isnan(low) or math.isnan(high):
        return TOO_FEW
    if high < 1.0 / (1.0 + margin):
        return FASTER if lower_is_better else SLOWER
    if low > 1.0 + margin:
        return SLOWER if lower_is_better else FASTER
    return SAME
