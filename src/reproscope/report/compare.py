"""Comparisons: the ratio B/A with its confidence intervals, p-values and an outcome.

Method (stated in the README): configurations A and B are measured in the same rounds;
round r of each is a fresh process, and the rounds interleave the study's configurations
(reproscope.runtime.rounds). Each round gives each configuration one figure: its median latency, its
throughput or its highest valid rate; that figure already carries the round's own noise. The
per-round log ratios ``d_r = ln(B_r / A_r)`` are paired by round, so whatever disturbs a whole
round (another job on the machine, a frequency change) cancels. The ratio reported is
``exp(mean d)`` (the geometric mean of the per-round ratios of medians); its intervals are the
paired Student-t intervals ``exp(mean d +- t(q, R-1) * sd(d) / sqrt(R))`` (95 %: q = 0.975;
90 %: q = 0.95) and its p-value the paired t-test of ``mean d = 0``. A t interval rather than
a bootstrap because studies run few rounds (7 by default), where a bootstrap percentile
interval is far too narrow; the t interval is exact when the log ratios are normal. It needs
2 rounds at least.

Rounds are run per comparison group (one model's configurations on one system), so pairing
holds inside a group only. Configurations of different groups that the study puts side by
side (the same configuration on two systems) were measured in different round jobs: their
comparison is unpaired, Welch's test on the logs of the per-round figures,
``exp(mean ln B - mean ln A +- t(q, nu) * sqrt(s_A^2/n_A + s_B^2/n_B))`` with the
Welch-Satterthwaite degrees of freedom ``nu`` (rounded down, for the intervals and the
p-value alike); each side needs 2 rounds at least. The row's ``pairing`` column says which
(``paired`` or ``unpaired (Welch)``).

Outcome, for B relative to A, with the margin ``m`` the study's ``min_effect`` (10 %) and the
band ``[1/(1+m), 1+m]``; the first that holds wins:

1. ``not enough rounds``: no interval (fewer than 2 rounds).
2. ``faster beyond margin`` / ``slower beyond margin``: the whole 95 % CI lies past the band
   on one side: "different by more than m, at 95 % confidence".
3. ``equivalent``: the 90 % CI lies inside the band, the two one-sided tests (TOST) at 5 %
   each: "any difference is smaller than m".
4. ``real difference, faster`` / ``real difference, slower``: the 95 % CI excludes 1 (p <
   0.05) but reaches into the band, and the 90 % CI is not inside it: B differs, by an
   amount that may be smaller or larger than m.
5. ``inconclusive``: the 95 % CI includes 1 and reaches past the band: nothing is known.

Steps 3 and 4 overlap when a narrow CI excludes 1 and lies inside the band (0.99 [0.985,
0.995]): both "real" and "equivalent" hold, and ``equivalent`` wins. The margin is by
definition the smallest difference the study cares about, so "smaller than m" is the answer
to its question; and over a study's dozens of comparisons about 5 % of true nulls exclude 1
by chance, so with the other precedence a self-comparison of 20 points would read
``real difference`` somewhere in two runs of three. The row's ``p_value`` still shows such a
difference, and ``p_value_holm`` says whether it survives the study's multiplicity.
``faster`` always means B is the better one (lower latency, or higher throughput or rate).

``p_value_holm`` is Holm's step-down adjustment of the ``p_value`` of every comparison in
the study (family-wise error 5 %); Holm rather than Benjamini-Hochberg because the
comparisons share configurations, hence are dependent, and Holm holds under any dependence.
The outcomes above use the unadjusted per-comparison intervals: a Bonferroni-width interval
over a table of 54 comparisons and 3 rounds (t = 46) was ten times wider and flipped with one
disturbed round, whereas a margin above the machine's run-to-run noise keeps a
self-comparison and a real difference well beyond the margin on the same side of it in
every run; a ratio whose CI reaches the margin stays a coin toss. A quieter machine can state
a smaller ``min_effect``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

FASTER, SLOWER = "faster beyond margin", "slower beyond margin"
FASTER_REAL, SLOWER_REAL = "real difference, faster", "real difference, slower"
EQUIVALENT, INCONCLUSIVE = "equivalent", "inconclusive"
TOO_FEW = "not enough rounds"
#: Every outcome, in the order of the method above.
OUTCOMES = (TOO_FEW, FASTER, SLOWER, EQUIVALENT, FASTER_REAL, SLOWER_REAL, INCONCLUSIVE)
PAIRED, UNPAIRED = "paired", "unpaired (Welch)"
MIN_EFFECT = 0.10


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 1000):
        for aa in (
            m * (b - m) * x / ((a - 1.0 + 2 * m) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 1.0 + 2 * m)),
        ):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_sf(t: float, df: float) -> float:
    """Student t upper tail P(T > t), through the incomplete beta function (the workflow
    environment has no scipy); accurate to ~1e-14 relative, tiny tails included."""
    if df <= 0:
        raise ValueError(f"degrees of freedom must be > 0, got {df}")
    tail = 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t))
    return tail if t >= 0 else 1.0 - tail


@functools.lru_cache(maxsize=256)
def t_quantile(p: float, df: int) -> float:
    """Student t quantile, by bisection on ``t_sf``."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    if not 0.5 <= p < 1.0:
        raise ValueError(f"p must be in [0.5, 1), got {p}")
    low, high = 0.0, 1.0
    while t_sf(high, df) > 1.0 - p:
        low, high = high, high * 2
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if t_sf(mid, df) > 1.0 - p else (low, mid)
    return high


