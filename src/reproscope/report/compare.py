"""Comparisons with confidence intervals and a verdict.

Method (stated in the README): configurations A and B are measured in the same rounds;
round r of each is a fresh process, and the rounds interleave the study's configurations
(reproscope.runtime.rounds). Each round gives each configuration one figure: its median latency, its
throughput or its highest valid rate; that figure already carries the round's own noise. The
per-round log ratios ``d_r = ln(B_r / A_r)`` are paired by round, so whatever disturbs a whole
round (another job on the machine, a frequency change) cancels. The ratio reported is
``exp(mean d)`` (the geometric mean of the per-round ratios of medians) and its 95 % CI is the
paired Student-t interval ``exp(mean d +- t(0.975, R-1) * sd(d) / sqrt(R))``. A t interval
rather than a bootstrap because studies run few rounds (7 by default), where a bootstrap
percentile interval is far too narrow; the t interval is exact when the log ratios are normal.
It needs 2 rounds at least. Each interval is a 95 % interval on its own.

Rounds are run per comparison group (one model's configurations on one system), so pairing
holds inside a group only. Configurations of different groups that the study puts side by
side (the same configuration on two systems) were measured in different round jobs: their
comparison is unpaired, Welch's interval on the logs of the per-round figures,
``exp(mean ln B - mean ln A +- t(0.975, nu) * sqrt(s_A^2/n_A + s_B^2/n_B))`` with the
Welch-Satterthwaite degrees of freedom ``nu`` (rounded down); each side needs 2 rounds at
least. The row's ``pairing`` column says which (``paired`` or ``unpaired (Welch)``).

The verdict is ``faster``/``slower`` only when the whole CI lies beyond a margin, the study's
``min_effect`` (10 % unless the study says otherwise), on one side: below ``1 / 1.10`` or
above ``1.10``. So a verdict says "different by more than 10 %, at 95 % confidence";
otherwise ``no significant difference`` (or ``not enough rounds``). ``faster`` always means
B is the better one (lower latency, or higher throughput or rate).

Why a margin and not a multiplicity correction: a study compares dozens of pairs, and on a
shared 2-core machine a configuration's per-round figure moves by several per cent between
fresh processes. With a 2 % margin a true difference of 3-8 % is called in one run and not
in the next; a Bonferroni correction over the table (tried: t = 46 for 54 comparisons over
3 rounds) widens every interval tenfold, so even a 5x difference flips with one disturbed
round. A margin above the machine's run-to-run noise keeps a self-comparison (true ratio 1)
and a real difference well beyond the margin on the same side of it in every run; a ratio
whose CI reaches the margin stays a coin toss. A quieter machine can state a smaller
``min_effect``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np

FASTER, SLOWER, SAME = "faster", "slower", "no significant difference"
PAIRED, UNPAIRED = "paired", "unpaired (Welch)"
TOO_FEW = "not enough rounds"
MIN_EFFECT = 0.10


@functools.lru_cache(maxsize=256)
def t_quantile(p: float, df: int) -> float:
    """Student t quantile: bisection on the CDF, integrated numerically from the density
    (the workflow environment has no scipy). Accurate to about 1e-6 for df >= 1."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    if not 0.5 <= p < 1.0:
        raise ValueError(f"p must be in [0.5, 1), got {p}")
    norm = math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)) / math.sqrt(df * math.pi)

    def cdf(x: float) -> float:
        t = np.linspace(0.0, x, 40_001)
        return 0.5 + float(np.trapezoid(norm * (1 + t * t / df) ** (-(df + 1) / 2), t))

    low, high = 0.0, 1.0
    while cdf(high) < p:
        low, high = high, high * 2
    for _ in range(50):
        mid = (low + high) / 2
        low, high = (mid, high) if cdf(mid) < p else (low, mid)
    return high


def t975(df: int) -> float:
    return t_quantile(0.975, df)


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
    ratios = np.asarray(b, dtype=np.float64) / np.asarray(a, dtype=np.float64)
    return log_mean_ci(ratios)


def welch_ratio_ci(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, float]:
    """``(ratio, ci_low, ci_high)`` of B over A from their figures in unpaired rounds: the
    ratio of geometric means and Welch's 95 % interval on the logs; the bounds are NaN
    unless each side has 2 figures at least."""
    va, vb = (np.asarray(v, dtype=np.float64) for v in (a, b))
    if not all(v.size and np.all(np.isfinite(v) & (v > 0)) for v in (va, vb)):
        raise ValueError(f"welch_ratio_ci() needs positive finite values, got {a} and {b}")
    x, y = np.log(va), np.log(vb)
    centre = float(y.mean() - x.mean())
    if x.size < 2 or y.size < 2:
        return math.exp(centre), math.nan, math.nan
    va, vb = float(x.var(ddof=1)) / x.size, float(y.var(ddof=1)) / y.size
    se = math.sqrt(va + vb)
    if se == 0.0:
        return math.exp(centre), math.exp(centre), math.exp(centre)
    df = (va + vb) ** 2 / (va**2 / (x.size - 1) + vb**2 / (y.size - 1))
    half = t975(max(1, math.floor(df + 1e-9))) * se  # df rounded down: conservative
    return math.exp(centre), math.exp(centre - half), math.exp(centre + half)


def verdict(
    ratio: float, low: float, high: float, lower_is_better: bool = True, margin: float = MIN_EFFECT
) -> str:
    """``faster``, ``slower``, ``no significant difference`` or ``not enough rounds``, for B
    relative to A, with ``margin`` the smallest relative difference a verdict claims."""
    if math.isnan(low) or math.isnan(high):
        return TOO_FEW
    if high < 1.0 / (1.0 + margin):
        return FASTER if lower_is_better else SLOWER
    if low > 1.0 + margin:
        return SLOWER if lower_is_better else FASTER
    return SAME
