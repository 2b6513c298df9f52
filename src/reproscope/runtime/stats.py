"""Latency statistics and paired significance tests.

Only the standard library and numpy are used, so this module can be imported inside the pinned
framework environments.

Conventions
-----------
* Percentiles use numpy's default ``"linear"`` method (type 7 of Hyndman & Fan, R's default):
  the p-th percentile of ``n`` sorted values sits at 0-based position ``(n - 1) * p / 100`` and
  is linearly interpolated between the two neighbouring order statistics.
* ``std_ms`` is the sample standard deviation (``ddof=1``); it is NaN for a single sample.
* ``iqr_ms`` is ``p75 - p25`` with the same percentile method.
* The 95% confidence interval of the median is the distribution-free order-statistic interval
  ``[x_(j), x_(k)]`` (1-based order statistics of the sorted sample) with
  ``j = floor(n/2 - 1.96 * sqrt(n) / 2)`` and ``k = n + 1 - j`` (equivalently
  ``ceil(1 + n/2 + 1.96 * sqrt(n) / 2)``), clipped to ``[1, n]``. It relies only on the number of
  observations below the true median being Binomial(n, 1/2); rounding outwards keeps the exact
  coverage ``P(j <= B <= k - 1)`` at or above 95% for every ``n >= 6``. For ``n < 6`` even
  ``[min, max]`` covers less than 95%, so the bounds are NaN.
* A tail percentile p is *estimable* from n queries when the largest of them is a 95% upper
  confidence bound for it: ``P(max < x_p) = p**n <= 0.05``, i.e. ``n >= ln(0.05) / ln(p)``
  (29 queries for p90, 299 for p99, 2995 for p99.9). With fewer queries the sample percentile
  is an interpolation inside the few largest values and is reported as not estimable.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

#: A run is flagged ``unstable`` when ``iqr / median`` exceeds this ratio.
UNSTABLE_IQR_RATIO = 0.10

#: Normal quantile used for the 95% median confidence interval.
_Z95 = 1.959963984540054

#: Smallest sample size for which the order-statistic interval reaches 95% coverage.
MIN_N_MEDIAN_CI = 6


def median_ci_order_stats(n: int) -> tuple[int, int] | None:
    """1-based order statistics ``(j, k)`` bounding the 95% median CI, or None if ``n < 6``."""
    if n < MIN_N_MEDIAN_CI:
        return None
    half_width = _Z95 * math.sqrt(n) / 2.0
    j = max(1, math.floor(n / 2.0 - half_width))
    k = min(n, n + 1 - j)
    return j, k


def queries_needed(percentile: float, confidence: float = 0.95) -> int:
    """Fewest queries whose maximum bounds the ``percentile`` (0-100) at ``confidence``."""
    if not 0 < percentile < 100:
        raise ValueError(f"percentile must be in (0, 100), got {percentile}")
    p = percentile / 100.0
    return math.ceil(math.log(1.0 - confidence) / math.log(p) - 1e-9)


def trusted_percentile(value: float | None, n: int | None, percentile: float) -> float | str | None:
    """``value`` when ``n`` queries suffice for it (see the module docstring), else a note
    saying how many would."""
    if value is None or n is None:
        return None
    needed = queries_needed(percentile)
    if n >= needed:
        return value
    return f"not estimable, needs {needed} queries (ran {n})"


def summarize(latencies_ms: Sequence[float]) -> dict[str, float | int | bool]:
    """Summary statistics of per-query latencies in milliseconds (see module docstring)."""
    x = np.asarray(latencies_ms, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"summarize() expects a 1-D sequence of latencies, got shape {x.shape}")
    n = int(x.size)
    if n == 0:
        raise ValueError("summarize() needs at least one latency sample; got an empty sequence")
    if not np.all(np.isfinite(x)):
        raise ValueError("summarize() got non-finite latencies (NaN or inf)")

    xs = np.sort(x)
    p25, p50, p75, p90, p99 = (
        float(v) for v in np.percentile(xs, [25, 50, 75, 90, 99], method="linear")
    )
    mean = float(xs.mean())
    std = float(xs.std(ddof=1)) if n >= 2 else math.nan
    cv = std / mean if mean != 0.0 else math.nan
    iqr = p75 - p25
    if p50 != 0.0:
        iqr_over_median = iqr / p50
    else:
        iqr_over_median = math.inf if iqr > 0.0 else 0.0

    order = median_ci_order_stats(n)
    if order is None:
        ci_low = ci_high = math.nan
    else:
        j, k = order
        ci_low, ci_high = float(xs[j - 1]), float(xs[k - 1])

    return {
        "n": n,
        "mean_ms": mean,
        "median_ms": p50,
        "p50_ms": p50,
        "p90_ms": p90,
        "p99_ms": p99,
        "min_ms": float(xs[0]),
        "max_ms": float(xs[-1]),
        "std_ms": std,
        "cv": cv,
        "iqr_ms": iqr,
        "iqr_over_median": iqr_over_median,
        "median_ci95_low_ms": ci_low,
        "median_ci95_high_ms": ci_high,
        "unstable": bool(iqr_over_median > UNSTABLE_IQR_RATIO),
    }


def exact_mcnemar(lost: int, gained: int) -> float:
    """Two-sided exact McNemar p-value for paired outcomes.

    ``lost``/``gained`` are the discordant pair counts (e.g. samples correct in the reference but
    wrong in the reproduction, and vice versa). Under H0 each discordant pair goes either way with
    probability 1/2, so the p-value is ``min(1, 2 * P(Binomial(lost + gained, 1/2) <= min))``.
    Returns 1.0 when there are no discordant pairs.
    """
    for name, value in (("lost", lost), ("gained", gained)):
        if isinstance(value, bool) or int(value) != value or value < 0:
            raise ValueError(
                f"exact_mcnemar(): {name} must be a non-negative integer, got {value!r}"
            )
    lost, gained = int(lost), int(gained)
    n = lost + gained
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(lost, gained) + 1))
    # Exact integer arithmetic; the final true division of big ints rounds correctly.
    return min(1.0, (2 * tail) / (2**n))