def t975(df: int) -> float:
    return t_quantile(0.975, df)


def beta_quantile(q: float, a: float, b: float) -> float:
    """The ``q`` quantile of the Beta(a, b) distribution, by bisection on ``_betainc``."""
    low, high = 0.0, 1.0
    for _ in range(80):
        mid = (low + high) / 2
        low, high = (mid, high) if _betainc(a, b, mid) < q else (low, mid)
    return (low + high) / 2


def clopper_pearson(hits: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The exact (Clopper-Pearson) interval of a proportion, ``hits`` of ``n``: never
    shorter than ``confidence`` for any true proportion."""
    if not 0 <= hits <= n or n < 1:
        raise ValueError(f"clopper_pearson() needs 0 <= hits <= n and n >= 1, got {hits}/{n}")
    tail = (1.0 - confidence) / 2
    low = 0.0 if hits == 0 else beta_quantile(tail, hits, n - hits + 1)
    high = 1.0 if hits == n else beta_quantile(1.0 - tail, hits + 1, n - hits)
    return low, high


@dataclass(frozen=True)
class RatioTest:
    """A ratio (or geometric mean) and what the t-test on its log says: the 95 % and 90 %
    intervals and the two-sided p-value of "ratio = 1" (NaN without 2 figures a side)."""

    ratio: float
    ci95: tuple[float, float]
    ci90: tuple[float, float]
    p_value: float
    df: int | None = None


def _t_test(centre: float, se: float, df: int | None) -> RatioTest:
    """Intervals and p-value of a mean log ``centre`` with standard error ``se``."""
    if df is None:
        nan = (math.nan, math.nan)
        return RatioTest(math.exp(centre), nan, nan, math.nan)
    if se == 0.0:
        point = (math.exp(centre), math.exp(centre))
        return RatioTest(math.exp(centre), point, point, 1.0 if centre == 0.0 else 0.0, df)

    def interval(q: float) -> tuple[float, float]:
        half = t_quantile(q, df) * se
        return math.exp(centre - half), math.exp(centre + half)

    p_value = min(1.0, 2.0 * t_sf(abs(centre) / se, df))
    return RatioTest(math.exp(centre), interval(0.975), interval(0.95), p_value, df)


def _logs(values: Sequence[float], what: str) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0 or not np.all(np.isfinite(v) & (v > 0)):
        raise ValueError(f"{what} needs positive finite values, got {list(values)}")
    return np.log(v)


def log_mean_test(values: Sequence[float]) -> RatioTest:
    """The geometric mean of positive values and the one-sample t-test of its log."""
    x = _logs(values, "log_mean_test()")
    if x.size < 2:
        return _t_test(float(x.mean()), math.nan, None)
    return _t_test(float(x.mean()), float(x.std(ddof=1)) / math.sqrt(x.size), x.size - 1)


def paired_test(a: Sequence[float], b: Sequence[float]) -> RatioTest:
    """B over A from their figures in paired rounds: the t-test on the per-round log ratios."""
    if len(a) == 0 or len(a) != len(b):
        raise ValueError(f"paired rounds needed: A has {len(a)}, B has {len(b)}")
    return log_mean_test(np.asarray(b, dtype=np.float64) / np.asarray(a, dtype=np.float64))


def welch_test(a: Sequence[float], b: Sequence[float]) -> RatioTest:
    """B over A from their figures in unpaired rounds: the ratio of geometric means and
    Welch's t-test on the logs."""
    x, y = _logs(a, "welch_test()"), _logs(b, "welch_test()")
    centre = float(y.mean() - x.mean())
    if x.size < 2 or y.size < 2:
        return _t_test(centre, math.nan, None)
    va, vb = float(x.var(ddof=1)) / x.size, float(y.var(ddof=1)) / y.size
    se = math.sqrt(va + vb)
    if se == 0.0:
        return _t_test(centre, 0.0, x.size + y.size - 2)
    df = (va + vb) ** 2 / (va**2 / (x.size - 1) + vb**2 / (y.size - 1))
    return _t_test(centre, se, max(1, math.floor(df + 1e-9)))  # df rounded down: conservative


def log_mean_ci(values: Sequence[float]) -> tuple[float, float, float]:
    """``(geometric mean, ci_low, ci_high)`` of positive values, the 95 % Student-t interval
    of their mean log; the bounds are NaN with fewer than 2 values."""
    test = log_mean_test(values)
    return test.ratio, *test.ci95


def ratio_ci(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, float]:
    """``(ratio, ci_low, ci_high)`` of B over A from their figures in paired rounds."""
    test = paired_test(a, b)
    return test.ratio, *test.ci95


def welch_ratio_ci(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, float]:
    """``(ratio, ci_low, ci_high)`` of B over A from their figures in unpaired rounds."""
    test = welch_test(a, b)
    return test.ratio, *test.ci95


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error), NaNs left out of the family
    and kept as NaN: the i-th smallest of m is multiplied by m - i + 1, then made monotone."""
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(p.shape, math.nan)
    present = np.flatnonzero(~np.isnan(p))
    order = present[np.argsort(p[present], kind="stable")]
    m = order.size
    adjusted = np.minimum(1.0, np.maximum.accumulate(p[order] * (m - np.arange(m))))
    out[order] = adjusted
    return out


def verdict(
    ratio: float,
    low: float,
    high: float,
    lower_is_better: bool = True,
    margin: float = MIN_EFFECT,
    tost: tuple[float, float] | None = None,
) -> str:
    """The outcome of B relative to A (see the module's method) from its 95 % CI
    ``[low, high]`` and its 90 % CI ``tost``; without ``tost`` the 95 % CI stands in for it,
    which can only make ``equivalent`` rarer (the 90 % CI lies inside the 95 % one)."""
    if math.isnan(low) or math.isnan(high):
        return TOO_FEW
    band_low, band_high = 1.0 / (1.0 + margin), 1.0 + margin
    lower = lower_is_better
    if high < band_low:
        return FASTER if lower else SLOWER
    if low > band_high:
        return SLOWER if lower else FASTER
    tost_low, tost_high = tost if tost is not None else (low, high)
    if band_low < tost_low and tost_high < band_high:
        return EQUIVALENT
    if high < 1.0:
        return FASTER_REAL if lower else SLOWER_REAL
    if low > 1.0:
        return SLOWER_REAL if lower else FASTER_REAL
    return INCONCLUSIVE


def outcome(test: RatioTest, lower_is_better: bool = True, margin: float = MIN_EFFECT) -> str:
    """``verdict`` of a ``RatioTest``: its 95 % CI and its 90 % CI for the TOST."""
    return verdict(test.ratio, *test.ci95, lower_is_better, margin, tost=test.ci90)


#: The columns a comparison's test fills, after the two sides' medians (comparisons.csv and
#: `reproscope compare`).
TEST_COLUMNS = [
    "ratio_b_over_a",
    "ci95_low",
    "ci95_high",
    "ci90_low",
    "ci90_high",
    "p_value",
    "p_value_holm",
    "min_effect",
    "verdict",
]


def test_columns(test: RatioTest, lower_is_better: bool, min_effect: float) -> dict[str, Any]:
    """A comparison row's test columns but p_value_holm, which `with_holm` adds over the
    whole table."""
    return {
        "ratio_b_over_a": test.ratio,
        "ci95_low": test.ci95[0],
        "ci95_high": test.ci95[1],
        "ci90_low": test.ci90[0],
        "ci90_high": test.ci90[1],
        "p_value": test.p_value,
        "min_effect": min_effect,
        "verdict": outcome(test, lower_is_better, min_effect),
    }


def with_holm(rows: list[dict[str, Any]], columns: list[str]) -> pd.DataFrame:
    """The comparison rows as a table, with Holm's adjustment over all their p-values."""
    table = pd.DataFrame(rows, columns=columns)
    table["p_value_holm"] = holm(table["p_value"].to_numpy(dtype=float))
    return table
